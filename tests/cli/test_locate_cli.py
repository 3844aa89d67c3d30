"""``atomlens locate``: files in, one CSV table out, nothing of the user's overwritten."""

import warnings

import numpy as np
import pandas as pd
import pytest

from atomlens.cli import main
from atomlens.io import write_tiff


def lattice(shape=(96, 96), period=10.0, seed=0) -> np.ndarray:
    y, x = np.mgrid[: shape[-2], : shape[-1]] - period / 2
    clean = 20 + 300 * np.cos(np.pi * y / period) ** 16 * np.cos(np.pi * x / period) ** 16
    return np.random.default_rng(seed).poisson(clean).astype(np.float32)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    return write_tiff(
        tmp_path_factory.mktemp("locate_cli") / "input.tif", lattice(), pixel_size=0.2
    )


def test_locate_writes_the_table_in_both_units_and_a_plot(tmp_path, image_file, capsys):
    out, plot = tmp_path / "atoms.csv", tmp_path / "overlay.png"
    assert main(["locate", str(image_file), "-o", str(out), "--plot", str(plot)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 100 and plot.stat().st_size > 1000
    np.testing.assert_allclose(table["y_A"], 0.2 * table["y"])
    assert {"intensity", "class", "sigma_y", "sigma_x"} <= set(table.columns)
    assert "100 columns, spacing 10.0 px" in capsys.readouterr().out


def test_several_files_and_a_stack_get_file_and_frame_columns(tmp_path, image_file):
    stack = tmp_path / "stack.npy"
    np.save(stack, np.stack([lattice(seed=1), lattice(seed=2)]))
    out = tmp_path / "atoms.csv"
    assert main(["locate", str(image_file), str(stack), "--pixel-size", "0.2", "-o", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["file", "frame"]
    assert table.groupby("file").size().tolist() == [100, 200]


def test_without_calibration_positions_are_in_pixels(tmp_path, capsys):
    source = tmp_path / "raw.npy"
    np.save(source, lattice())
    out = tmp_path / "atoms.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # the command shows warnings as one line on stderr
        assert main(["locate", str(source), "-o", str(out)]) == 0
    assert "warning: No pixel size" in capsys.readouterr().err
    table = pd.read_csv(out)
    assert table["y_A"].isna().all() and len(table) == 100


def test_bad_inputs_and_outputs_get_one_line_errors(tmp_path, image_file, capsys):
    flat = write_tiff(tmp_path / "flat.tif", np.ones((64, 64), np.float32))
    assert main(["locate", str(flat), "-o", str(tmp_path / "a.csv")]) == 2
    assert "flat.tif" in capsys.readouterr().err and not (tmp_path / "a.csv").exists()
    assert main(["locate", str(image_file), "-o", str(tmp_path / "a.txt")]) == 2
    assert ".csv" in capsys.readouterr().err
    before = image_file.read_bytes()
    existing = tmp_path / "old.csv"
    existing.write_text("keep me")
    assert main(["locate", str(image_file), "-o", str(existing)]) == 2
    assert existing.read_text() == "keep me" and image_file.read_bytes() == before


def spied_option(monkeypatch, name: str) -> list:
    """The values of ``atomlens.locate``'s keyword ``name`` in the calls the CLI makes."""
    import atomlens.locate

    seen = []
    original = atomlens.locate.locate

    def spy(*args, **kwargs):
        seen.append(kwargs.get(name))
        return original(*args, **kwargs)

    monkeypatch.setattr(atomlens.locate, "locate", spy)
    return seen


def test_site_search_can_be_turned_off_and_on(tmp_path, image_file, monkeypatch):
    seen = spied_option(monkeypatch, "site_search")
    for choice in ("auto", "on", "off"):
        out = tmp_path / f"{choice}.csv"
        assert main(["locate", str(image_file), "--site-search", choice, "-o", str(out),
                     "--no-progress"]) == 0  # fmt: skip
        assert len(pd.read_csv(out)) == 100
    assert seen == [None, True, False]


def test_precise_is_passed_on(tmp_path, image_file, monkeypatch):
    seen = spied_option(monkeypatch, "precise")
    for flags, name in ((["--precise"], "precise.csv"), ([], "plain.csv")):
        out = tmp_path / name
        assert main(["locate", str(image_file), *flags, "-o", str(out), "--no-progress"]) == 0
        assert len(pd.read_csv(out)) == 100
    assert seen == [True, False]
