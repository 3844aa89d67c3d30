import json

import h5py
import numpy as np
import pandas as pd
import pytest

from atomlens.cli import main
from atomlens.io import read


@pytest.mark.parametrize("modality", ["stem", "hrtem"])
def test_simulate_image_writes_image_truth_and_sidecar(tmp_path, modality):
    out = tmp_path / modality
    args = [
        "simulate",
        modality,
        "--structure",
        "SrTiO3",
        "--zone-axis",
        "001",
        "--size",
        "64",
        "--pixel-size",
        "0.2",
        "--thickness",
        "12",
        "--dose",
        "500",
        "--distortions",
        "realistic",
        "--seed",
        "0",
        "-o",
        str(out),
        "--plot",
    ]
    assert main(args) == 0
    image, clean = read(out / "image.tif"), read(out / "clean.tif")
    assert image.data.shape == clean.data.shape == (64, 64)
    assert image.pixel_size == pytest.approx((0.2, 0.2))
    atoms = pd.read_csv(out / "atoms.csv")
    assert {"y", "x", "y_A", "x_A", "Z", "species", "count"} <= set(atoms.columns)
    assert set(atoms["species"]) == {"Sr", "Ti-O", "O"}
    parameters = json.loads((out / "parameters.json").read_text())
    assert parameters["imaging"]["modality"] == modality.upper()
    assert parameters["structure"]["zone_axis"] == [0, 0, 1]
    assert parameters["distortions"]["steps"]
    assert (out / "preview.png").stat().st_size > 1000


def test_simulate_series_writes_stack_tracks_and_events(tmp_path):
    out = tmp_path / "series"
    args = [
        "simulate",
        "series",
        "--structure",
        "graphene",
        "--size",
        "48",
        "--pixel-size",
        "0.15",
        "--frames",
        "5",
        "--adatoms",
        "3",
        "--appear-rate",
        "1",
        "--dose",
        "200",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    stack = read(out / "series.tif")
    assert stack.data.shape == (5, 48, 48)
    tracks = pd.read_csv(out / "tracks.csv")
    assert {"frame", "particle", "y", "x"} <= set(tracks.columns)
    assert sorted(tracks["frame"].unique()) == [0, 1, 2, 3, 4]
    events = pd.read_csv(out / "events.csv")
    assert (events["kind"] == "appear").sum() >= 1


def test_simulate_dataset_writes_heldout(tmp_path):
    out = tmp_path / "held.h5"
    args = [
        "simulate",
        "dataset",
        "--task",
        "restoration",
        "--count",
        "2",
        "--size",
        "32",
        "--no-progress",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    with h5py.File(out) as handle:
        assert handle["image"].shape == (2, 32, 32) and handle["clean"].shape == (2, 32, 32)
        assert handle.attrs["seed"] == 1_000_000
    assert main(args) == 2  # exists: not replaced without --overwrite


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--zone-axis", "0x1"], "zone-axis"),
        (["--zone-axis", "000"], "not all zero"),
        (["--structure", "Unobtainium"], "Unknown material"),
    ],
)
def test_bad_structure_arguments(tmp_path, capsys, extra, message):
    args = ["simulate", "stem", "--size", "32", "-o", str(tmp_path / "x"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_same_seed_same_image(tmp_path):
    base = ["simulate", "stem", "--size", "48", "--dose", "100", "--seed", "3"]
    assert main([*base, "-o", str(tmp_path / "a")]) == 0
    assert main([*base, "-o", str(tmp_path / "b")]) == 0
    a = np.asarray(read(tmp_path / "a" / "image.tif").data)
    b = np.asarray(read(tmp_path / "b" / "image.tif").data)
    assert np.array_equal(a, b)


def test_random_structure_records_what_was_drawn(tmp_path):
    import json

    out = tmp_path / "random"
    args = [
        "simulate",
        "stem",
        "--random-structure",
        "--size",
        "48",
        "--pixel-size",
        "0.15",
        "--distortions",
        "realistic",
        "--seed",
        "5",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    structure = json.loads((out / "parameters.json").read_text())["structure"]
    assert structure["kind"] in {"crystal", "grain_boundary", "edge", "nanoparticle"}
    assert len(pd.read_csv(out / "atoms.csv")) > 0
