"""``atomlens enhance`` and ``atomlens locate --enhance`` end to end on files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomlens import cli
from atomlens.io import read, write_tiff


def _lattice_file(folder, name="lattice.tif", seed=0):
    y, x = np.mgrid[:128, :128] + 0.5
    clean = 20 + 80 * np.cos(np.pi * y / 9) ** 8 * np.cos(np.pi * x / 9) ** 8
    counts = np.random.default_rng(seed).poisson(clean).astype(np.float32)
    return write_tiff(folder / name, counts, pixel_size=0.3)


def test_enhance_writes_the_image_with_its_calibration_and_panels(tmp_path):
    source = _lattice_file(tmp_path)
    out, plot = tmp_path / "enhanced.tif", tmp_path / "panels.png"
    assert cli.main(["enhance", str(source), "-o", str(out), "--plot", str(plot)]) == 0
    result = read(out)
    assert result.data.shape == (128, 128) and result.pixel_size == pytest.approx((0.3, 0.3))
    assert plot.stat().st_size > 1000
    # an output is never replaced without --overwrite, and an input never
    assert cli.main(["enhance", str(source), "-o", str(out)]) == 2
    assert cli.main(["enhance", str(source), "-o", str(source), "--overwrite"]) == 2


def test_several_files_go_to_a_folder(tmp_path):
    files = [_lattice_file(tmp_path, f"f{i}.tif", seed=i) for i in range(2)]
    folder = tmp_path / "out"
    assert cli.main(["enhance", *map(str, files), "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["f0_enhanced.tif", "f1_enhanced.tif"]


def test_a_modality_the_model_does_not_know_is_refused_in_one_line(tmp_path, capsys):
    source = _lattice_file(tmp_path)
    code = cli.main(["enhance", str(source), "--modality", "hrtem", "-o", str(tmp_path / "o.tif")])
    assert code == 2
    assert "trained on haadf" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_locate_with_enhance_finds_the_columns_and_fits_the_counts(tmp_path):
    source = _lattice_file(tmp_path)
    table_path = tmp_path / "columns.csv"
    assert cli.main(["locate", str(source), "--enhance", "-o", str(table_path)]) == 0
    table = pd.read_csv(table_path)
    inner = table[table["y"].between(5, 122) & table["x"].between(5, 122)]
    assert len(inner) == 13 * 13  # columns at 8.5, 17.5, ... 116.5 px
    assert cli.main(["locate", str(source), "--enhance", "--workers", "2",
                     "-o", str(tmp_path / "b.csv")]) == 2  # fmt: skip


def test_enhance_reads_a_real_microscope_file(real_data, tmp_path):
    source = real_data / "SrTiO3_ADF_cropped.hdf5"
    out = tmp_path / "srtio3.h5"
    assert cli.main(["enhance", str(source), "-o", str(out)]) == 0
    assert read(out).data.shape == read(source).data.shape
