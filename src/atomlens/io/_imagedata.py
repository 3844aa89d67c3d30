"""The :class:`ImageData` record returned by :func:`atomlens.io.read`, and its :class:`Axis`."""

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atomlens.core.energy import wavelength

from ._errors import MissingCalibrationError
from ._summary import summarise

__all__ = ["KINDS", "Axis", "ImageData"]

KINDS = ("image", "diffraction", "stack", "other")


@dataclass(frozen=True)
class Axis:
    """One array dimension with its calibration, in atomlens units.

    Parameters
    ----------
    name : str
        'y', 'x' (real space), 'ky', 'kx' (diffraction), 'frame' (series), 'scan_y',
        'scan_x' (4D-STEM) or 'axis<i>'.
    size : int
        Number of samples along the axis.
    scale : float or None
        Step between neighbouring samples in ``units`` [Å, 1/Å or mrad], or None when the file
        gives no physical scale.
    offset : float
        Coordinate of the first sample, in ``units``.
    units : str or None
        'Å', '1/Å', 'mrad', 'px' for an uncalibrated image axis, another unit as written
        in the file (e.g. 's') for a frame axis, or None.
    """

    name: str
    size: int
    scale: float | None = None
    offset: float = 0.0
    units: str | None = None

    def describe(self) -> str:
        """One-line text such as ``'y: 1024 x 0.127 Å'`` or ``'x: 512 px, uncalibrated'``."""
        if self.scale is None:
            return f"{self.name}: {self.size}" + (" px, uncalibrated" if self.units == "px" else "")
        return f"{self.name}: {self.size} x {self.scale:.6g} {self.units or ''}".rstrip()


@dataclass(frozen=True, eq=False)
class ImageData:
    """An image, image series or diffraction pattern read from a file, with its calibration.

    Parameters
    ----------
    data : ndarray
        The array as stored in the file (dtype kept, native byte order), (H, W) for an
        image, (T, H, W) for a series, indexed (row, column) = (y, x).
    axes : tuple of Axis
        One per dimension of ``data``.
    kind : {'image', 'diffraction', 'stack', 'other'}
        What the array holds.
    calibrated : bool
        True when the image axes carry a physical scale (Å, 1/Å or mrad).
    energy : float or None
        Beam energy [eV], when the file records it.
    metadata : dict
        The reader's metadata tree (rosettasciio layout: 'General', 'Signal',
        'Acquisition_instrument', ...), plus 'original_metadata' (the file's own tags, large
        arrays summarised) and 'atomlens' (format, signal index, notes on assumptions).
    path : Path or None
        Where the data was read from.
    format : str or None
        Short name of the file format, e.g. 'dm3', 'ser', 'hspy', 'tiff'.

    Examples
    --------
    >>> img = ImageData.from_array(np.zeros((6, 7), np.float32), pixel_size=0.5)
    >>> img.pixel_size
    (0.5, 0.5)
    >>> img.kind, img.calibrated
    ('image', True)
    """

    data: np.ndarray
    axes: tuple[Axis, ...]
    kind: str = "image"
    calibrated: bool = False
    energy: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "axes", tuple(self.axes))
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))
        if len(self.axes) != self.data.ndim:
            raise ValueError(
                f"ImageData needs one Axis per array dimension: got {len(self.axes)} axes "
                f"for an array of shape {self.data.shape}"
            )
        sizes = tuple(axis.size for axis in self.axes)
        if sizes != self.data.shape:
            raise ValueError(f"Axis sizes {sizes} do not match the array shape {self.data.shape}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        *,
        pixel_size: float | tuple[float, float] | None = None,
        energy: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> "ImageData":
        """Wrap an in-memory image (H, W) or series (T, H, W).

        Parameters
        ----------
        data : array_like, shape (H, W) or (T, H, W)
            Image or image series.
        pixel_size : float or (float, float), optional
            Pixel size [Å], one value or (y, x).
        energy : float, optional
            Beam energy [eV].
        metadata : dict, optional
            Stored as ``metadata``.

        Returns
        -------
        ImageData
        """
        array = np.asarray(data)
        if array.ndim not in (2, 3):
            raise ValueError(
                f"from_array expects an image (H, W) or a series (T, H, W), got shape {array.shape}"
            )
        axes = [
            Axis("y", array.shape[-2], None, 0.0, "px"),
            Axis("x", array.shape[-1], None, 0.0, "px"),
        ]
        if array.ndim == 3:
            axes.insert(0, Axis("frame", array.shape[0]))
        image = cls(
            array,
            tuple(axes),
            kind="image" if array.ndim == 2 else "stack",
            energy=energy,
            metadata=dict(metadata or {}),
        )
        return image if pixel_size is None else image.with_pixel_size(pixel_size)

    def with_pixel_size(self, pixel_size: float | tuple[float, float]) -> "ImageData":
        """A copy whose image axes have the given real-space pixel size.

        Parameters
        ----------
        pixel_size : float or (float, float)
            Pixel size [Å], one value for square pixels or (y, x).

        Returns
        -------
        ImageData
            Same array (not copied), axes 'y', 'x' in Å, ``calibrated=True``.
        """
        size_y, size_x = validate_pixel_size(pixel_size)
        axes = (
            *self.axes[:-2],
            Axis("y", self.axes[-2].size, size_y, 0.0, "Å"),
            Axis("x", self.axes[-1].size, size_x, 0.0, "Å"),
        )
        kind = (
            self.kind
            if self.kind in ("image", "stack")
            else {2: "image", 3: "stack"}.get(self.data.ndim, "other")
        )
        metadata = dict(self.metadata)
        notes = dict(metadata.get("atomlens", {}))
        notes["pixel_size_set_by_user"] = [size_y, size_x]
        metadata["atomlens"] = notes
        return dataclasses.replace(self, axes=axes, kind=kind, calibrated=True, metadata=metadata)

    # ------------------------------------------------------------------ calibration
    @property
    def pixel_size(self) -> tuple[float, float] | None:
        """(y, x) real-space pixel size [Å], or None when uncalibrated or not real space."""
        y_axis, x_axis = self.axes[-2:]
        if y_axis.units == x_axis.units == "Å" and None not in (y_axis.scale, x_axis.scale):
            return abs(y_axis.scale), abs(x_axis.scale)
        return None

    @property
    def angular_sampling(self) -> tuple[float, float] | None:
        """(ky, kx) angle per pixel of a diffraction pattern [mrad], or None."""
        y_axis, x_axis = self.axes[-2:]
        if y_axis.units == x_axis.units == "mrad" and None not in (y_axis.scale, x_axis.scale):
            return abs(y_axis.scale), abs(x_axis.scale)
        return None

    @property
    def reciprocal_sampling(self) -> tuple[float, float] | None:
        """(ky, kx) spatial frequency per pixel of a diffraction pattern [1/Å], or None."""
        y_axis, x_axis = self.axes[-2:]
        if y_axis.units == x_axis.units == "1/Å" and None not in (y_axis.scale, x_axis.scale):
            return abs(y_axis.scale), abs(x_axis.scale)
        angles = self.angular_sampling
        if angles is not None and self.energy is not None:
            lam = wavelength(self.energy)
            return angles[0] * 1e-3 / lam, angles[1] * 1e-3 / lam
        return None

    def require_calibration(self) -> "ImageData":
        """Check that the data carries a physical scale.

        Returns
        -------
        ImageData
            ``self``, so that ``read(path).require_calibration()`` chains.

        Raises
        ------
        MissingCalibrationError
            When a real-space image has no pixel size, or a diffraction pattern no angular or
            reciprocal sampling.
        """
        if self.kind == "diffraction" and (self.angular_sampling or self.reciprocal_sampling):
            return self
        if self.pixel_size is not None:
            return self
        name = self.path if self.path is not None else "this image"
        raise MissingCalibrationError(
            f"{name} has no pixel size (the file gives no physical scale for its axes); "
            "pass pixel_size=... in Å, or use ImageData.with_pixel_size()"
        )

    # ------------------------------------------------------------------ description
    def summary(self) -> str:
        """Human-readable multi-line description, as printed by ``atomlens info FILE``.

        Returns
        -------
        str
            Path, format, shape, dtype, kind, calibration per axis, beam energy, value
            statistics and the main acquisition metadata.
        """
        return summarise(self)


def validate_pixel_size(pixel_size: float | tuple[float, float]) -> tuple[float, float]:
    """Pixel size [Å] or angular sampling [mrad] as (y, x) floats > 0, from one or two numbers."""
    values = np.atleast_1d(np.asarray(pixel_size, dtype=float)).ravel()
    if values.size == 1:
        values = np.repeat(values, 2)
    if values.size != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(
            f"pixel_size must be one positive number or (y, x) in Å, got {pixel_size!r}"
        )
    return float(values[0]), float(values[1])
