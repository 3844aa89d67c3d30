"""Image series: moving atoms (``dynamics``) rendered frame by frame and distorted.

``simulate_image_series`` takes a ``trajectories.Series`` (ground-truth tracks and events) and makes
the stack a microscope would record: each frame imaged from that frame's atoms, then distorted
with a fresh draw of the same distortion model. The tracks get pixel coordinates (trackpy's
``frame``, ``particle``, ``y``, ``x``) aligned with the stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from atomlens.core.validation import check_parameter, check_size
from atomlens.physics.detectors.base import ShotNoise
from atomlens.physics.dynamics.trajectories import Series
from atomlens.physics.imaging.hrtem import HRTEMImaging
from atomlens.physics.imaging.images import DistortionChain, clean_image, field_shape
from atomlens.physics.imaging.stem import STEMImaging


@dataclass
class SimulatedSeries:
    """A simulated image series and its ground truth.

    Attributes
    ----------
    frames : ndarray of shape (T, rows, cols), float32
        The recorded stack [counts].
    clean : ndarray of shape (T, rows, cols), float32
        Noise-free, undistorted frames.
    tracks : DataFrame
        ``frame``, ``particle``, ``y``, ``x`` [px] plus the ``trajectories.Series`` columns
        (``y_A``, ``x_A``, ``Z``, ``species``, ``adatom``, ``in_view``...).
    events : DataFrame
        The events of the series (hops, vacancy migration, appearance, leaving, merging), with
        pixel positions ``y_from``, ``x_from``, ``y_to``, ``x_to`` added.
    pixel_size : float
        [Å].
    metadata : dict
    """

    frames: np.ndarray
    clean: np.ndarray
    tracks: pd.DataFrame
    events: pd.DataFrame
    pixel_size: float
    metadata: dict = field(default_factory=dict)


def simulate_image_series(
    series: Series,
    pixel_size: float,
    imaging: STEMImaging | HRTEMImaging,
    *,
    distortions: Callable[[np.random.Generator], DistortionChain] | None = None,
    dose_per_pixel: float | None = None,
    rng: np.random.Generator | None = None,
) -> SimulatedSeries:
    """Render every frame of a moving-atom series.

    Parameters
    ----------
    series : trajectories.Series
    pixel_size : float
        [Å].
    imaging : STEMImaging or HRTEMImaging
    distortions : callable, optional
        ``rng -> DistortionChain`` (e.g. ``distortions.realistic_stem``); called once, and the
        chain is applied to every frame with new random draws (same microscope settings, new
        noise and scan errors).
    dose_per_pixel : float, optional
        Electrons per pixel at unit clean intensity [e-/px] for Poisson noise alone, when
        ``distortions`` is None.
    rng : numpy.random.Generator, optional

    Returns
    -------
    SimulatedSeries
    """
    rng = np.random.default_rng() if rng is None else rng
    pixel_size = check_parameter("pixel_size", pixel_size)
    shape = field_shape(series.atoms(0), pixel_size)
    check_size("the clean and noisy frames", (2 * series.frames, *shape))
    chain = distortions(rng) if distortions is not None else None
    clean = np.stack(
        [clean_image(series.atoms(t), pixel_size, imaging) for t in range(series.frames)]
    )
    frames = np.empty_like(clean)
    shot_noise = ShotNoise()  # the image times the dose is the expected electrons
    records = []
    for t, image in enumerate(clean):
        if chain is not None:
            frames[t], record = chain.apply(image, rng)
            records.append(record)
        elif dose_per_pixel is not None:
            frames[t], _ = shot_noise.apply(np.clip(image, 0, None) * dose_per_pixel, rng)
        else:
            frames[t] = image
    tracks = series.tracks.copy()
    tracks["y"] = tracks["y_A"] / pixel_size
    tracks["x"] = tracks["x_A"] / pixel_size
    events = series.events.copy()
    for end in ("from", "to"):
        events[f"y_{end}"] = events[f"y_{end}_A"] / pixel_size
        events[f"x_{end}"] = events[f"x_{end}_A"] / pixel_size
    metadata = {
        "imaging": imaging.describe(),
        "pixel_size_A": pixel_size,
        "distortions": chain.describe() if chain is not None else None,
        "dose_e_per_px": dose_per_pixel if chain is None else None,
        "drift_A": series.drift_A.tolist(),
    }
    if records:
        metadata["distortion_records"] = records
    return SimulatedSeries(frames.astype(np.float32), clean, tracks, events, pixel_size, metadata)
