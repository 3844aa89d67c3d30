"""Hostile and broken input files: one clear error (naming the file and the field), bounded time
and memory. Every file is built here, small, in tmp_path."""

import json
import struct
import time
import tracemalloc

import h5py
import numpy as np
import pytest
import tifffile
from fake_microscope_files import write_dm3, write_mrc, write_ser
from PIL import Image

from atomlens.cli import main
from atomlens.core.validation import InputError, SizeLimitError
from atomlens.io import (
    ComplexDataError,
    EmptyFileError,
    FileMissingError,
    ImageData,
    SchemaError,
    UnreadableFileError,
    describe,
    read,
    read_hdf5,
    read_ronchigram_dataset,
    read_ronchigram_sidecar,
    write_hdf5,
    write_ronchigram_dataset,
    write_ronchigram_sidecar,
    write_tiff,
)
from atomlens.physics.structures.materials import material

SETUP = {"energy_eV": 200e3, "semiangle_mrad": 30.0, "angular_sampling_mrad_per_px": 0.5}


def _bomb(path, *, written: bool) -> None:
    """A few-kB gzip HDF5 file declaring a 32768 x 32768 float32 (4 GiB) dataset."""
    with h5py.File(path, "w") as handle:
        data = handle.create_dataset(
            "data", shape=(32768, 32768), dtype="f4", chunks=(256, 256), compression="gzip"
        )
        if written:
            data[:256, :256] = 1.0  # one chunk stored: the rest is the fill value


def _npy_header_only(path, shape, descr="<f4") -> None:
    """A .npy file whose header declares ``shape`` but holds 64 bytes of data."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header = header + " " * (118 - len(header)) + "\n"
    path.write_bytes(
        b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(64)
    )


# ---------------------------------------------------------------------- 1. info reads no data


def test_info_describes_a_decompression_bomb_without_reading_it(tmp_path, capsys):
    path = tmp_path / "bomb.h5"
    _bomb(path, written=True)
    assert path.stat().st_size < 100_000
    text = describe(path)
    assert "32768 x 32768" in text and "float32" in text
    assert "not read: the data take 4 GiB, more than the 256 MiB" in text
    assert main(["info", str(path)]) == 0
    assert "not read" in capsys.readouterr().out


def test_info_on_a_huge_declared_dataset_says_it_skipped_the_values(tmp_path):
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("data", shape=(400000, 500000), dtype="f4", chunks=(1024, 1024))
    text = describe(path)
    assert "400000 x 500000" in text and "not read: the data take 745 GiB" in text


def test_info_on_a_normal_file_still_shows_values(tmp_path, capsys):
    image = np.arange(24 * 32, dtype=np.float32).reshape(24, 32)
    path = write_tiff(tmp_path / "small.tif", image, pixel_size=0.5)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "min 0, max 767, mean 383.5" in out and "0.5" in out


# ---------------------------------------------------------------------- 2. size before reading


def test_unwritten_hdf5_dataset_is_refused_without_decompressing(tmp_path):
    path = tmp_path / "bomb.h5"
    _bomb(path, written=False)
    with pytest.raises(EmptyFileError, match=r"bomb\.h5: dataset '/data'.*stores no data"):
        read(path)


def test_hdf5_dataset_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("data", shape=(400000, 500000), dtype="f4", chunks=(1024, 1024))
    with pytest.raises(SizeLimitError, match=r"big\.h5 would take 745 GiB.*ATOMLENS_MAX_ARRAY_GB"):
        read(path)


def test_npy_header_that_lies_about_its_size_is_unreadable(tmp_path):
    path = tmp_path / "big.npy"
    _npy_header_only(path, (100000, 100000))
    with pytest.raises(UnreadableFileError, match=r"big\.npy.*declares shape \(100000, 100000\)"):
        read(path)
    with pytest.raises(UnreadableFileError, match="holds only 64 bytes"):
        describe(path)


@pytest.mark.parametrize("suffix", [".npy", ".h5", ".tif", "-foreign.tif", ".dm3", ".png"])
def test_every_reader_checks_the_declared_size(tmp_path, monkeypatch, suffix):
    image = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    path = tmp_path / f"image{suffix}"
    if suffix == ".npy":
        np.save(path, image)
    elif suffix == ".h5":
        write_hdf5(path, {"image": image})
    elif suffix == ".tif":
        write_tiff(path, image)
    elif suffix == ".dm3":
        write_dm3(path, image, scale=0.1, units="nm")
    elif suffix == ".png":
        Image.fromarray(image).save(path)
    else:
        tifffile.imwrite(path, image)
    assert read(path).data.shape == (64, 64)
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", str(1000 / 2**30))  # 1000 bytes < 4096
    with pytest.raises(SizeLimitError, match=path.name):
        read(path)


def test_read_hdf5_checks_sizes_before_reading(tmp_path, monkeypatch):
    path = write_hdf5(tmp_path / "a.h5", {"a": np.zeros(400, np.float32)})
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", str(1000 / 2**30))
    with pytest.raises(SizeLimitError, match=r"array 'a' of .*a\.h5"):
        read_hdf5(path)


# ---------------------------------------------------------------------- 3. complex images


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".h5"])
def test_complex_image_is_refused_at_read_time(tmp_path, suffix):
    data = (np.ones((16, 16)) + 1j).astype(np.complex64)
    path = tmp_path / f"wave{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, data)
    elif suffix == ".npy":
        np.save(path, data)
    else:
        write_hdf5(path, {"wave": data})
    with pytest.raises(ComplexDataError, match=rf"wave\{suffix} holds complex values") as error:
        read(path)
    assert isinstance(error.value, InputError)
    assert "complex values: atomlens.io.read refuses them" in describe(path)


# ---------------------------------------------------------------------- 4. Ronchigram sidecars


def _sidecar(tmp_path, **changes):
    """A valid version-2 sidecar with ``changes`` applied (a value of ... deletes the key)."""
    path = write_ronchigram_sidecar(
        tmp_path / "r.json", setup=SETUP, aberrations={"C10": -50.0}, tilt=(0.1, 0.2)
    )
    record = json.loads(path.read_text())
    for key, value in changes.items():
        target = record
        *parents, last = key.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value
    path.write_text(json.dumps(record))
    return path


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"setup.energy_eV": [1, 2]}, "setup.energy_eV"),
        ({"setup.energy_eV": "200e3"}, "setup.energy_eV"),
        ({"setup.energy_eV": True}, "setup.energy_eV"),
        ({"setup.semiangle_mrad": float("nan")}, "setup.semiangle_mrad"),
        ({"setup.angular_sampling_mrad_per_px": float("inf")}, "angular_sampling_mrad_per_px"),
        ({"setup.energy_eV": 10**400}, "setup.energy_eV"),
        ({"setup.energy_eV": 1e300}, "setup.energy_eV"),
        ({"setup.size_px": [64, "x"]}, "setup.size_px"),
        ({"setup.size_px": [10**9, 10**9]}, "setup.size_px"),
        ({"aberrations_A_rad.C10": "abc"}, "aberrations_A_rad.C10"),
        ({"aberrations_A_rad.C10": [1.0]}, "aberrations_A_rad.C10"),
        ({"aberrations_A_rad.defocus": 1.0}, "aberrations_A_rad"),
        ({"tilt_mrad": 5}, "tilt_mrad"),
        ({"tilt_mrad": ["a", "b"]}, "tilt_mrad"),
        ({"specimen": "amorphous"}, "specimen"),
        ({"image_units": 7}, "image_units"),
        ({"parameters": [1]}, "parameters"),
        ({"setup": [1, 2]}, "setup"),
    ],
)
def test_crafted_sidecar_fields_give_one_schema_error(tmp_path, changes, field):
    path = _sidecar(tmp_path, **changes)
    with pytest.raises(SchemaError) as error:
        read_ronchigram_sidecar(path)
    assert str(path) in str(error.value) and field in str(error.value)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, UnreadableFileError, "nested too deeply"),
        (b'{"schema": "\xff\xfe"}', UnreadableFileError, "UTF-8"),
        (b'{"version": ' + b"9" * 5000 + b"}", UnreadableFileError, "digits"),
        (b"{not json", UnreadableFileError, "as JSON"),
        (b" " * (2 << 20), SchemaError, "takes 2 MiB"),
    ],
)
def test_unparseable_sidecar_gives_one_error_naming_the_file(tmp_path, content, error, message):
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(error, match=message) as raised:
        read_ronchigram_sidecar(path)
    assert str(path) in str(raised.value)


def test_sidecar_that_is_a_folder(tmp_path):
    (tmp_path / "r.json").mkdir()
    with pytest.raises(FileMissingError, match=r"r\.json is a folder"):
        read_ronchigram_sidecar(tmp_path / "r.json")


# ---------------------------------------------------------------------- 4. Ronchigram datasets


def _dataset(tmp_path, change):
    path = write_ronchigram_dataset(
        tmp_path / "d.h5",
        np.zeros((3, 12, 10), np.float32),
        [{"C10": 1.0, "C12": 2.0}] * 3,
        SETUP,
        tilts=np.zeros((3, 2)),
        captions=["a", "b", "c"],
    )
    with h5py.File(path, "r+") as handle:
        change(handle)
    return path


def _replace(name, value):
    def change(handle):
        attrs = dict(handle[name].attrs) if name in handle else {}
        del handle[name]
        handle[name] = value
        handle[name].attrs.update(attrs)

    return change


def _set_attr(owner, key, value):
    def change(handle):
        target = handle if owner == "/" else handle[owner]
        if value is None:
            del target.attrs[key]
        else:
            target.attrs[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_replace("ronchigrams", np.array(["a", "b", "c"], dtype=object)), "'ronchigrams'"),
        (_replace("ronchigrams", np.zeros((3, 12))), "'ronchigrams'"),
        (_replace("aberrations", np.array([["x", "y"]] * 3, dtype=object)), "'aberrations'"),
        (_replace("aberrations", np.zeros((3, 3))), "'aberrations'"),
        (_replace("aberrations", np.full((3, 2), np.nan)), "'aberrations' column C10"),
        (_replace("tilts", np.zeros((2, 2))), "'tilts'"),
        (_replace("captions", np.array([1, 2, 3])), "'captions'"),
        (lambda handle: handle.__delitem__("aberrations"), "'aberrations'"),
        (lambda handle: handle.__delitem__("ronchigrams"), "'ronchigrams'"),
        (lambda handle: handle.__delitem__("tilts") or handle.create_group("tilts"), "a group"),
        (_set_attr("/", "setup", None), "'setup'"),
        (_set_attr("/", "setup", '{"energy_eV": [1, 2]}'), "setup"),
        (_set_attr("/", "setup", "[" * 100_000), "'setup' is not valid JSON"),
        (_set_attr("/", "parameters", "[1]"), "'parameters'"),
        (_set_attr("/", "schema", np.arange(3)), "'schema'"),
        (_set_attr("aberrations", "columns", '["C10", 3]'), "columns"),
        (_set_attr("aberrations", "units", '["Å"]'), "units"),
    ],
)
def test_crafted_dataset_gives_one_schema_error(tmp_path, change, field):
    path = _dataset(tmp_path, change)
    with pytest.raises(SchemaError) as error:
        read_ronchigram_dataset(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_dataset_that_declares_unwritten_images_is_refused(tmp_path):
    def bomb(handle):
        del handle["ronchigrams"]
        handle.create_dataset("ronchigrams", (3, 16384, 16384), "f4", chunks=(1, 256, 256))

    with pytest.raises(SchemaError, match=r"d\.h5: 'ronchigrams' declares .* stores no data"):
        read_ronchigram_dataset(_dataset(tmp_path, bomb))


def test_dataset_array_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    path = _dataset(tmp_path, lambda handle: None)
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", str(1000 / 2**30))
    with pytest.raises(SizeLimitError, match=r"'ronchigrams' of .*d\.h5"):
        read_ronchigram_dataset(path)


# ---------------------------------------------------------------------- 5. structure files


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("passwd", "root:x:0:0:root:/root:/bin/bash\n", "not a structure file ase can read"),
        ("empty.cif", "", r"is empty \(0 bytes\)"),
        ("bad.cif", "data_x\n_cell_length_a abc\nloop_\n_atom_site_label\n", "malformed"),
        ("nocell.xyz", "2\n\nSi 0 0 0\nSi 1.3 1.3 1.3\n", "no unit cell"),
    ],
)
def test_bad_structure_file_gives_one_value_error_naming_it(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        material(path)
    assert str(path) in str(error.value)


def test_huge_structure_file_and_folder_are_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.cif"
    with open(path, "wb") as handle:
        handle.truncate(17 * 2**20)  # sparse: takes no disk space
    with pytest.raises(ValueError, match=r"huge\.cif takes 17\.0 MiB, more than the 16 MiB"):
        material(path)
    (tmp_path / "folder.cif").mkdir()
    with pytest.raises(ValueError, match=r"folder\.cif is not a file"):
        material(tmp_path / "folder.cif")


# ---------------------------------------------------------------------- 6. found by fuzzing
# (tests/fuzz/test_fuzz_readers.py); each pins the failing example with explicit values


def test_summary_mean_of_values_near_the_float64_limit_is_finite(tmp_path):
    # the float64 sum overflowed: "mean inf" and a RuntimeWarning (an error under pytest)
    big, tiny = np.finfo(np.float64).max, np.finfo(np.float64).tiny
    data = np.array([[big, -big], [tiny, 0.0]])
    assert "mean 5.56268e-309" in ImageData.from_array(data).summary()
    path = write_tiff(tmp_path / "extreme.tif", data)
    assert "max 1.79769e+308, mean 5.56268e-309" in describe(path)


def test_write_hdf5_pixel_size_pair_reads_back(tmp_path, ramp):
    # write_hdf5 stores a (y, x) pixel_size as JSON text; read() called float() on the text
    path = write_hdf5(
        tmp_path / "pair.h5", {"image": ramp}, attrs={"pixel_size": [0.5, 0.25], "energy": 3e5}
    )
    image = read(path)
    assert image.pixel_size == (0.5, 0.25) and image.energy == 3e5
    assert np.array_equal(image.data, ramp)


@pytest.mark.parametrize("pixel_size", ["abc", [1.0, 2.0, 3.0], [-1.0, 1.0], 10**400, "[1e999]"])
def test_hdf5_pixel_size_that_is_not_one_or_two_positive_numbers_is_ignored(
    tmp_path, ramp, pixel_size
):
    path = write_hdf5(tmp_path / "bad.h5", {"image": ramp}, attrs={"note": [1]})
    with h5py.File(path, "r+") as handle:
        handle.attrs["pixel_size"] = pixel_size if pixel_size != 10**400 else "1" + "0" * 400
        handle.attrs["energy"] = "1" + "0" * 400
    image = read(path)
    assert image.pixel_size is None and not image.calibrated and image.energy is None


def test_dataset_with_a_corrupt_hdf5_heap_is_unreadable_not_a_runtime_error(tmp_path, ramp):
    # h5py raised RuntimeError ("bad local heap signature") from `name in handle`
    path = write_hdf5(tmp_path / "d.h5", {"image": ramp})
    content = path.read_bytes()
    assert content.count(b"HEAP") == 1
    path.write_bytes(content.replace(b"HEAP", b"HEAQ"))
    with pytest.raises(UnreadableFileError, match=r"d\.h5: .*bad local heap signature"):
        read_ronchigram_dataset(path)


def test_mrc_header_declaring_terabytes_is_refused_before_rosettasciio(tmp_path):
    # rosettasciio built per-chunk index arrays for the declared 2.8 TiB: a MemoryError, or
    # minutes of work for other sizes, before anything was read
    path = write_mrc(tmp_path / "lying.mrc", np.ones((4, 4), np.float32), pixel_size=1.0)
    content = bytearray(path.read_bytes())
    content[0:8] = struct.pack("<II", 2495750812, 4994305)  # nx, ny
    path.write_bytes(bytes(content))
    start = time.perf_counter()
    for reader in (read, describe):
        with pytest.raises(UnreadableFileError, match=r"lying\.mrc.*declares 2495750812 x 4994305"):
            reader(path)
    assert time.perf_counter() - start < 5


def test_ser_dimension_record_with_a_wrong_text_length_allocates_nothing(tmp_path, ramp):
    # description length 6 -> 0: rosettasciio read "Numb" as a 1.65 GB units length and
    # allocated the header record of that size before failing
    path = write_ser(tmp_path / "lying_1.ser", ramp, pixel_size=1e-10)
    content = bytearray(path.read_bytes())
    assert content[54:58] == struct.pack("<I", 6) and content[58:64] == b"Number"
    content[54:58] = bytes(4)
    path.write_bytes(bytes(content))
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableFileError, match=r"lying_1\.ser.*dimension records"):
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (18, 2**32 - 1, "elements at byte"),  # ValidNumberElements
        (26, 2**31, "dimensions"),  # NumberDimensions
        (22, 2**32 - 8, "elements at byte"),  # OffsetArrayOffset
    ],
)
def test_ser_header_fields_beyond_the_file_are_refused(tmp_path, ramp, offset, value, message):
    path = write_ser(tmp_path / "lying_1.ser", ramp, pixel_size=1e-10)
    content = bytearray(path.read_bytes())
    content[offset : offset + 4] = struct.pack("<I", value)
    path.write_bytes(bytes(content))
    with pytest.raises(UnreadableFileError, match=message):
        read(path)


def test_hdf5_null_attribute_is_described_not_a_type_error(tmp_path, ramp):
    # an HDF5 attribute with a null dataspace reads as h5py.Empty, whose shape is None:
    # to_builtin called tuple(None) while copying the metadata
    path = write_hdf5(tmp_path / "null.h5", {"image": ramp})
    with h5py.File(path, "r+") as handle:
        handle.attrs["note"] = h5py.Empty("f4")
    image = read(path)
    assert image.metadata["original_metadata"]["note"] == "<Empty shape=None dtype=float32>"
    assert "24 x 32" in describe(path)
