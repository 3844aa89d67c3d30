"""Motion features: displacement, speed, MSD and diffusion coefficients of known random walks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomlens.track import ensemble_diffusion, msd, trajectory_features


def random_walks(d: float, sigma: float, frames: int, walkers: int, seed: int) -> pd.DataFrame:
    """2-D Brownian walkers, D = ``d`` [px^2/frame], seen with localisation noise ``sigma``
    per axis [px]."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, np.sqrt(2 * d), (walkers, frames, 2))
    steps[:, 0] = 0
    points = np.cumsum(steps, axis=1) + rng.normal(0, sigma, (walkers, frames, 2))
    points += 50.0 * rng.random((walkers, 1, 2))
    frame, particle = np.meshgrid(np.arange(frames), np.arange(walkers))
    return pd.DataFrame(
        {
            "frame": frame.ravel(),
            "particle": particle.ravel(),
            "y": points[..., 0].ravel(),
            "x": points[..., 1].ravel(),
        }
    )


@pytest.mark.parametrize(("d", "sigma"), [(0.5, 0.0), (0.5, 0.3), (2.0, 0.5)])
def test_the_ensemble_diffusion_coefficient_is_within_a_few_percent(d, sigma):
    walks = random_walks(d, sigma, frames=40, walkers=400, seed=int(10 * d + 100 * sigma))
    result = ensemble_diffusion(walks)
    assert result["D"] == pytest.approx(d, rel=0.05)
    assert abs(result["D"] - d) < 4 * result["D_err"]
    assert result["D_err"] < 0.03 * d
    assert result["msd_offset"] == pytest.approx(4 * sigma**2, abs=0.1 * d + 0.05)
    assert result["unit"] == "px^2/frame" and result["trajectories"] == 400


def test_units_follow_the_pixel_size_and_frame_time():
    walks = random_walks(0.5, 0.1, frames=40, walkers=300, seed=3)
    walks.attrs.update(pixel_size=0.2, frame_time=0.5)
    result = ensemble_diffusion(walks)
    assert result["unit"] == "Å^2/s"
    assert result["D"] == pytest.approx(0.5 * 0.2**2 / 0.5, rel=0.06)


def test_per_trajectory_errors_match_the_scatter():
    features = trajectory_features(random_walks(0.5, 0.2, frames=50, walkers=200, seed=4))
    z = (features["D"] - 0.5) / features["D_err"]
    assert 0.7 < z.std() < 1.4
    assert features["D"].mean() == pytest.approx(0.5, rel=0.08)
    assert features.attrs["units"]["D"] == "px^2/frame"


def test_displacement_speed_and_msd_of_a_straight_walk():
    table = pd.DataFrame(
        {"frame": [0, 1, 2, 4], "particle": 0, "y": [0.0, 3.0, 6.0, 12.0], "x": 0.0}
    )
    table.attrs.update(pixel_size=0.5, frame_time=2.0)
    features = trajectory_features(table).iloc[0]
    assert features["displacement"] == pytest.approx(6.0)  # 12 px of 0.5 Å
    assert features["duration"] == pytest.approx(8.0)  # 4 frames of 2 s
    assert features["mean_speed"] == pytest.approx(0.75)  # Å/s
    curve = msd(table, max_lag=4)
    # lag 1: frames 0-1, 1-2 (3 px each); lag 2: 0-2 (6 px), 2-4 (6 px); lag 3: 1-4 (9 px)
    assert curve["lag"].tolist() == [1, 2, 3, 4]
    assert curve["count"].tolist() == [2, 2, 1, 1]
    np.testing.assert_allclose(curve["msd"], (0.5 * np.array([3, 6, 9, 12])) ** 2)
    assert curve.attrs["units"] == {"lag_time": "s", "msd": "Å^2"}


def test_the_drift_in_attrs_is_removed():
    table = pd.DataFrame({"frame": [0, 1, 2], "particle": 0, "y": [0.0, 2.0, 4.0], "x": 1.0})
    table.attrs.update(drift=[[0, 0], [2, 0], [4, 0]], frames_tracked=[0, 1, 2])
    assert trajectory_features(table).iloc[0]["displacement"] == pytest.approx(0.0)


def _pair_sums(frames: np.ndarray, points: np.ndarray, lags: np.ndarray):
    """One trajectory's MSD and covariance sums by brute force: every displacement at every
    lag, then every pair of displacements with the frames they share and the signs with which
    their end points coincide."""
    k = len(lags)
    at = {int(f): i for i, f in enumerate(frames)}
    starts = [[int(f) for f in frames if int(f) + lag in at] for lag in lags]
    sums = [sum(((points[at[a + lag]] - points[at[a]]) ** 2).sum() for a in s)
            for lag, s in zip(lags, starts, strict=True)]  # fmt: skip
    counts = [len(s) for s in starts]
    shared, mixed, ends = (np.zeros((k, k)) for _ in range(3))
    for p, n in enumerate(lags.tolist()):
        for q, m in enumerate(lags.tolist()):
            for a in starts[p]:
                for b in starts[q]:
                    overlap = len(set(range(a, a + n)) & set(range(b, b + m)))
                    hit = (a + n == b + m) - (a + n == b) - (a == b + m) + (a == b)
                    shared[p, q] += overlap**2
                    mixed[p, q] += overlap * hit
                    ends[p, q] += hit**2
    return np.array(sums), np.array(counts), shared, mixed, ends


def test_the_batched_sums_equal_brute_force_ones_per_trajectory():
    # the sums of every trajectory at once (one key search, counts per trajectory) against a
    # loop over each trajectory's pairs; trajectories with gaps, one detection, unsorted rows
    from atomlens.track.features import _Trajectories, drift_corrected

    rng = np.random.default_rng(5)
    rows = []
    for particle in (7, 3, 11, 0):
        n = {7: 25, 3: 1, 11: 12, 0: 30}[particle]
        frames = np.sort(rng.choice(40, n, replace=False))
        points = np.cumsum(rng.normal(size=(n, 2)), axis=0)
        rows += [(f, particle, y, x) for f, (y, x) in zip(frames, points, strict=True)]
    table = pd.DataFrame(rows, columns=["frame", "particle", "y", "x"]).sample(
        frac=1, random_state=1
    )
    lags = np.arange(1, 6)
    trajectories = _Trajectories.of(drift_corrected(table), 1.0)
    walks = trajectories.walks(lags)
    bare = trajectories.walks(lags, covariance=False)
    np.testing.assert_array_equal(trajectories.particles, [0, 3, 7, 11])
    for row, particle in enumerate(trajectories.particles):
        part = table[table["particle"] == particle].sort_values("frame")
        expected = _pair_sums(part["frame"].to_numpy(), part[["y", "x"]].to_numpy(), lags)
        got = (walks.sums, walks.counts, walks.shared, walks.mixed, walks.ends)
        for value, want in zip(got, expected, strict=True):
            np.testing.assert_allclose(value[row], want, rtol=1e-12, atol=1e-12)
    # msd() skips the covariance sums (most of the cost); its sums and counts are the same
    np.testing.assert_array_equal(walks.sums, bare.sums)
    np.testing.assert_array_equal(walks.counts, bare.counts)
    assert walks.shared.any() and not bare.shared.any()


def test_a_trajectory_too_short_for_a_line_has_no_diffusion_coefficient():
    # two detections give pairs at one lag only: D is NaN there, and the others' D is unchanged
    walks = random_walks(0.5, 0.1, frames=20, walkers=3, seed=8)
    alone = trajectory_features(walks)
    short = pd.DataFrame({"frame": [0, 1], "particle": 99, "y": [1.0, 2.0], "x": [0.0, 0.0]})
    both = trajectory_features(pd.concat([walks, short], ignore_index=True))
    assert np.isnan(both.iloc[-1]["D"]) and both.iloc[-1]["path_length"] == pytest.approx(1.0)
    np.testing.assert_allclose(both["D"].to_numpy()[:3], alone["D"].to_numpy(), rtol=1e-12)
