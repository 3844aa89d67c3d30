import json

import numpy as np
import pytest

from atomlens.cli import main
from atomlens.io import read, read_ronchigram_dataset, read_ronchigram_sidecar, sidecar_path
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
    sidecar = read_ronchigram_sidecar(sidecar_path(out))
    assert sidecar.version == 2 and sidecar.image_units.startswith("intensity")
    assert sidecar.aberrations == {"C10": -200.0, "C12": 100.0, "phi12": 0.5}
    assert sidecar.setup == {"energy_eV": 200e3, "semiangle_mrad": 20.0,
                             "angular_sampling_mrad_per_px": 0.6, "size_px": [64, 64],
                             "edge_width_mrad": 0.6, "source_size_A": 0.0}  # fmt: skip
    assert sidecar.specimen["thickness_A"] == 40 and sidecar.detector is None
    assert sidecar.parameters["seed"] == 3
    assert "wrote" in capsys.readouterr().out


def test_dataset_has_labels_within_ranges_and_reproducible_images(tmp_path):
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
        "--tilt-std",
        "0.3",
        "--batch-size",
        "2",
        "--no-progress",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    data = read_ronchigram_dataset(out)
    assert data.images.shape == (5, 64, 64) and data.image_units == "counts"
    assert data.columns == ("C10", "C12", "phi12") and data.units == ("Å", "Å", "rad")
    labels = data.aberrations
    assert np.all(np.abs(labels[:, 0]) <= 300) and np.all(
        (labels[:, 1] >= 0) & (labels[:, 1] <= 100)
    )
    assert data.images.sum(axis=(1, 2)) == pytest.approx(1e5, rel=0.05)  # counts at the dose
    assert data.parameters["ranges_A_rad"]["C10"] == [-300.0, 300.0]
    assert data.tilts.shape == (5, 2) and np.abs(data.tilts).max() > 0
    # Image 2 is simulated again on its own from what the file stores (setup, its labels, its
    # tilt, seed) and must give the same counts; it differs from its neighbours, so a dataset
    # whose labels and images were out of step fails here.
    again = simulate_from_dataset(data, 2)
    assert np.array_equal(again, data.images[2])
    assert not np.array_equal(again, data.images[1]) and not np.array_equal(again, data.images[3])


def simulate_from_dataset(data, index):
    from atomlens.physics import PhaseGrating, ronchigram_camera, simulate_ronchigrams

    setup = RonchigramSetup(
        energy=data.setup["energy_eV"],
        semiangle=data.setup["semiangle_mrad"],
        angular_sampling=data.setup["angular_sampling_mrad_per_px"],
        size=tuple(data.setup["size_px"]),
        edge_width=data.setup["edge_width_mrad"],
        source_size=data.setup["source_size_A"],
    )
    specimen = data.parameters["specimen"]
    assert specimen["type"] == "phase_grating"
    return simulate_ronchigrams(
        setup,
        [Aberrations(data.labels(index))],
        PhaseGrating(specimen["phase_std_rad"], specimen["correlation_length_A"]),
        tilts=data.tilts[index : index + 1],
        detector=ronchigram_camera(data.parameters["detector"]["steps"][0]["dose_per_image_e"]),
        seed=data.parameters["seed"],
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


def test_demo_writes_gallery_and_arrays(tmp_path, monkeypatch, capsys):
    import atomlens.cli.demo as demo
    from atomlens.physics import simulate_ronchigrams

    monkeypatch.setattr(demo, "GALLERY_C10_NM", (-20.0, 20.0))
    monkeypatch.setattr(demo, "GALLERY_C12_NM", (-10.0, 10.0))
    monkeypatch.setattr(demo, "GALLERY_C30_UM", (0.0, 50.0))
    monkeypatch.setattr(demo, "SERIES_FRAMES", 4)
    monkeypatch.setattr(demo, "SERIES_SIZE", 96)
    assert main(["demo", "-o", str(tmp_path), "--size", "112"]) == 0
    assert (tmp_path / "ronchigram_gallery.png").stat().st_size > 1000
    # The demo ends with atomlens run on its series and says where the report is.
    assert read(tmp_path / "series.tif").data.shape == (4, 96, 96)
    report = tmp_path / "run" / "report.html"
    assert f"open {report}" in capsys.readouterr().out
    assert "Trajectories and events" in report.read_text()

    # The gallery: rows of A1 (C12 < 0 means along y, phi12 = pi / 2) by columns of C10 [nm],
    # then a row of C30 [um] at C10 = -20 nm; labels stored in Å and rad.
    gallery = read_ronchigram_dataset(tmp_path / "ronchigram_gallery.h5")
    assert gallery.images.shape == (6, 112, 112)
    assert gallery.columns == ("C10", "C12", "phi12", "C30")
    expected = [[-200, 100, np.pi / 2, 0], [200, 100, np.pi / 2, 0], [-200, 100, 0, 0],
                [200, 100, 0, 0], [-200, 0, 0, 0], [-200, 0, 0, 5e5]]  # fmt: skip
    assert np.array_equal(gallery.aberrations, expected)
    assert gallery.captions[1] == "C10 +20 nm, A1x -10 nm"
    assert gallery.setup["angular_sampling_mrad_per_px"] == 0.6
    setup = RonchigramSetup(energy=200e3, semiangle=30, angular_sampling=0.6, size=112)
    again = simulate_ronchigrams(
        setup, [Aberrations(gallery.labels(5))], AmorphousSpecimen(thickness=100.0), first_index=5
    )[0]
    assert np.array_equal(again, gallery.images[5])  # image 5 is the one its labels describe

    example = read(tmp_path / "ronchigram.tif")
    assert example.data.shape == (112, 112)
    assert example.angular_sampling == pytest.approx((0.6, 0.6)) and example.energy == 200e3
    sidecar = read_ronchigram_sidecar(sidecar_path(tmp_path / "ronchigram.tif"))
    calibration = json.loads((tmp_path / "calibration.json").read_text())
    assert sidecar.aberrations == calibration["truth"]
    assert sidecar.aberrations == Aberrations(C10=-200.0, C12=100.0, phi12=0.5, C21=400.0,
                                              phi21=1.0, C30=2e4).to_abtem()  # fmt: skip
    assert sidecar.setup["size_px"] == [112, 112] and sidecar.image_units == "counts"
    assert sidecar.detector["steps"][0] == {
        "name": "ShotNoise",
        "dose_per_pixel_e_per_px": None,
        "dose_per_image_e": 1e7,
        "exact_below_e": 20.0,
    }
    assert {"C10", "C10_std", "C12", "phi12", "C30"} <= set(calibration)


def test_an_output_may_never_be_an_input(tmp_path, capsys):
    image = tmp_path / "r.tif"
    assert main([*BASE, "-o", str(image)]) == 0
    files = {path: path.read_bytes() for path in (image, sidecar_path(image))}
    for output in files:  # the image itself, or the sidecar calibrate reads beside it
        args = ["calibrate", str(image), "-o", str(output), "--overwrite"]
        assert main(args) == 2
        assert f"would replace the input {output}" in capsys.readouterr().err
    assert all(path.read_bytes() == data for path, data in files.items())
    assert main([*BASE, "-o", str(image)]) == 2  # exists: same message in every command
    assert "r.json exist; pass --overwrite" in capsys.readouterr().err


def test_ctrl_c_exits_130_without_a_traceback(monkeypatch, capsys):
    import atomlens.cli.info as info_command

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info_command, "run", interrupted)
    assert main(["info", "whatever.tif"]) == 130
    assert "interrupted" in capsys.readouterr().err
