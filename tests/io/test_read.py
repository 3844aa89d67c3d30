"""atomlens.io.read: calibration, units and errors, on synthetic and (when present) real files."""

import struct

import h5py
import numpy as np
import pytest
from fake_microscope_files import write_dm3, write_hspy, write_mrc, write_ser
from PIL import Image

from atomlens.core.energy import wavelength
from atomlens.core.units import classify_units
from atomlens.io import (
    AtomlensIOError,
    EmptyFileError,
    FileMissingError,
    ImageData,
    MissingCalibrationError,
    NotAnImageError,
    SignalIndexError,
    UnreadableFileError,
    UnsupportedFormatError,
    read,
    write_hdf5,
    write_tiff,
)

# ---------------------------------------------------------------------- DM3


@pytest.mark.parametrize(
    "dtype", [np.uint16, np.int16, np.uint32, np.int32, np.float32, np.float64, np.uint8]
)
def test_dm3_returns_array_pixel_size_and_energy(tmp_path, ramp, dtype):
    data = ramp.astype(dtype)
    path = write_dm3(tmp_path / "image.dm3", data, scale=0.015625, units="nm", voltage=200e3)

    image = read(path)

    assert image.data.dtype == dtype
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_size == (0.15625, 0.15625)  # 0.015625 nm, exact in binary
    assert [axis.name for axis in image.axes] == ["y", "x"]
    assert [axis.units for axis in image.axes] == ["Å", "Å"]
    assert image.energy == pytest.approx(200e3)
    assert image.kind == "image"
    assert image.calibrated
    assert image.format == "dm3"
    assert image.metadata["Acquisition_instrument"]["TEM"]["microscope"] == "Test microscope"
    assert image.metadata["General"]["date"] == "2016-07-03"


@pytest.mark.parametrize(
    ("scale", "units", "angstrom"),
    [(0.5, "nm", 5.0), (12.5, "pm", 0.125), (0.0005, "µm", 5.0), (1.5, "Å", 1.5)],
)
def test_dm3_units_are_converted_to_angstrom(tmp_path, ramp, scale, units, angstrom):
    path = write_dm3(tmp_path / "image.dm3", ramp, scale=scale, units=units)
    assert read(path).pixel_size == pytest.approx((angstrom, angstrom), rel=1e-6)


def test_dm3_diffraction_in_mrad_when_energy_known(tmp_path, ramp):
    path = write_dm3(tmp_path / "dp.dm3", ramp, scale=0.1, units="1/nm", voltage=200e3)

    image = read(path)

    assert image.kind == "diffraction"
    assert [axis.name for axis in image.axes] == ["ky", "kx"]
    expected = 0.01 * wavelength(200e3) * 1e3  # 0.01 1/Å times lambda, in mrad
    assert image.angular_sampling == pytest.approx((expected, expected), rel=1e-6)
    assert image.reciprocal_sampling == pytest.approx((0.01, 0.01), rel=1e-6)
    assert image.pixel_size is None


def test_dm3_diffraction_in_inverse_angstrom_without_energy(tmp_path, ramp):
    image = read(write_dm3(tmp_path / "dp.dm3", ramp, scale=0.1, units="1/nm"))
    assert image.axes[-1].units == "1/Å"
    assert image.angular_sampling is None
    assert image.reciprocal_sampling == pytest.approx((0.01, 0.01), rel=1e-6)
    image.require_calibration()


def test_dm3_without_calibration(tmp_path, ramp):
    image = read(write_dm3(tmp_path / "raw.dm3", ramp, scale=1.0, units=""))
    assert not image.calibrated
    assert image.pixel_size is None
    assert image.axes[0].scale is None
    with pytest.raises(MissingCalibrationError, match="pixel_size="):
        image.require_calibration()
    assert image.with_pixel_size(0.3).require_calibration().pixel_size == (0.3, 0.3)


# ---------------------------------------------------------------------- SER, MRC, HyperSpy, EMD


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32])
def test_ser_returns_array_and_pixel_size(tmp_path, ramp, dtype):
    data = ramp.astype(dtype)
    image = read(write_ser(tmp_path / "image_1.ser", data, pixel_size=52.4e-12))

    assert image.data.dtype == dtype
    np.testing.assert_array_equal(image.data, data)  # also checks the bottom-up row order
    assert image.pixel_size == pytest.approx((0.524, 0.524), rel=1e-12)
    assert image.format == "ser"


def test_mrc_image_and_stack(tmp_path, ramp):
    data = ramp.astype(np.float32)
    image = read(write_mrc(tmp_path / "image.mrc", data, pixel_size=0.5))
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_size == pytest.approx((0.5, 0.5))

    stack = read(write_mrc(tmp_path / "stack.mrc", np.stack([data, 2 * data]), pixel_size=0.5))
    assert stack.kind == "stack"
    assert [axis.name for axis in stack.axes] == ["frame", "y", "x"]
    np.testing.assert_array_equal(stack.data[1], 2 * data)


def test_hspy_with_units(tmp_path, ramp):
    image = read(write_hspy(tmp_path / "image.hspy", ramp, scale=0.02, units="nm"))
    np.testing.assert_array_equal(image.data, ramp)
    assert image.pixel_size == pytest.approx((0.2, 0.2))
    assert image.metadata["atomlens"]["notes"] == []


def test_hspy_without_units_assumes_nm_and_says_so(tmp_path, ramp):
    image = read(write_hspy(tmp_path / "image.hdf5", ramp, scale=0.0093, units=None))
    assert image.pixel_size == pytest.approx((0.093, 0.093))
    assert "nm assumed" in image.summary()


def test_hspy_without_scale_is_uncalibrated(tmp_path, ramp):
    image = read(write_hspy(tmp_path / "image.h5", ramp, scale=1.0, units=None))
    assert not image.calibrated


@pytest.fixture
def emd_two_signals(tmp_path, ramp):
    """Berkeley EMD with a calibrated image and a 1D spectrum."""
    from rsciio.emd import file_writer

    axes = [
        {"name": name, "size": n, "scale": 0.02, "offset": 0.0, "units": "nm", "navigate": False}
        for name, n in zip("yx", ramp.shape, strict=True)
    ]
    signal = {
        "data": ramp,
        "axes": axes,
        "metadata": {"General": {"title": "HAADF"}, "Signal": {"signal_type": ""}},
        "original_metadata": {},
    }
    path = tmp_path / "two.emd"
    file_writer(str(path), signal)
    with h5py.File(path, "a") as handle:
        group = handle["signals"].create_group("spectrum")
        group.attrs["emd_group_type"] = 1
        group.create_dataset("data", data=np.arange(50.0))
        dim = group.create_dataset("dim1", data=[0.0, 1.0])
        dim.attrs.update({"name": "E", "units": "[e_V]"})
    return path


def test_emd_picks_the_image_and_records_the_choice(emd_two_signals, ramp):
    image = read(emd_two_signals)
    np.testing.assert_array_equal(image.data, ramp)
    assert image.pixel_size == pytest.approx((0.2, 0.2))
    assert image.metadata["atomlens"]["n_signals"] == 2
    assert (
        image.metadata["atomlens"]["signal_index"]
        == read(emd_two_signals, index=0).metadata["atomlens"]["signal_index"]
    )
    assert "index" in image.summary()


def test_emd_index_out_of_range_lists_valid_indices(emd_two_signals):
    with pytest.raises(SignalIndexError, match=r"valid indices are 0\.\.1") as info:
        read(emd_two_signals, index=5)
    assert isinstance(info.value, IndexError)


def test_emd_index_of_a_spectrum_is_not_an_image(emd_two_signals):
    with pytest.raises(NotAnImageError, match="image signals are at index"):
        read(emd_two_signals, index=1)


# ---------------------------------------------------------------------- npy, PNG, NaN


def test_npy_image_and_stack_are_uncalibrated(tmp_path, ramp):
    np.save(tmp_path / "image.npy", ramp)
    image = read(tmp_path / "image.npy")
    np.testing.assert_array_equal(image.data, ramp)
    assert (image.kind, image.calibrated, image.pixel_size) == ("image", False, None)

    np.save(tmp_path / "stack.npy", np.stack([ramp] * 3))
    stack = read(tmp_path / "stack.npy")
    assert stack.kind == "stack"
    assert stack.axes[0].name == "frame"


def test_png_is_uncalibrated(tmp_path, ramp):
    data = (ramp % 256).astype(np.uint8)
    Image.fromarray(data).save(tmp_path / "image.png")
    image = read(tmp_path / "image.png")
    np.testing.assert_array_equal(image.data, data)
    assert not image.calibrated
    assert "uncalibrated" in image.summary()


def test_grey_rgb_png_gives_one_channel(tmp_path, ramp):
    data = (ramp % 256).astype(np.uint8)
    Image.fromarray(np.stack([data] * 3, axis=-1)).save(tmp_path / "rgb.png")
    image = read(tmp_path / "rgb.png")
    np.testing.assert_array_equal(image.data, data)


def test_partly_nan_is_read_and_reported(tmp_path, ramp):
    data = ramp.astype(np.float32)
    data[0, :4] = np.nan
    np.save(tmp_path / "nan.npy", data)
    image = read(tmp_path / "nan.npy")
    assert np.isnan(image.data).sum() == 4
    assert "non-finite: 4" in image.summary()


@pytest.mark.parametrize("suffix", [".npy", ".mrc"])
def test_all_nan_is_an_error(tmp_path, suffix):
    data = np.full((8, 8), np.nan, dtype=np.float32)
    path = tmp_path / f"nan{suffix}"
    np.save(path, data) if suffix == ".npy" else write_mrc(path, data, pixel_size=1.0)
    with pytest.raises(EmptyFileError, match="NaN"):
        read(path)


# ---------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(FileMissingError, match=r"nothere\.dm3 does not exist") as info:
        read(tmp_path / "nothere.dm3")
    assert isinstance(info.value, FileNotFoundError)


def test_folder_is_not_a_file(tmp_path):
    folder = tmp_path / "folder.dm3"
    folder.mkdir()
    with pytest.raises(FileMissingError, match="is a folder"):
        read(folder)


def test_empty_file(tmp_path):
    (tmp_path / "empty.dm3").write_bytes(b"")
    with pytest.raises(EmptyFileError, match="empty"):
        read(tmp_path / "empty.dm3")


@pytest.mark.parametrize(
    "suffix", [".dm3", ".dm4", ".ser", ".emd", ".mrc", ".tif", ".png", ".jpg", ".hdf5", ".npy"]
)
def test_text_file_renamed(tmp_path, suffix):
    path = tmp_path / f"notes{suffix}"
    path.write_text("Sample: MoS2\nthis is not an image\n" * 10)
    with pytest.raises(UnreadableFileError, match="text file") as info:
        read(path)
    assert path.name in str(info.value)
    assert info.value.__cause__ is not None  # the reader's own error is kept


def test_png_renamed_dm3_suggests_the_right_extension(tmp_path, ramp):
    Image.fromarray((ramp % 256).astype(np.uint8)).save(tmp_path / "x.png")
    (tmp_path / "x.dm3").write_bytes((tmp_path / "x.png").read_bytes())
    with pytest.raises(UnreadableFileError, match=r"PNG file: rename it to \*\.png"):
        read(tmp_path / "x.dm3")


@pytest.mark.parametrize("fmt", ["dm3", "ser", "png", "hspy", "mrc", "tif", "npy"])
def test_truncated_files(tmp_path, ramp, fmt):
    path = tmp_path / f"image.{fmt}"
    if fmt == "dm3":
        write_dm3(path, ramp, scale=0.1, units="nm")
    elif fmt == "ser":
        write_ser(path, ramp, pixel_size=1e-10)
    elif fmt == "png":
        Image.fromarray(ramp).save(path)
    elif fmt == "hspy":
        write_hspy(path, ramp, scale=0.1, units="nm")
    elif fmt == "tif":
        write_tiff(path, ramp, pixel_size=1.0)
    elif fmt == "npy":
        np.save(path, ramp)
    else:
        write_mrc(path, ramp.astype(np.float32), pixel_size=1.0)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UnreadableFileError, match="truncated or corrupt") as info:
        read(path)
    assert path.name in str(info.value)


def test_unsupported_extension(tmp_path, ramp):
    path = tmp_path / "image.xyz"
    np.save(tmp_path / "image.npy", ramp)
    path.write_bytes((tmp_path / "image.npy").read_bytes())
    with pytest.raises(UnsupportedFormatError, match=r"'\.xyz'.*\.dm3.*NumPy file: rename it"):
        read(path)


def test_one_dimensional_spectrum_is_not_an_image(tmp_path):
    np.save(tmp_path / "spectrum.npy", np.linspace(0, 1, 100))
    with pytest.raises(NotAnImageError, match="no 2D image"):
        read(tmp_path / "spectrum.npy")


def test_index_must_be_an_integer(tmp_path, ramp):
    np.save(tmp_path / "image.npy", ramp)
    with pytest.raises(TypeError):
        read(tmp_path / "image.npy", index=0.5)


def test_hdf5_without_numeric_data_is_not_an_image(tmp_path):
    path = write_hdf5(tmp_path / "labels.h5", {"labels": np.array(["Mo", "S"])})
    with pytest.raises(NotAnImageError, match=r"labels\.h5"):
        read(path)


def test_single_row_is_not_an_image(tmp_path):
    np.save(tmp_path / "row.npy", np.ones((1, 100)))
    with pytest.raises(NotAnImageError):
        read(tmp_path / "row.npy")


def test_wrong_dm_version_is_unreadable(tmp_path):
    path = tmp_path / "v5.dm3"
    path.write_bytes(struct.pack(">III", 5, 100, 1) + bytes(100))
    with pytest.raises(AtomlensIOError, match=r"v5\.dm3"):
        read(path)


# ---------------------------------------------------------------------- ImageData, units


def test_summary_lists_the_essentials(tmp_path, ramp):
    path = write_dm3(tmp_path / "image.dm3", ramp, scale=0.0125, units="nm", voltage=60e3)
    text = read(path).summary()
    for expected in (str(path), "dm3", "24 x 32", "uint16", "Å", "60 keV", "Test microscope"):
        assert expected in text
    assert f"max {ramp.max()}" in text


def test_image_data_validates_axes():
    image = ImageData.from_array(np.zeros((6, 7), np.float32), pixel_size=(0.5, 0.25))
    assert image.pixel_size == (0.5, 0.25)
    with pytest.raises(ValueError, match="pixel_size must be"):
        image.with_pixel_size(-1.0)
    with pytest.raises(ValueError, match="one Axis per array dimension"):
        ImageData(np.zeros((6, 7)), image.axes[:1])


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("nm", ("length", 10.0)),
        ("µm", ("length", 1e4)),
        ("μm", ("length", 1e4)),  # Greek mu
        ("um", ("length", 1e4)),
        ("m", ("length", 1e10)),
        ("meters", ("length", 1e10)),
        ("pm", ("length", 0.01)),
        ("Å", ("length", 1.0)),
        ("1/nm", ("reciprocal", 0.1)),
        ("1 / nm", ("reciprocal", 0.1)),
        ("nm^-1", ("reciprocal", 0.1)),
        ("1/Å", ("reciprocal", 1.0)),
        ("mrad", ("angle", 1.0)),
        ("rad", ("angle", 1e3)),
        ("px", ("undefined", None)),
        ("<undefined>", ("undefined", None)),
        (None, ("undefined", None)),
        ("s", ("other", None)),
    ],
)
def test_classify_units(units, expected):
    quantity, factor = classify_units(units)
    assert quantity == expected[0]
    assert factor == pytest.approx(expected[1])


# ---------------------------------------------------------------------- real files (optional)


@pytest.mark.parametrize(
    ("name", "shape", "dtype", "pixel_pm"),
    [
        ("hrstem_example.ser", (1024, 1024), np.uint16, 52.4),
        ("example_Se_implanted_MoS2.dm3", (1024, 1024), np.uint32, 12.7),
        ("SrTiO3_ADF_cropped.hdf5", (400, 380), None, 9.33),
        ("SrTiO3_ABF_cropped.hdf5", (400, 380), None, 9.33),
    ],
)
def test_real_calibrated_files(real_file, name, shape, dtype, pixel_pm):
    image = read(real_file(name))
    assert image.data.shape == shape
    if dtype is not None:
        assert image.data.dtype == dtype
    assert image.kind == "image"
    assert image.calibrated
    assert image.pixel_size[0] * 100 == pytest.approx(pixel_pm, abs=0.01)
    assert image.pixel_size[0] == image.pixel_size[1]


def test_real_dm3_beam_energy(real_file):
    assert read(real_file("example_Se_implanted_MoS2.dm3")).energy == pytest.approx(60e3)


def test_real_png_is_uncalibrated(real_file):
    image = read(real_file("Si110_HAADF.png"))
    assert image.data.shape == (512, 512)
    assert image.data.dtype == np.uint8
    assert not image.calibrated
    with pytest.raises(MissingCalibrationError):
        image.require_calibration()
