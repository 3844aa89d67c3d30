"""Linking planted trajectories: gaps, hops, fast adatoms, births and deaths, drift, and a
simulated series scored by MOTA and IDF1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import atomlens
from atomlens.metrics import tracking_scores
from atomlens.track import track

SPACING = 10.0


def lattice(rows: int = 8, cols: int = 8) -> np.ndarray:
    """Sites (y, x) of a square lattice [px], ``SPACING`` apart, starting at the origin."""
    return np.stack(np.mgrid[:rows, :cols], -1).reshape(-1, 2) * SPACING


def series(paths: dict[int, dict[int, tuple[float, float]]], jitter=0.3, seed=0) -> pd.DataFrame:
    """A table of detections from ``{truth id: {frame: (y, x)}}`` plus Gaussian jitter [px];
    the truth id is kept as a column."""
    rng = np.random.default_rng(seed)
    rows = [
        (frame, y + rng.normal(0, jitter), x + rng.normal(0, jitter), truth)
        for truth, path in paths.items()
        for frame, (y, x) in path.items()
    ]
    table = pd.DataFrame(rows, columns=["frame", "y", "x", "truth"])
    return table.sort_values(["frame", "truth"]).reset_index(drop=True)


def static(frames=range(12), sites=None) -> dict[int, dict[int, tuple[float, float]]]:
    sites = lattice() if sites is None else sites
    return {k: {t: tuple(site) for t in frames} for k, site in enumerate(sites)}


def assert_identities_kept(tracks: pd.DataFrame) -> None:
    """Every trajectory follows one true atom and every true atom is one trajectory."""
    per_particle = tracks.groupby("particle")["truth"].nunique()
    per_truth = tracks.groupby("truth")["particle"].nunique()
    assert per_particle.max() == 1, per_particle[per_particle > 1]
    assert per_truth.max() == 1, per_truth[per_truth > 1]


def test_an_atom_missed_for_two_frames_keeps_its_identity():
    paths = static()
    for frame in (4, 5):
        del paths[27][frame]
    tracks = track(series(paths))
    assert_identities_kept(tracks)
    assert len(tracks[tracks["truth"] == 27]) == 10
    # a gap longer than memory=1 ends the trajectory
    split = track(series(paths), memory=1)
    assert split[split["truth"] == 27]["particle"].nunique() == 2


def test_a_hop_to_a_neighbouring_empty_site_keeps_identity():
    sites = lattice()
    empty = 36  # site (4, 4): a vacancy; atom 35 at (4, 3) hops into it at frame 6
    paths = static(sites=np.delete(sites, empty, axis=0))
    hopper = 35
    for frame in range(6, 12):
        paths[hopper][frame] = tuple(sites[empty])
    tracks = track(series(paths))
    assert_identities_kept(tracks)
    assert tracks.loc[tracks["truth"] == hopper, "frame"].tolist() == list(range(12))


def test_fast_adatoms_crossing_each_other_keep_their_identities():
    paths = static()
    # two adatoms beside the lattice, 8 px per frame (beyond the 5 px search range) in
    # opposite directions, 4 px apart across their path: at the crossing the nearest
    # detection is the other adatom's; the constant-velocity prediction tells them apart
    paths[100] = {t: (100.0, 10.0 + 8 * t) for t in range(12)}
    paths[101] = {t: (104.0, 98.0 - 8 * t) for t in range(12)}
    tracks = track(series(paths, jitter=0.2))
    assert tracks.attrs["search_range"] == pytest.approx(5.0, rel=0.05)
    assert_identities_kept(tracks)
    fast = tracks[tracks["truth"] >= 100]
    assert fast.groupby("particle").size().tolist() == [12, 12]


def test_a_birth_and_a_death_are_separate_trajectories():
    paths = static()
    del paths[10]  # a vacancy at site 10 until an atom arrives there at frame 4
    paths[200] = {t: tuple(lattice()[10]) for t in range(4, 12)}
    for frame in range(8, 12):  # atom 50 leaves after frame 7
        del paths[50][frame]
    tracks = track(series(paths))
    assert_identities_kept(tracks)
    born = tracks[tracks["truth"] == 200]
    assert born["frame"].min() == 4 and len(born) == 8
    assert tracks.loc[tracks["truth"] == 50, "frame"].max() == 7
    # a single detection that nothing continues is linked to nothing
    assert tracks["particle"].nunique() == 64


@pytest.mark.parametrize(
    "steps",
    [
        np.tile([3.5, -2.5], (9, 1)),  # uniform, 4.3 px per frame
        np.outer(np.minimum(np.arange(1, 10), 6), [1.2, 0.3]),  # speeding up to 7.4 px/frame
    ],
)
def test_drift_is_estimated_and_removed(steps):
    """Drifts of several px per frame on a 10 px lattice; the second builds up to beyond half
    the lattice spacing per frame (the drift is taken to change by less than that)."""
    shifts = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])
    sites = lattice(10, 10)
    paths = {k: {t: tuple(site + shifts[t]) for t in range(10)} for k, site in enumerate(sites)}
    del paths[44][3]  # a miss, so that not every frame is perfect
    tracks = track(series(paths, jitter=0.2))
    assert_identities_kept(tracks)
    np.testing.assert_allclose(tracks.attrs["drift"], shifts, atol=0.15)
    if np.hypot(*steps[-1]) > tracks.attrs["search_range"]:
        # without drift removal the same detections lose their identities
        raw = track(series(paths, jitter=0.2), drift=False)
        assert raw.groupby("truth")["particle"].nunique().max() > 1


def test_output_columns_units_and_confidence():
    paths = static(frames=range(5))
    paths[300] = {2: (200.0, 200.0)}  # a lone detection far from everything
    table = series(paths)
    table["intensity"] = 1.0
    tracks = track(table, pixel_size=0.25, frame_time=0.5)
    assert list(tracks.columns) == [
        "frame", "particle", "y", "x", "y_A", "x_A", "confidence", "truth", "intensity"
    ]  # fmt: skip
    np.testing.assert_allclose(tracks["y_A"], 0.25 * tracks["y"])
    assert tracks.attrs["pixel_size"] == 0.25 and tracks.attrs["frame_time"] == 0.5
    lone = tracks[tracks["truth"] == 300]
    assert lone["confidence"].tolist() == [0.0]
    lattice_rows = tracks[tracks["truth"] < 300]
    assert lattice_rows["confidence"].between(0.6, 1.0).all()
    assert np.isnan(track(table)["y_A"]).all()


def test_the_package_is_callable_and_keeps_the_input():
    table = series(static(frames=range(3)))
    before = table.copy()
    tracks = atomlens.track(table)
    pd.testing.assert_frame_equal(table, before)
    assert tracks["particle"].nunique() == 64


def truth_table(simulated) -> pd.DataFrame:
    """True columns per frame: the atoms stacked in one site are one column, named by the
    smallest particle id among them; adatoms as they are; only atoms in view."""
    tracks = simulated.tracks[simulated.tracks["in_view"]]
    sites = tracks[tracks["site"] >= 0].groupby(["frame", "site"], as_index=False)
    columns = sites.agg(particle=("particle", "min"), y=("y", "mean"), x=("x", "mean"))
    adatoms = tracks.loc[tracks["site"] < 0, ["frame", "particle", "y", "x"]]
    return pd.concat([columns.drop(columns="site"), adatoms], ignore_index=True)


def test_tracking_a_simulated_series_scores_high():
    from atomlens.data import SeriesSampler

    simulated = SeriesSampler(frames=12, size=96, distortions="none").sample(2, seed=3000000)
    truth = truth_table(simulated)
    rng = np.random.default_rng(0)
    found = truth[["frame", "y", "x"]].copy()
    found[["y", "x"]] += rng.normal(0, 0.3, (len(found), 2))
    found = found[rng.random(len(found)) > 0.02]  # 2 % missed
    tracks = track(found, pixel_size=simulated.pixel_size)
    scores = tracking_scores(tracks, truth, radius=0.4 * 2 * tracks.attrs["search_range"])
    assert scores["fp"] == 0
    assert scores["mota"] > 0.95 and scores["idf1"] > 0.95
    assert scores["idsw"] <= 0.01 * scores["gt"]


def test_a_bright_adatom_on_top_of_a_dim_column_keeps_its_identity():
    """A heavy adatom sits on a light column for two frames (the column's own detection is
    lost under it): by position alone the column's track takes the adatom; with the
    detections' intensities the adatom keeps its trajectory and the column waits for its own."""
    sites = lattice()
    column = int(np.flatnonzero((sites == (40.0, 40.0)).all(1))[0])
    paths = static(sites=sites)
    adatom = 300
    paths[adatom] = {t: (45.0, 45.0) for t in range(12)}
    for frame in (4, 5):
        paths[adatom][frame] = (40.9, 40.6)
        del paths[column][frame]
    table = series(paths, jitter=0.2)
    rng = np.random.default_rng(1)
    bright = np.where(table["truth"] == adatom, 1000.0, 100.0)
    table["intensity"] = bright * rng.uniform(0.85, 1.15, len(table))
    tracks = track(table)
    assert_identities_kept(tracks)
    assert len(tracks[tracks["truth"] == adatom]) == 12
    # positions alone: the column's trajectory runs into the adatom's detections
    alone = track(table.drop(columns="intensity"))
    assert alone.groupby("particle")["truth"].nunique().max() > 1
