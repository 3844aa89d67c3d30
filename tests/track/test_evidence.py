"""Events read against the counts: a column missed by the detections is not a vacancy."""

import numpy as np
import pandas as pd
import pytest

from atomlens.core.validation import InputError
from atomlens.track import events, track
from atomlens.track.evidence import occupied_in_counts
from atomlens.track.sites import lattice_sites

SPACING, WIDTH, AMPLITUDE, BACKGROUND = 10.0, 1.8, 60.0, 10.0
GRID = np.stack(np.mgrid[5:75:10, 5:75:10], -1).reshape(-1, 2).astype(float)  # 49 columns
MISSED, VACANT = 24, 17  # the middle column, and one two sites up-left of it
FRAMES = 10


def _frame(columns: np.ndarray, rng: np.random.Generator, sign: float = 1.0) -> np.ndarray:
    y, x = np.mgrid[:80, :80]
    image = np.full((80, 80), BACKGROUND + (AMPLITUDE if sign < 0 else 0.0))
    for cy, cx in columns:
        image += sign * AMPLITUDE * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * WIDTH**2))
    return rng.poisson(image).astype(float)


def _series(sign: float = 1.0) -> tuple[np.ndarray, pd.DataFrame]:
    """Frames where the column VACANT leaves at frame 4 for good, and detections that also
    miss the column MISSED in frames 4-6 although the counts show it there."""
    rng = np.random.default_rng(3)
    frames, rows = [], []
    for t in range(FRAMES):
        present = [i for i in range(len(GRID)) if not (i == VACANT and t >= 4)]
        frames.append(_frame(GRID[present], rng, sign))
        for i in present:
            if i == MISSED and 4 <= t <= 6:
                continue
            y, x = GRID[i] + rng.normal(0, 0.1, 2)
            rows.append((t, y, x, 2 * np.pi * AMPLITUDE * WIDTH**2, WIDTH))
    detections = pd.DataFrame(rows, columns=["frame", "y", "x", "intensity", "width"])
    return np.stack(frames), detections


def _emptied(found: pd.DataFrame) -> set[int]:
    """The lattice indices of the sites the events say were emptied."""
    kinds = found[found["kind"].isin(["vacancy_creation", "hop", "vacancy_migration"])]
    created = kinds["kind"].eq("vacancy_creation").to_numpy()[:, None]
    places = np.where(created, kinds[["y", "x"]].to_numpy(), kinds[["y_from", "x_from"]].to_numpy())
    return {int(np.argmin(np.hypot(*(GRID - p).T))) for p in places}


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["bright columns", "dark columns"])
def test_a_column_the_detections_missed_is_no_vacancy_when_the_counts_are_read(sign):
    frames, detections = _series(sign)
    tracks = track(detections, pixel_size=0.1)
    assert MISSED in _emptied(events(tracks)) and VACANT in _emptied(events(tracks))
    read = events(tracks, frames=frames)
    assert _emptied(read) == {VACANT}


def test_only_sites_left_empty_are_tested_and_the_missed_column_is_found():
    frames, detections = _series()
    tracks = track(detections, pixel_size=0.1)
    sites = lattice_sites(tracks)
    found = occupied_in_counts(sites, frames, tracks)
    assert not (found & sites.occupied).any()
    missed = int(np.argmin(np.hypot(*(sites.positions - GRID[MISSED]).T)))
    vacant = int(np.argmin(np.hypot(*(sites.positions - GRID[VACANT]).T)))
    assert found[4:7, missed].all() and not found[:, vacant].any()
    assert found.sum() == 3


def test_a_faint_hump_left_at_a_vacancy_is_no_column():
    # what the neighbours' Gaussians leave out (a probe's tails) can add up at an empty site:
    # a broad hump of 13 % of a column there stands well above the noise (the significance
    # alone read the site occupied in all 6 empty frames), but is no column
    frames, detections = _series()
    y, x = np.mgrid[:80, :80]
    r2 = (y - GRID[VACANT, 0]) ** 2 + (x - GRID[VACANT, 1]) ** 2
    hump = 8.0 * np.exp(-r2 / (2 * (1.5 * WIDTH) ** 2))
    frames[4:] += np.random.default_rng(5).poisson(np.broadcast_to(hump, frames[4:].shape))
    tracks = track(detections, pixel_size=0.1)
    sites = lattice_sites(tracks)
    found = occupied_in_counts(sites, frames, tracks)
    missed = int(np.argmin(np.hypot(*(sites.positions - GRID[MISSED]).T)))
    vacant = int(np.argmin(np.hypot(*(sites.positions - GRID[VACANT]).T)))
    assert found[4:7, missed].all() and not found[:, vacant].any()
    assert found.sum() == 3
    # without the detections' intensities there is no usual column to compare with
    bare = occupied_in_counts(sites, frames, tracks.drop(columns="intensity"))
    assert bare[4:, vacant].sum() >= 5


def test_a_site_the_counts_show_empty_for_one_frame_is_refilled_by_a_move():
    # the middle site's atom is gone in frame 4; in frame 5 its right neighbour's atom moves in
    # and that site stays empty. Without the counts, the middle site's empty frame between two
    # occupied ones is taken for a missed detection: no move, the neighbour's site a vacancy
    middle, right = MISSED, MISSED + 1
    rng = np.random.default_rng(3)
    frames, rows = [], []
    for t in range(FRAMES):
        gone = {middle} if t == 4 else {right} if t >= 5 else set()
        present = [i for i in range(len(GRID)) if i not in gone]
        frames.append(_frame(GRID[present], rng))
        for i in present:
            y, x = GRID[i] + rng.normal(0, 0.1, 2)
            rows.append((t, y, x, 2 * np.pi * AMPLITUDE * WIDTH**2, WIDTH))
    tracks = track(pd.DataFrame(rows, columns=["frame", "y", "x", "intensity", "width"]),
                   pixel_size=0.1)  # fmt: skip
    columns = ["frame", "kind", "y_from", "x_from", "y_to", "x_to"]
    plain = events(tracks)[columns].to_numpy()
    assert plain[:, :2].tolist() == [[5, "vacancy_creation"]]
    read = events(tracks, frames=np.stack(frames))[columns].to_numpy()
    assert read[:, :2].tolist() == [[5, "vacancy_migration"]]
    ends = read[0, 2:].astype(float).reshape(2, 2)
    assert np.allclose(ends, [GRID[right], GRID[middle]], atol=0.5)


def test_frames_that_do_not_fit_the_tracks_are_refused():
    frames, detections = _series()
    tracks = track(detections, pixel_size=0.1)
    with pytest.raises(InputError, match="frames"):
        events(tracks, frames=frames[:5])
    with pytest.raises(InputError, match="frames"):
        events(tracks, frames=frames[0])
    with pytest.raises(InputError, match="frames"):
        events(tracks, frames=np.where(frames > 50, np.nan, frames))


def test_a_lazy_stack_gives_the_events_of_the_array():
    da = pytest.importorskip("dask.array")
    frames, detections = _series()
    tracks = track(detections, pixel_size=0.1)
    lazy = da.from_array(frames, chunks=(2, 80, 80))
    pd.testing.assert_frame_equal(events(tracks, frames=lazy), events(tracks, frames=frames))


def test_tracking_with_the_stack_gives_the_missed_column_its_detections_back():
    frames, detections = _series()
    plain = track(detections, pixel_size=0.1)
    filled = track(detections, pixel_size=0.1, stack=frames)
    assert "from_counts" not in plain and filled["from_counts"].sum() == 3
    added = filled[filled["from_counts"]]
    assert sorted(added["frame"]) == [4, 5, 6]
    assert np.hypot(*(added[["y", "x"]].to_numpy() - GRID[MISSED]).T).max() < 0.5
    # one trajectory through the gap, the added detections in it
    near = filled[np.hypot(*(filled[["y", "x"]].to_numpy() - GRID[MISSED]).T) < 2]
    assert len(near) == FRAMES and near["particle"].nunique() == 1
    # the rest is the plain tracking, and fill=False gives it exactly
    kept = filled[~filled["from_counts"]].drop(columns="from_counts")
    assert len(kept) == len(plain)
    # the second linking keeps the located columns' spacing, intensity scatter and drift
    for name in ("spacing_px", "intensity_scatter", "drift"):
        assert filled.attrs[name] == plain.attrs[name]
    pd.testing.assert_frame_equal(
        track(detections, pixel_size=0.1, stack=frames, fill=False), plain
    )
    with pytest.raises(ValueError, match="fill"):
        track(detections, pixel_size=0.1, stack=frames, fill="yes")
    with pytest.raises(InputError, match="frames"):
        track(detections, pixel_size=0.1, stack=frames[:5])
