"""Property-based tests of ``atomlens.track.track`` and ``atomlens track``.

Tables of detections of every shape and content (empty, one frame, NaN and infinite positions,
fractional and negative frame numbers, duplicates, huge and tiny coordinates, hostile extra
columns) and hostile options. Contract:

- the library returns a table with trackpy's columns first, every detection once, its position
  unchanged, one particle per detection and at most one detection per particle per frame, a
  confidence in [0, 1]; or it raises a ``ValueError`` subclass with a message; it never
  modifies its input;
- linking does not depend on where the detections are: a shift of every position by a
  constant gives the same trajectories;
- the command exits 0 with a CSV, or 2 with one line and no output.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fuzz_strategies import HOSTILE_NUMBERS
from hypothesis import event, given, settings
from hypothesis import strategies as st

from atomlens import cli
from atomlens.track import COLUMNS, track

FEW = settings(max_examples=max(10, settings.default.max_examples // 3))

coordinates = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.sampled_from([*HOSTILE_NUMBERS, 0.0, 1e12, -1e12, 1e-12]),
)


@st.composite
def tables(draw) -> pd.DataFrame:
    """Detections: a jittered lattice over a few frames, or arbitrary rows."""
    if draw(st.booleans()):
        frames = draw(st.integers(1, 5))
        n = draw(st.integers(0, 6))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        sites = np.stack(np.mgrid[:n, :n], -1).reshape(-1, 2) * draw(st.sampled_from([1, 7.5]))
        rows = [
            (t, *(site + rng.normal(0, 0.2, 2) + draw(st.sampled_from([0.0, 3.0])) * t))
            for t in range(frames)
            for site in sites
            if rng.random() > 0.1
        ]
        table = pd.DataFrame(rows, columns=["frame", "y", "x"])
    else:
        size = draw(st.integers(0, 12))
        table = pd.DataFrame(
            {
                "frame": draw(st.lists(st.sampled_from([0, 1, 2, 1.5, -1, 7, np.nan]),
                                       min_size=size, max_size=size)),
                "y": draw(st.lists(coordinates, min_size=size, max_size=size)),
                "x": draw(st.lists(coordinates, min_size=size, max_size=size)),
            }
        )  # fmt: skip
    if draw(st.booleans()):
        table["label"] = "a"
    if draw(st.booleans()) and len(table.columns):
        table = table.drop(columns=draw(st.sampled_from(list(table.columns))))
    return table


def _track_under_contract(table: pd.DataFrame, **options) -> pd.DataFrame | None:
    before = table.copy()
    try:
        tracks = track(table, **options)
    except ValueError as error:
        event(f"refused: {type(error).__name__}")
        assert str(error)
        tracks = None
    pd.testing.assert_frame_equal(table, before)
    if tracks is not None:
        event("tracked")
        assert list(tracks.columns[: len(COLUMNS)]) == list(COLUMNS)
        assert len(tracks) == len(table)
        assert not tracks.duplicated(["frame", "particle"]).any()
        assert tracks["confidence"].between(0, 1).all()
        merged = np.sort(tracks[["y", "x"]].to_numpy(), axis=0)
        np.testing.assert_array_equal(merged, np.sort(table[["y", "x"]].to_numpy(), axis=0))
    return tracks


@FEW
@given(table=tables())
def test_any_table_is_tracked_or_refused(table):
    _track_under_contract(table)


@FEW
@given(
    pixel_size=st.one_of(st.none(), st.sampled_from([*HOSTILE_NUMBERS, 0.1, "0.1"])),
    frame_time=st.one_of(st.none(), st.sampled_from([*HOSTILE_NUMBERS, 0.5, True])),
    search_range=st.one_of(st.none(), st.sampled_from([*HOSTILE_NUMBERS, 0.5, 4.0, 1e9])),
    memory=st.one_of(st.integers(-3, 2000), st.floats(0, 3), st.booleans()),
    fast_range=st.one_of(st.none(), st.sampled_from([*HOSTILE_NUMBERS, 1.0, 1e6])),
    max_drift=st.one_of(st.none(), st.sampled_from([*HOSTILE_NUMBERS, 0.1, 50.0])),
)
def test_hostile_options_are_refused_or_work(pixel_size, frame_time, search_range, memory,
                                             fast_range, max_drift):  # fmt: skip
    sites = np.stack(np.mgrid[:5, :5], -1).reshape(-1, 2) * 8.0
    table = pd.DataFrame(
        [(t, y + t, x) for t in range(3) for y, x in sites], columns=["frame", "y", "x"]
    )
    _track_under_contract(table, pixel_size=pixel_size, frame_time=frame_time,
                          search_range=search_range, memory=memory, fast_range=fast_range,
                          max_drift=max_drift)  # fmt: skip


@FEW
@given(seed=st.integers(0, 2**32 - 1), offset=st.sampled_from([-500.0, 0.25, 1e4]))
def test_trajectories_do_not_depend_on_where_the_detections_are(seed, offset):
    rng = np.random.default_rng(seed)
    sites = np.stack(np.mgrid[:6, :6], -1).reshape(-1, 2) * 10.0
    rows = [
        (t, *(site + rng.normal(0, 0.5, 2) + [1.5 * t, -t]), k)
        for t in range(4)
        for k, site in enumerate(sites)
        if rng.random() > 0.1
    ]
    table = pd.DataFrame(rows, columns=["frame", "y", "x", "truth"])
    base = track(table)
    moved = track(table.assign(y=table["y"] + offset, x=table["x"] - offset))
    np.testing.assert_array_equal(base["particle"], moved["particle"])


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@FEW
@given(table=tables())
def test_the_command_writes_a_table_or_one_line(folder, table):
    case = Path(tempfile.mkdtemp(dir=folder))
    source = case / "atoms.csv"
    table.to_csv(source, index=False)
    before = source.read_bytes()
    output = case / "tracks.csv"
    code = cli.main(["track", str(source), "-o", str(output)])
    assert code in (0, 2)
    assert source.read_bytes() == before
    assert output.exists() == (code == 0)
    event(f"exit {code}")
