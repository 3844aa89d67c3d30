"""Minimal writers of microscope file formats, to make small test files with known content.

rosettasciio reads these formats but cannot write them, so the tests make their own files:

- DM3, Gatan's DigitalMicrograph 3 tag tree: a 12-byte big-endian header (version 3, size,
  byte order 1 = little-endian data), then nested tag groups. A tag is 1 byte (20 group,
  21 data), a big-endian 2-byte name length and the name; a data tag continues with '%%%%',
  the length of its info array and the info array (big-endian 4-byte integers: the type
  code, or 20 + element type + length for arrays), then the value in the file's byte order.
  The image lives in ImageList/<unnamed>/ImageData with Data, DataType, Dimensions (x, y)
  and Calibrations/Dimension (x, y: Origin, Scale, Units). The file ends with 8 zero bytes.
- SER, the TIA series format of FEI (Thermo Fisher): a little-endian header (byte order
  0x4949, series id 0x0197, version 0x0210, data type 0x4122 = 2D elements, tag type
  0x4152 = time only, element counts, offset of the offset arrays, dimension records), then
  the data and tag offset arrays, one 2D data element (calibration of x and y in metres,
  data type code, sizes, pixels stored bottom row first) and its time tag.
- MRC 2014: a 1024-byte header of 4-byte words (nx, ny, nz, mode, ..., cell lengths in Å,
  'MAP ' at byte 208), then the data.
- HyperSpy HDF5: the layout HyperSpy 1.x writes (Experiments/<title>/data, axis-i attributes).
"""

import struct
from pathlib import Path

import h5py
import numpy as np

__all__ = ["write_dm3", "write_hspy", "write_mrc", "write_ser"]

# ---------------------------------------------------------------------- DM3

# numpy dtype -> DM image DataType
_DM_IMAGE_TYPES = {
    np.dtype("int16"): 1,
    np.dtype("float32"): 2,
    np.dtype("uint8"): 6,
    np.dtype("int32"): 7,
    np.dtype("int8"): 9,
    np.dtype("uint16"): 10,
    np.dtype("uint32"): 11,
    np.dtype("float64"): 12,
}
# numpy dtype -> DM tag element type
_DM_TAG_TYPES = {
    np.dtype("int16"): 2,
    np.dtype("int32"): 3,
    np.dtype("uint16"): 4,
    np.dtype("uint32"): 5,
    np.dtype("float32"): 6,
    np.dtype("float64"): 7,
    np.dtype("int8"): 9,
    np.dtype("uint8"): 10,
}


def _dm_value(value) -> bytes:
    """Info array and little-endian payload of one data tag."""
    if isinstance(value, str):  # strings are arrays of 2-byte characters
        chars = np.array([ord(c) for c in value], dtype="<u2")
        return struct.pack(">IIII", 3, 20, 4, len(chars)) + chars.tobytes()
    if isinstance(value, np.ndarray):
        code = _DM_TAG_TYPES[value.dtype.newbyteorder("=")]
        flat = value.astype(value.dtype.newbyteorder("<"), copy=False).ravel(order="C")
        return struct.pack(">IIII", 3, 20, code, flat.size) + flat.tobytes()
    scalar = np.asarray(value)
    return (
        struct.pack(">II", 1, _DM_TAG_TYPES[scalar.dtype])
        + scalar.astype(scalar.dtype.newbyteorder("<")).tobytes()
    )


def _dm_group(entries: list) -> bytes:
    """A tag group: sorted flag, open flag, number of tags, then the tags."""
    out = struct.pack(">BBI", 0, 1, len(entries))
    for name, value in entries:
        encoded = name.encode("latin-1")
        if isinstance(value, list):
            out += struct.pack(">BH", 20, len(encoded)) + encoded + _dm_group(value)
        else:
            out += struct.pack(">BH", 21, len(encoded)) + encoded + b"%%%%" + _dm_value(value)
    return out


def write_dm3(
    path: Path,
    data: np.ndarray,
    *,
    scale: float = 1.0,
    units: str = "",
    voltage: float | None = None,
    title: str = "test image",
) -> Path:
    """Write a 2D array as a DM3 file.

    Parameters
    ----------
    scale, units
        Calibration of both axes, as DigitalMicrograph stores it (float32), e.g. 0.015625 'nm'.
    voltage
        Accelerating voltage [V] stored in ImageTags/Microscope Info/Voltage.
    """
    data = np.asarray(data)
    ny, nx = data.shape
    calibration = [("Origin", np.float32(0.0)), ("Scale", np.float32(scale)), ("Units", units)]
    image_tags: list = [
        ("DataBar", [("Acquisition Date", "7/3/2016"), ("Acquisition Time", "6:20:54 PM")]),
    ]
    if voltage is not None:
        image_tags.append(
            (
                "Microscope Info",
                [
                    ("Voltage", np.float64(voltage)),
                    ("Illumination Mode", "STEM"),
                    ("Name", "Test microscope"),
                ],
            )
        )
    image = [
        (
            "ImageData",
            [
                (
                    "Calibrations",
                    [
                        (
                            "Brightness",
                            [("Origin", np.float32(0)), ("Scale", np.float32(1)), ("Units", "")],
                        ),
                        ("Dimension", [("", calibration), ("", calibration)]),  # x, then y
                    ],
                ),
                ("Data", data),
                ("DataType", np.int32(_DM_IMAGE_TYPES[data.dtype])),
                ("Dimensions", [("", np.uint32(nx)), ("", np.uint32(ny))]),
                ("PixelDepth", np.int32(data.dtype.itemsize)),
            ],
        ),
        ("ImageTags", image_tags),
        ("Name", title),
    ]
    tags = _dm_group([("ImageList", [("", image)])])
    size = 12 + len(tags) + 8
    path.write_bytes(struct.pack(">III", 3, size - 16, 1) + tags + bytes(8))
    return path


# ---------------------------------------------------------------------- SER

_SER_TYPES = {
    np.dtype("uint8"): 1,
    np.dtype("uint16"): 2,
    np.dtype("uint32"): 3,
    np.dtype("int8"): 4,
    np.dtype("int16"): 5,
    np.dtype("int32"): 6,
    np.dtype("float32"): 7,
    np.dtype("float64"): 8,
}


def write_ser(path: Path, data: np.ndarray, *, pixel_size: float) -> Path:
    """Write a 2D array as a one-element TIA .ser file.

    Parameters
    ----------
    pixel_size
        Pixel size [m] along both axes.
    """
    data = np.asarray(data)
    ny, nx = data.shape
    description, units = b"Number", b""
    dimension = (
        struct.pack("<IddII", 1, 0.0, 1.0, 0, len(description))
        + description
        + struct.pack("<I", len(units))
        + units
    )
    header_size = 30 + len(dimension)
    data_offset = header_size + 8  # after the two offset arrays of one element each
    element = struct.pack(
        "<ddIddIHII", 0.0, pixel_size, 0, 0.0, pixel_size, 0, _SER_TYPES[data.dtype], nx, ny
    )
    pixels = data[::-1].astype(data.dtype.newbyteorder("<")).tobytes()  # bottom row first
    tag_offset = data_offset + len(element) + len(pixels)
    header = struct.pack("<HHHIIIIII", 0x4949, 0x0197, 0x0210, 0x4122, 0x4152, 1, 1, header_size, 1)
    offsets = struct.pack("<II", data_offset, tag_offset)
    tag = struct.pack("<HHI", 0x4152, 0, 1_700_000_000)
    path.write_bytes(header + dimension + offsets + element + pixels + tag)
    return path


# ---------------------------------------------------------------------- MRC


def write_mrc(path: Path, data: np.ndarray, *, pixel_size: float) -> Path:
    """Write a float32 image (H, W) or stack (N, H, W) as MRC 2014 (mode 2).

    Parameters
    ----------
    pixel_size
        Pixel size [Å]; the cell length is ``pixel_size * n``.
    """
    data = np.asarray(data, dtype="<f4")
    stack = data.reshape((-1, *data.shape[-2:]))
    nz, ny, nx = stack.shape
    words = np.zeros(256, dtype="<i4")
    words[0:4] = nx, ny, nz, 2  # sizes, mode 2 = float32
    words[7:10] = nx, ny, nz  # sampling
    floats = words.view("<f4")
    floats[10:13] = nx * pixel_size, ny * pixel_size, nz * pixel_size  # cell [Å]
    floats[13:16] = 90.0
    words[16:19] = 1, 2, 3
    header = bytearray(words.tobytes())
    header[208:212] = b"MAP "
    header[212:216] = b"\x44\x44\x00\x00"  # little-endian machine stamp
    path.write_bytes(bytes(header) + stack.tobytes())
    return path


# ---------------------------------------------------------------------- HyperSpy


def write_hspy(
    path: Path, data: np.ndarray, *, scale: float, units: str | None, title: str = ""
) -> Path:
    """Write a 2D array in HyperSpy's HDF5 layout (file format 3.1)."""
    with h5py.File(path, "w") as handle:
        handle.attrs["file_format"] = "HyperSpy"
        handle.attrs["file_format_version"] = "3.1"
        group = handle.create_group("Experiments/__unnamed__")
        group.create_dataset("data", data=data)
        for i, size in enumerate(data.shape):
            axis = group.create_group(f"axis-{i}")
            axis.attrs.update({"_type": "UniformDataAxis", "navigate": False, "size": size})
            axis.attrs.update({"scale": scale, "offset": 0.0, "is_binned": False})
            if units is not None:
                axis.attrs["units"] = units
        group.create_group("metadata/General").attrs["title"] = title
        group["metadata"].create_group("Signal").attrs["signal_type"] = ""
        group.create_group("original_metadata")
    return path
