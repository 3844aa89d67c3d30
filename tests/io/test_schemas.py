"""Round trips of the versioned Ronchigram dataset and sidecar, old versions and refusals."""

import json

import h5py
import numpy as np
import pytest

from atomlens.io import (
    DATASET_SCHEMA,
    SchemaError,
    SchemaVersionError,
    read_ronchigram_dataset,
    read_ronchigram_sidecar,
    sidecar_path,
    write_hdf5,
    write_json,
    write_ronchigram_dataset,
    write_ronchigram_sidecar,
)

SETUP = {
    "energy_eV": 200e3,
    "semiangle_mrad": 30.0,
    "angular_sampling_mrad_per_px": 0.5,
    "size_px": [12, 10],
    "edge_width_mrad": 0.5,
    "source_size_A": 0.0,
}
LABELS = [
    {"C10": -120.0, "C12": 30.0, "phi12": 0.25},
    {"C10": 40.0, "C30": 2e4},
    {"C12": 5.0, "phi12": -1.0, "C21": 300.0, "phi21": 0.5},
]


def _images(rng):
    return rng.random((3, 12, 10)).astype(np.float32)


def test_dataset_round_trip_keeps_arrays_labels_units_and_setup(tmp_path):
    rng = np.random.default_rng(0)
    images, tilts = _images(rng), rng.normal(size=(3, 2))
    path = write_ronchigram_dataset(
        tmp_path / "set.h5",
        images,
        LABELS,
        SETUP,
        image_units="counts",
        tilts=tilts,
        captions=["a", "b", "c"],
        parameters={"seed": 4, "specimen": {"type": "amorphous", "thickness_A": 100.0}},
    )
    data = read_ronchigram_dataset(path)
    assert data.version == 2 and len(data) == 3
    assert data.images.dtype == np.float32 and np.array_equal(data.images, images)
    # C.. before phi.., each by order, as atomlens.physics lists them
    assert data.columns == ("C10", "C12", "C21", "C30", "phi12", "phi21")
    assert data.units == ("Å", "Å", "Å", "Å", "rad", "rad")
    for index, labels in enumerate(LABELS):
        expected = dict.fromkeys(data.columns, 0.0) | labels
        assert data.labels(index) == expected
    assert data.setup == SETUP and data.image_units == "counts"
    assert np.array_equal(data.tilts, tilts) and data.captions == ("a", "b", "c")
    assert data.parameters["specimen"]["thickness_A"] == 100.0
    with h5py.File(path) as handle:  # the layout others may read without atomlens
        assert handle.attrs["schema"] == DATASET_SCHEMA and handle.attrs["version"] == 2
        assert json.loads(handle["aberrations"].attrs["units"])[-1] == "rad"


def test_dataset_written_from_blocks_equals_one_array(tmp_path):
    images = _images(np.random.default_rng(1))
    labels = [{"C10": -120.0, "C12": 30.0}, {"C10": 40.0}, {"C12": 5.0}]
    blocks = (images[i : i + 2] for i in range(0, 3, 2))  # a generator: never all in memory
    write_ronchigram_dataset(tmp_path / "b.h5", blocks, labels, SETUP, columns=["C12", "C10"])
    write_ronchigram_dataset(tmp_path / "a.h5", images, labels, SETUP, columns=["C12", "C10"])
    one = read_ronchigram_dataset(tmp_path / "a.h5")
    other = read_ronchigram_dataset(tmp_path / "b.h5")
    assert np.array_equal(one.images, other.images)
    assert np.array_equal(other.aberrations, [[30.0, -120.0], [0.0, 40.0], [5.0, 0.0]])
    assert other.columns == ("C12", "C10") and other.tilts is None and other.captions is None
    with pytest.raises(ValueError, match=r"\['C21'\], which are not in columns"):
        extra = [{"C10": 1.0}, {"C30": 2.0}, {"C21": 1.0}]
        write_ronchigram_dataset(tmp_path / "c.h5", images, extra, SETUP, columns=["C10", "C30"])


@pytest.mark.parametrize(
    ("images", "labels", "setup", "message"),
    [
        (np.zeros((2, 12, 10)), LABELS, SETUP, "2 images for 3"),
        (np.zeros((3, 12, 10)), [{"defocus": 1.0}] * 3, SETUP, "abTEM name"),
        (np.zeros((3, 12, 10)), LABELS, {"energy_eV": 200e3}, "semiangle_mrad"),
        (np.zeros((3, 12, 10)), LABELS, SETUP | {"semiangle_mrad": -1}, "positive"),
        (np.zeros((3, 12)), LABELS, SETUP, "(N, rows, columns)"),
    ],
)
def test_dataset_writer_refuses_bad_input_and_leaves_no_file(
    tmp_path, images, labels, setup, message
):
    with pytest.raises(ValueError) as error:
        write_ronchigram_dataset(tmp_path / "x.h5", images, labels, setup)
    assert message in str(error.value)
    assert not list(tmp_path.iterdir())


def test_dataset_writer_never_overwrites_without_asking(tmp_path):
    images = _images(np.random.default_rng(2))
    path = write_ronchigram_dataset(tmp_path / "s.h5", images, LABELS, SETUP)
    with pytest.raises(FileExistsError):
        write_ronchigram_dataset(path, images[::-1], LABELS, SETUP)
    write_ronchigram_dataset(path, images[::-1], LABELS, SETUP, overwrite=True)
    assert np.array_equal(read_ronchigram_dataset(path).images, images[::-1])


def _write_v1_cli_dataset(path, images, labels, columns):
    """The layout ``atomlens simulate ronchigram --count`` wrote before the schema (version 1)."""
    record = {"atomlens_version": "0.1.0.dev0", "kind": "ronchigram", "energy_eV": 200e3,
              "semiangle_mrad": 20, "angular_sampling_mrad_per_px": 0.6, "size_px": [12, 10],
              "edge_width_mrad": 0.6, "source_size_A": 0.0, "real_space_sampling_A": 0.16,
              "specimen": {"type": "phase_grating"}, "detector": None, "seed": 3,
              "units": "counts", "ranges_A_rad": {"C10": [-300, 300]}}  # fmt: skip
    with h5py.File(path, "w") as handle:
        data = handle.create_dataset("ronchigrams", data=images, chunks=(1, 12, 10))
        data.attrs["units"] = record["units"]
        handle.create_dataset("aberrations", data=labels).attrs["columns"] = json.dumps(columns)
        handle["aberrations"].attrs["units"] = "C in Å, phi in rad (abTEM names)"
        handle.create_dataset("tilts", data=np.zeros((len(images), 2))).attrs["units"] = "mrad"
        handle.attrs["parameters"] = json.dumps(record)


def test_version_1_datasets_still_read(tmp_path):
    images = _images(np.random.default_rng(3))
    labels = np.array([[-100.0, 20.0, 0.5], [0.0, 0.0, 0.0], [250.0, 80.0, -1.0]])
    _write_v1_cli_dataset(tmp_path / "cli.h5", images, labels, ["C10", "C12", "phi12"])
    data = read_ronchigram_dataset(tmp_path / "cli.h5")
    assert data.version == 1 and np.array_equal(data.images, images)
    assert data.columns == ("C10", "C12", "phi12") and data.units == ("Å", "Å", "rad")
    assert data.labels(2) == {"C10": 250.0, "C12": 80.0, "phi12": -1.0}
    assert data.setup["energy_eV"] == 200e3 and data.setup["angular_sampling_mrad_per_px"] == 0.6
    assert data.image_units == "counts" and data.parameters["seed"] == 3

    # the demo gallery of earlier versions: write_hdf5 with flat attributes
    write_hdf5(
        tmp_path / "demo.h5",
        {"ronchigrams": images, "aberrations": labels},
        attrs={"aberration_columns": ["C10", "C12", "phi12"], "aberration_units": "Å, rad",
               "labels": ["x", "y", "z"], "energy_eV": 200e3, "semiangle_mrad": 30.0,
               "angular_sampling_mrad_per_px": 0.6, "specimen": {"type": "amorphous"}},
    )  # fmt: skip
    demo = read_ronchigram_dataset(tmp_path / "demo.h5")
    assert demo.version == 1 and demo.columns == ("C10", "C12", "phi12")
    assert np.array_equal(demo.aberrations, labels) and demo.captions == ("x", "y", "z")
    assert demo.setup == {"energy_eV": 200e3, "semiangle_mrad": 30.0,
                          "angular_sampling_mrad_per_px": 0.6, "size_px": [12, 10]}  # fmt: skip
    assert demo.parameters["specimen"] == {"type": "amorphous"}


def test_unknown_dataset_versions_and_other_files_are_refused(tmp_path):
    path = write_ronchigram_dataset(
        tmp_path / "s.h5", _images(np.random.default_rng(4)), LABELS, SETUP
    )
    with h5py.File(path, "r+") as handle:
        handle.attrs["version"] = 3
    with pytest.raises(SchemaVersionError, match=r"s\.h5.*version 3.*reads versions 1, 2"):
        read_ronchigram_dataset(path)
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["frames"] = np.zeros((2, 4, 4))
    with pytest.raises(SchemaError, match=r"other\.h5 is not a Ronchigram dataset.*schema"):
        read_ronchigram_dataset(tmp_path / "other.h5")
    with h5py.File(tmp_path / "tracks.h5", "w") as handle:
        handle.attrs["schema"] = "someone.tracks"
    with pytest.raises(SchemaError, match=r"'someone.tracks', not 'atomlens.ronchigram-dataset'"):
        read_ronchigram_dataset(tmp_path / "tracks.h5")
    (tmp_path / "text.h5").write_text("not HDF5")
    with pytest.raises(OSError, match="cannot read"):
        read_ronchigram_dataset(tmp_path / "text.h5")


def test_sidecar_round_trip(tmp_path):
    image = tmp_path / "r.tif"
    path = write_ronchigram_sidecar(
        sidecar_path(image),
        setup=SETUP,
        aberrations={"C10": -200.0, "C12": 100.0, "phi12": 0.5},
        tilt=(0.5, -0.25),
        specimen={"type": "amorphous", "thickness_A": 40.0},
        detector={"dose_electrons": 1e7},
        image_units="counts",
        parameters={"seed": 3, "oversampling": "auto"},
    )
    assert path == tmp_path / "r.json"
    record = json.loads(path.read_text())
    assert record["schema"] == "atomlens.ronchigram-sidecar" and record["version"] == 2
    sidecar = read_ronchigram_sidecar(path)
    assert sidecar.version == 2 and sidecar.setup == SETUP
    assert sidecar.aberrations == {"C10": -200.0, "C12": 100.0, "phi12": 0.5}
    assert sidecar.tilt == (0.5, -0.25) and sidecar.image_units == "counts"
    assert sidecar.specimen["thickness_A"] == 40.0 and sidecar.detector["dose_electrons"] == 1e7
    assert sidecar.parameters == {"seed": 3, "oversampling": "auto"}


def test_version_1_sidecars_still_read(tmp_path):
    old = {"atomlens_version": "0.1.0.dev0", "kind": "ronchigram", "energy_eV": 200e3,
           "semiangle_mrad": 20, "angular_sampling_mrad_per_px": 0.6, "size_px": [64, 64],
           "edge_width_mrad": 0.6, "source_size_A": 0.0, "wavelength_A": 0.025,
           "specimen": {"type": "amorphous"}, "detector": None, "seed": 3,
           "units": "counts", "aberrations_A_rad": {"C10": -200.0},
           "tilt_mrad": [0.0, 0.0]}  # fmt: skip
    write_json(tmp_path / "old.json", old)
    sidecar = read_ronchigram_sidecar(tmp_path / "old.json")
    assert sidecar.version == 1 and sidecar.aberrations == {"C10": -200.0}
    assert sidecar.setup["semiangle_mrad"] == 20 and sidecar.setup["size_px"] == [64, 64]
    assert sidecar.image_units == "counts" and sidecar.parameters["wavelength_A"] == 0.025


def test_unknown_sidecars_are_refused(tmp_path):
    write_json(tmp_path / "params.json", {"kind": "stem", "pixel_size_A": 0.2})
    with pytest.raises(SchemaError, match=r"params\.json is not a Ronchigram sidecar"):
        read_ronchigram_sidecar(tmp_path / "params.json")
    write_json(tmp_path / "list.json", [1, 2])
    with pytest.raises(SchemaError, match="JSON object"):
        read_ronchigram_sidecar(tmp_path / "list.json")
    newer = {"schema": "atomlens.ronchigram-sidecar", "version": 7, "setup": {}}
    write_json(tmp_path / "new.json", newer)
    with pytest.raises(SchemaVersionError, match=r"new\.json.*version 7.*Update atomlens"):
        read_ronchigram_sidecar(tmp_path / "new.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(OSError, match=r"cannot read .*broken\.json as JSON"):
        read_ronchigram_sidecar(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError):
        read_ronchigram_sidecar(tmp_path / "missing.json")
