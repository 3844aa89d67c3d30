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


def test_msd_sums_do_not_depend_on_the_covariance_sums_being_made():
    # msd() skips the covariance sums (most of the cost); its sums and counts are the same
    from atomlens.track.features import _walk

    rng = np.random.default_rng(5)
    frames = np.sort(rng.choice(40, 25, replace=False))
    points = np.cumsum(rng.normal(size=(25, 2)), axis=0)
    lags = np.arange(1, 11)
    full, bare = _walk(frames, points, lags), _walk(frames, points, lags, covariance=False)
    np.testing.assert_array_equal(full.sums, bare.sums)
    np.testing.assert_array_equal(full.counts, bare.counts)
    assert full.shared.any() and not bare.shared.any()
