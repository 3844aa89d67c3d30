"""atomlens locate and track with --scheduler and --workers: the serial CSV, row for row."""

import numpy as np
import pandas as pd
import pytest

from atomlens.cli import main
from atomlens.data import SeriesSampler
from atomlens.io import write_tiff


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 5-frame TIFF stack, the same stack as .npy, and one image."""
    folder = tmp_path_factory.mktemp("parallel_cli")
    series = SeriesSampler(frames=5, size=80, distortions="shot").sample(1, seed=3000000)
    stack = write_tiff(folder / "series.tif", series.frames, pixel_size=series.pixel_size)
    np.save(folder / "series.npy", series.frames)
    image = write_tiff(folder / "image.tif", series.frames[0], pixel_size=series.pixel_size)
    return stack, folder / "series.npy", image


def run_twice(tmp_path, command, inputs, *parallel):
    """The CSV of the serial run and of the run with ``parallel`` options."""
    tables = []
    for name, extra in (("serial", []), ("parallel", list(parallel))):
        out = tmp_path / f"{name}.csv"
        args = [command, *map(str, inputs), "-o", str(out), "--pixel-size", "0.15", *extra]
        assert main(args) == 0
        tables.append(pd.read_csv(out))
    return tables


def test_locate_a_stack_on_two_threads(tmp_path, files, capsys):
    serial, parallel = run_twice(tmp_path, "locate", files[:1], "--workers", "2")
    pd.testing.assert_frame_equal(parallel, serial, check_exact=True)
    assert serial["frame"].nunique() == 5


def test_locate_several_files_one_per_process(tmp_path, files, capsys):
    serial, parallel = run_twice(tmp_path, "locate", files, "--scheduler", "processes",
                                 "--workers", "2")  # fmt: skip
    pd.testing.assert_frame_equal(parallel, serial, check_exact=True)
    assert serial["file"].unique().tolist() == [str(f) for f in files]


def test_track_a_stack_on_threads(tmp_path, files, capsys):
    serial, parallel = run_twice(tmp_path, "track", files[1:2], "--scheduler", "threads")
    pd.testing.assert_frame_equal(parallel, serial, check_exact=True)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--scheduler", "cluster"], "--scheduler must be one of 'threads'"),
        (["--workers", "0"], "--workers must be an integer >= 1"),
        (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "has its own"),
    ],
)
@pytest.mark.parametrize("command", ["locate", "track"])
def test_bad_parallel_options_are_refused(tmp_path, files, capsys, command, option, message):
    assert main([command, str(files[0]), "-o", str(tmp_path / "out.csv"), *option]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
