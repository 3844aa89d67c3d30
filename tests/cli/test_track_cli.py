"""``atomlens track``: a stack or a table in, one CSV of trajectories out."""

import numpy as np
import pandas as pd
import pytest

from atomlens.cli import main
from atomlens.io import write_tiff


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory, drifting_stack):
    return write_tiff(
        tmp_path_factory.mktemp("track_cli") / "series.tif", drifting_stack(), pixel_size=0.2
    )


def test_a_stack_is_located_tracked_and_written_with_features(tmp_path, stack_file, capsys):
    out, features = tmp_path / "tracks.csv", tmp_path / "features.csv"
    code = main(["track", str(stack_file), "--frame-time", "0.5", "-o", str(out),
                 "--features", str(features)])  # fmt: skip
    assert code == 0
    tracks = pd.read_csv(out)
    assert list(tracks.columns[:7]) == ["frame", "particle", "y", "x", "y_A", "x_A", "confidence"]
    np.testing.assert_allclose(tracks["x_A"], 0.2 * tracks["x"])
    # interior columns (away from the edges the drift moves them across) last all four frames
    interior = tracks[tracks["y"].between(12, 48) & tracks["x"].between(12, 48)]
    assert (
        tracks[tracks["particle"].isin(interior["particle"])].groupby("particle").size() == 4
    ).all()
    table = pd.read_csv(features)
    assert {"D", "D_err", "mean_speed", "displacement"} <= set(table.columns)
    printed = capsys.readouterr().out
    assert "4 frames" in printed and "drift 5.4 px" in printed


def test_a_table_of_detections_is_tracked(tmp_path):
    rows = [(t, 10.0 * k, 5.0 + 0.2 * t) for t in range(3) for k in range(6)]
    source = tmp_path / "atoms.csv"
    pd.DataFrame(rows, columns=["frame", "y", "x"]).to_csv(source, index=False)
    out = tmp_path / "tracks.csv"
    assert main(["track", str(source), "-o", str(out)]) == 0
    tracks = pd.read_csv(out)
    assert tracks["particle"].nunique() == 6 and tracks["y_A"].isna().all()


def test_bad_inputs_and_outputs_get_one_line_errors(tmp_path, stack_file, drifting_stack, capsys):
    single = write_tiff(tmp_path / "single.tif", drifting_stack(frames=1)[0])
    assert main(["track", str(single), "-o", str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err
    assert "single.tif" in err and "not a series" in err and not (tmp_path / "a.csv").exists()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"frame": [0, 1], "y": [1.0, 2.0]}).to_csv(bad, index=False)
    assert main(["track", str(bad), "-o", str(tmp_path / "a.csv")]) == 2
    assert "missing: x" in capsys.readouterr().err
    assert (
        main(["track", str(stack_file), "--frame-time", "-1", "-o", str(tmp_path / "a.csv")]) == 2
    )
    assert "--frame-time (time between frames) must lie in" in capsys.readouterr().err
    assert main(["track", str(stack_file), "-o", str(tmp_path / "a.txt")]) == 2
    assert ".csv" in capsys.readouterr().err
    existing = tmp_path / "old.csv"
    existing.write_text("keep me")
    before = stack_file.read_bytes()
    assert main(["track", str(stack_file), "-o", str(existing)]) == 2
    assert existing.read_text() == "keep me" and stack_file.read_bytes() == before
    assert main(["track", str(stack_file), "-o", str(stack_file), "--overwrite"]) == 2
    assert stack_file.read_bytes() == before


def test_events_are_written_beside_the_tracks(tmp_path):
    grid = np.stack(np.mgrid[0:60:10, 0:60:10], -1).reshape(-1, 2).astype(float)
    rows = [(t, *grid[i]) for t in range(8) for i in range(36) if i not in (14, 15)]
    rows += [(t, *grid[14 if t < 4 else 15]) for t in range(8)]  # a hop into the vacancy 15
    source = tmp_path / "atoms.csv"
    pd.DataFrame(rows, columns=["frame", "y", "x"]).to_csv(source, index=False)
    out, found = tmp_path / "tracks.csv", tmp_path / "events.csv"
    assert main(["track", str(source), "-o", str(out), "--events", str(found)]) == 0
    table = pd.read_csv(found)
    assert table[["frame", "kind", "y_from", "x_from", "y_to", "x_to"]].values.tolist() == [
        [4, "hop", 20.0, 20.0, 20.0, 30.0]
    ]
    assert main(["track", str(source), "-o", str(out), "--events", str(found)]) == 2  # exists


def test_the_fill_from_the_counts_is_on_for_a_stack_and_can_be_turned_off(tmp_path, stack_file):
    runs = {}
    for flags in ([], ["--no-fill"]):
        out = tmp_path / f"tracks{len(flags)}.csv"
        assert main(["track", str(stack_file), "-o", str(out), *flags]) == 0
        runs[bool(flags)] = pd.read_csv(out)
    assert "from_counts" in runs[False] and "from_counts" not in runs[True]
    assert len(runs[False]) == len(runs[True]) + int(runs[False]["from_counts"].sum())
