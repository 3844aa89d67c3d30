import json

import h5py
import numpy as np
import pytest

from atomlens.cli import main
from atomlens.io import read
from atomlens.physics import Aberrations, AmorphousSpecimen, RonchigramSetup, simulate_ronchigram

BASE = [
    "simulate",
    "ronchigram",
    "--energy",
    "200e3",
    "--semiangle",
    "20",
    "--angular-sampling",
    "0.6",
    "--size",
    "64",
    "--seed",
    "3",
]


def test_single_ronchigram_matches_the_library(tmp_path, capsys):
    out = tmp_path / "r.tif"
    args = [
        *BASE,
        "--C10",
        "-200",
        "--C12",
        "100",
        "--phi12",
        "0.5",
        "--thickness",
        "40",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    image = read(out)
    expected = simulate_ronchigram(
        RonchigramSetup(energy=200e3, semiangle=20, angular_sampling=0.6, size=64),
        Aberrations(C10=-200, C12=100, phi12=0.5),
        AmorphousSpecimen(thickness=40),
        seed=3,
    )
    assert np.array_equal(np.asarray(image.data), expected)
    assert image.angular_sampling == pytest.approx((0.6, 0.6))
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["aberrations_A_rad"] == {"C10": -200.0, "C12": 100.0, "phi12": 0.5}
    assert sidecar["energy_eV"] == 200e3 and sidecar["semiangle_mrad"] == 20
    assert sidecar["specimen"]["thickness_A"] == 40
    assert "wrote" in capsys.readouterr().out


def test_dataset_has_labels_within_ranges(tmp_path):
    out = tmp_path / "set.h5"
    args = [
        *BASE,
        "--count",
        "5",
        "--range",
        "C10=-300:300",
        "--range",
        "C12=0:100",
        "--specimen",
        "phase-grating",
        "--dose",
        "1e5",
        "--no-progress",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    with h5py.File(out) as handle:
        images = handle["ronchigrams"][:]
        labels = handle["aberrations"][:]
        columns = json.loads(handle["aberrations"].attrs["columns"])
        parameters = json.loads(handle.attrs["parameters"])
    assert images.shape == (5, 64, 64)
    assert columns == ["C10", "C12", "phi12"]
    assert np.all(np.abs(labels[:, 0]) <= 300) and np.all(
        (labels[:, 1] >= 0) & (labels[:, 1] <= 100)
    )
    assert images.sum(axis=(1, 2)) == pytest.approx(1e5, rel=0.05)  # counts at the dose
    assert parameters["ranges_A_rad"]["C10"] == [-300.0, 300.0]
    # Image 2 is reproducible on its own from the stored labels and the seed.
    single = simulate_ronchigram_from_labels(labels[2], columns, index=2)
    assert single.shape == (64, 64)


def simulate_ronchigram_from_labels(row, columns, index):
    from atomlens.physics import PhaseGrating, simulate_ronchigrams

    setup = RonchigramSetup(energy=200e3, semiangle=20, angular_sampling=0.6, size=64)
    return simulate_ronchigrams(
        setup,
        [Aberrations(dict(zip(columns, row, strict=True)))],
        PhaseGrating(),
        seed=3,
        first_index=index,
    )[0]


def test_existing_output_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "r.tif"
    out.write_bytes(b"precious")
    assert main([*BASE, "-o", str(out)]) == 2
    assert out.read_bytes() == b"precious"
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--count", "3", "--range", "C10=oops", "-o", "x.h5"], "NAME=LOW:HIGH"),
        (["--count", "3", "-o", "x.h5"], "--range"),
        (["--count", "3", "--range", "C10=0:1", "-o", "x.tif"], "HDF5"),
        (["--range", "C10=0:1", "-o", "x.tif"], "--count"),
        (["--energy", "-5", "-o", "x.tif"], "energy"),
        (["--C12", "10", "-o", "x.png"], "TIFF"),
        (["--readout-noise", "2", "-o", "x.tif"], "--dose"),
    ],
)
def test_bad_arguments_give_one_clear_line(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    assert main([*BASE, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_info_prints_calibration_or_a_clear_error(tmp_path, capsys):
    from atomlens.io import write_tiff

    good = tmp_path / "image.tif"
    write_tiff(good, np.ones((8, 9), np.float32), pixel_size=0.5)
    bad = tmp_path / "broken.dm3"
    bad.write_text("not a DM3 file")
    assert main(["info", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert "8 x 9" in captured.out and "0.5" in captured.out and "Å" in captured.out
    assert "broken.dm3" in captured.err and "Traceback" not in captured.err


def test_help_names_units(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "ronchigram", "--help"])
    text = capsys.readouterr().out
    for unit in ("[eV]", "[mrad]", "[mrad / px]", "[Å]", "[rad]"):
        assert unit in text


def test_demo_writes_gallery_and_arrays(tmp_path, monkeypatch):
    import atomlens.cli.demo as demo

    monkeypatch.setattr(demo, "GALLERY_C10_NM", (-20.0, 20.0))
    monkeypatch.setattr(demo, "GALLERY_C12_NM", (0.0, 10.0))
    monkeypatch.setattr(demo, "GALLERY_C30_UM", (0.0, 50.0))
    assert main(["demo", "-o", str(tmp_path), "--size", "48"]) == 0
    assert (tmp_path / "ronchigram_gallery.png").stat().st_size > 1000
    with h5py.File(tmp_path / "ronchigram_gallery.h5") as handle:
        assert handle["ronchigrams"].shape == (6, 48, 48)
        assert handle["aberrations"].shape == (6, 4)
    example = read(tmp_path / "ronchigram.tif")
    assert example.data.shape == (48, 48)
    assert example.angular_sampling == pytest.approx((0.6, 0.6)) and example.energy == 200e3
