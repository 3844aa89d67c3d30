"""atomlens.io writers: round trips, refusal to overwrite, and atomicity on failure."""

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from atomlens.io import (
    ImageData,
    read,
    read_hdf5,
    write_csv,
    write_hdf5,
    write_json,
    write_tiff,
)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(1).random((24, 32)).astype(np.float32)


@pytest.fixture
def atoms() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame(
        {
            "y": rng.random(10) * 24,
            "x": rng.random(10) * 32,
            "intensity": rng.random(10),
            "class": rng.integers(0, 3, 10),
        }
    )


# ---------------------------------------------------------------------- round trips


def test_tiff_round_trip_keeps_dtype_pixel_size_and_energy(tmp_path, image):
    path = write_tiff(
        tmp_path / "restored.tif",
        image,
        pixel_size=0.524,
        metadata={"energy": 300e3, "title": "restored", "note": np.arange(3)},
    )
    back = read(path)
    assert back.data.dtype == np.float32
    np.testing.assert_array_equal(back.data, image)
    assert back.pixel_size == (0.524, 0.524)
    assert back.energy == 300e3
    assert back.metadata["General"]["title"] == "restored"
    assert back.metadata["original_metadata"]["metadata"]["note"] == [0, 1, 2]


def test_tiff_stack_with_anisotropic_pixels(tmp_path, image):
    stack = np.stack([image, 2 * image, 3 * image])
    back = read(write_tiff(tmp_path / "series.tiff", stack, pixel_size=(0.5, 0.25)))
    np.testing.assert_array_equal(back.data, stack)
    assert back.kind == "stack"
    assert back.pixel_size == (0.5, 0.25)


def test_tiff_diffraction_pattern_in_mrad(tmp_path, image):
    path = write_tiff(tmp_path / "ronchigram.tif", image, angular_sampling=0.25)
    back = read(path)
    assert back.kind == "diffraction"
    assert back.angular_sampling == (0.25, 0.25)
    assert back.pixel_size is None
    with pytest.raises(ValueError, match="not both"):
        write_tiff(tmp_path / "x.tif", image, pixel_size=1.0, angular_sampling=1.0)


def test_tiff_reads_sampling_and_energy_from_metadata_entries(tmp_path, image):
    metadata = {"angular_sampling_mrad": 0.5, "energy_eV": 200e3}
    back = read(write_tiff(tmp_path / "sim.tif", image, metadata=metadata))
    assert back.angular_sampling == (0.5, 0.5)
    assert back.energy == 200e3


def test_tiff_resolution_tags_for_imagej(tmp_path, image):
    path = write_tiff(tmp_path / "image.tif", image, pixel_size=0.5)
    with tifffile.TiffFile(path) as tif:
        numerator, denominator = tif.pages[0].tags["XResolution"].value
        unit = tif.pages[0].tags["ResolutionUnit"].value
    assert unit == tifffile.RESUNIT.CENTIMETER
    assert denominator / numerator * 1e8 == pytest.approx(0.5)  # cm per pixel -> Å


def test_tiff_without_pixel_size_is_uncalibrated(tmp_path, image):
    data = (image * 1000).astype(np.uint16)
    back = read(write_tiff(tmp_path / "raw.tif", data))
    np.testing.assert_array_equal(back.data, data)
    assert back.data.dtype == np.uint16
    assert not back.calibrated


def test_tiff_from_image_data(tmp_path, image):
    source = ImageData.from_array(image, pixel_size=0.3, energy=200e3)
    back = read(write_tiff(tmp_path / "copy.tif", source))
    assert back.pixel_size == (0.3, 0.3)
    assert back.energy == 200e3


def test_foreign_tiffs_go_through_rosettasciio(tmp_path, image):
    tifffile.imwrite(tmp_path / "plain.tif", image)
    plain = read(tmp_path / "plain.tif")
    np.testing.assert_array_equal(plain.data, image)
    assert not plain.calibrated

    tifffile.imwrite(
        tmp_path / "imagej.tif",
        image,
        imagej=True,
        resolution=(1 / 0.05, 1 / 0.05),
        metadata={"unit": "nm"},
    )
    assert read(tmp_path / "imagej.tif").pixel_size == pytest.approx((0.5, 0.5))


def test_tiff_rejects_complex_and_1d(tmp_path):
    with pytest.raises(ValueError, match="real images"):
        write_tiff(tmp_path / "c.tif", np.zeros((4, 4), np.complex64))
    with pytest.raises(ValueError, match="real images"):
        write_tiff(tmp_path / "1d.tif", np.zeros(4))
    assert list(tmp_path.iterdir()) == []


def test_hdf5_round_trip(tmp_path, image):
    big = np.arange(200_000, dtype=np.float64).reshape(400, 500)
    attrs = {"pixel_size": 0.5, "energy": 200e3, "model": "cgrdn", "settings": {"a": [1, 2]}}
    path = write_hdf5(
        tmp_path / "out.h5",
        {"image": image, "maps/big": big, "labels": np.array(["Mo", "S"])},
        attrs=attrs,
    )
    datasets, back_attrs = read_hdf5(path)
    np.testing.assert_array_equal(datasets["image"], image)
    np.testing.assert_array_equal(datasets["maps/big"], big)
    assert list(datasets["labels"]) == ["Mo", "S"]
    assert back_attrs == attrs
    with h5py.File(path, "r") as handle:
        assert handle["maps/big"].compression == "gzip"
        assert handle["image"].compression is None
        assert handle.attrs["pixel_size"] == 0.5  # scalars stay native
        assert json.loads(handle.attrs["settings"]) == {"a": [1, 2]}


def test_hdf5_is_readable_as_a_calibrated_image(tmp_path, image):
    path = write_hdf5(tmp_path / "out.hdf5", {"image": image}, attrs={"pixel_size": 0.5})
    back = read(path)
    np.testing.assert_array_equal(back.data, image)
    assert back.pixel_size == (0.5, 0.5)


def test_csv_round_trip(tmp_path, atoms):
    back = pd.read_csv(write_csv(tmp_path / "atoms.csv", atoms))
    pd.testing.assert_frame_equal(back, atoms)


def test_csv_keeps_a_named_index(tmp_path, atoms):
    table = atoms.rename_axis("particle")
    back = pd.read_csv(write_csv(tmp_path / "atoms.csv", table), index_col="particle")
    pd.testing.assert_frame_equal(back, table)


def test_json_round_trip_with_numpy(tmp_path):
    obj = {
        "C10": np.float64(-12.5),
        "n": np.int64(3),
        "ok": np.bool_(True),
        "shift": np.array([[1.5, 2.0]]),
        "path": Path("a/b.dm3"),
        "nested": {"values": (np.float32(0.5), None)},
        "z": 1 + 2j,
    }
    path = write_json(tmp_path / "result.json", obj)
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "C10"')  # indent=2
    assert json.loads(text) == {
        "C10": -12.5,
        "n": 3,
        "ok": True,
        "shift": [[1.5, 2.0]],
        "path": "a/b.dm3",
        "nested": {"values": [0.5, None]},
        "z": {"real": 1.0, "imag": 2.0},
    }


# ---------------------------------------------------------------------- overwrite and atomicity

WRITERS = {
    "tiff": lambda path, overwrite=False: write_tiff(path, np.ones((4, 4)), overwrite=overwrite),
    "hdf5": lambda path, overwrite=False: write_hdf5(path, {"a": np.ones(3)}, overwrite=overwrite),
    "csv": lambda path, overwrite=False: write_csv(
        path, pd.DataFrame({"y": [1.0]}), overwrite=overwrite
    ),
    "json": lambda path, overwrite=False: write_json(path, {"a": 1}, overwrite=overwrite),
}


@pytest.mark.parametrize("kind", WRITERS)
def test_refuses_to_overwrite(tmp_path, kind):
    path = tmp_path / f"result.{kind}"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        WRITERS[kind](path)
    assert path.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("kind", WRITERS)
def test_overwrite_replaces_and_keeps_permissions(tmp_path, kind):
    path = tmp_path / f"result.{kind}"
    path.write_bytes(b"old")
    path.chmod(0o640)
    WRITERS[kind](path, overwrite=True)
    assert path.read_bytes() != b"old"
    assert path.stat().st_mode & 0o777 == 0o640
    assert list(tmp_path.iterdir()) == [path]


def test_new_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        path = write_json(tmp_path / "a.json", {})
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o640


def _assert_untouched(folder: Path, path: Path) -> None:
    assert path.read_bytes() == b"precious"
    assert list(folder.iterdir()) == [path], "temporary file left behind"


def test_failed_json_leaves_existing_file(tmp_path):
    path = tmp_path / "result.json"
    path.write_bytes(b"precious")
    with pytest.raises(TypeError, match="object"):
        write_json(path, {"a": object()}, overwrite=True)
    _assert_untouched(tmp_path, path)


def test_failed_hdf5_leaves_existing_file(tmp_path):
    path = tmp_path / "result.h5"
    path.write_bytes(b"precious")
    with pytest.raises(TypeError):
        write_hdf5(path, {"ok": np.ones(3)}, attrs={"bad": object()}, overwrite=True)
    _assert_untouched(tmp_path, path)


def test_failure_in_the_middle_of_writing_leaves_existing_file(tmp_path, atoms, monkeypatch):
    path = tmp_path / "atoms.csv"
    path.write_bytes(b"precious")

    def half_then_disk_full(self, target, **kwargs):
        Path(target).write_text("y,x\n1.0,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_csv(path, atoms, overwrite=True)
    _assert_untouched(tmp_path, path)


def test_failure_while_writing_hdf5_datasets(tmp_path, monkeypatch):
    path = tmp_path / "result.h5"
    path.write_bytes(b"precious")
    original = h5py.Group.create_dataset
    calls = []

    def fail_on_second(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        write_hdf5(path, {"a": np.ones(3), "b": np.ones(3)}, overwrite=True)
    _assert_untouched(tmp_path, path)


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_json(tmp_path / "no" / "such" / "dir.json", {})


def test_writers_reject_wrong_types(tmp_path):
    with pytest.raises(TypeError, match="DataFrame"):
        write_csv(tmp_path / "a.csv", {"y": [1]})
    with pytest.raises(TypeError, match="Python objects"):
        write_hdf5(tmp_path / "a.h5", {"a": np.array([object()])})
    assert list(tmp_path.iterdir()) == []
