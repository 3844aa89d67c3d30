"""``atomlens analyze``: a table of columns in, tables, the lattice and maps out."""

import json

import numpy as np
import pandas as pd
import pytest

from atomlens.cli import main
from atomlens.io import write_tiff


@pytest.fixture(scope="module")
def located(tmp_path_factory):
    """An image with one empty site, its file and the CSV of atomlens locate."""
    folder = tmp_path_factory.mktemp("analyze_cli")
    y, x = np.mgrid[:128, :128] - 4.0
    image = 10 + 300 * np.cos(np.pi * y / 8) ** 16 * np.cos(np.pi * x / 8) ** 16
    image[65:72, 65:72] = 10.0  # the column at (68, 68) removed
    image = np.random.default_rng(0).poisson(image).astype(np.float32)
    source = write_tiff(folder / "image.tif", image, pixel_size=0.25)
    table = folder / "atoms.csv"
    assert main(["locate", str(source), "-o", str(table)]) == 0
    return source, table


def test_analyze_writes_tables_lattice_and_maps(tmp_path, located, capsys):
    source, table = located
    out = tmp_path / "analysis"
    assert main(["analyze", str(table), "--image", str(source), "-o", str(out)]) == 0
    columns = pd.read_csv(out / "columns.csv")
    assert {"i", "j", "dy", "dx", "exx", "eyy", "exy", "rotation"} <= set(columns.columns)
    lattice = json.loads((out / "lattice.json").read_text())
    assert lattice["a_A"] == pytest.approx(2.0, abs=0.01) and lattice["pixel_size_A"] == 0.25
    vacancies = pd.read_csv(out / "vacancies.csv")
    assert len(vacancies) == 1 and np.hypot(vacancies.y[0] - 68, vacancies.x[0] - 68) < 0.5
    assert (out / "maps.png").stat().st_size > 10_000
    assert "1 vacancies" in capsys.readouterr().out


def test_a_stack_table_needs_a_frame_and_bad_tables_are_refused(tmp_path, located, capsys):
    _, table = located
    rows = pd.read_csv(table)
    stack = tmp_path / "stack.csv"
    pd.concat([rows.assign(frame=0), rows.assign(frame=1)]).to_csv(stack, index=False)
    assert main(["analyze", str(stack), "-o", str(tmp_path / "a")]) == 2
    assert "--frame" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["analyze", str(stack), "--frame", "1", "-o", str(tmp_path / "b")]) == 0
    broken = tmp_path / "broken.csv"
    broken.write_text("not,a\ntable")
    assert main(["analyze", str(broken), "-o", str(tmp_path / "c")]) == 2
    assert "y and x" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "d")]) == 2
