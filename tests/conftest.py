"""Shared test settings: two torch threads (the CI machine has two cores), no GPU, no network."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared folder of real microscope files; tests using it skip when it is absent."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
    folder = Path(os.environ.get("ATOMLENS_REAL_DATA", default))
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} not present")
    return folder


@pytest.fixture(scope="session")
def find_peaks():
    """Sub-pixel local maxima of an image (parabolic fit through 3 x 3) [px], for ground truth."""
    return peak_positions


def peak_positions(
    image: np.ndarray, *, min_distance: int = 2, threshold: float = 0.3
) -> np.ndarray:
    """Sub-pixel local maxima (parabolic fit through 3 x 3), for checking ground truth [px].

    Returns
    -------
    ndarray of shape (N, 2)
        (y, x) [px] of the maxima above ``threshold`` times the image maximum.
    """
    image = np.asarray(image, dtype=float)
    size = 2 * min_distance + 1
    peaks = (image == ndimage.maximum_filter(image, size=size, mode="nearest")) & (
        image > threshold * image.max()
    )
    peaks[[0, -1], :] = False
    peaks[:, [0, -1]] = False
    rows, cols = np.nonzero(peaks)
    c = image[rows, cols]
    dy = (image[rows + 1, cols] - image[rows - 1, cols]) / 2
    dx = (image[rows, cols + 1] - image[rows, cols - 1]) / 2
    dyy = image[rows + 1, cols] - 2 * c + image[rows - 1, cols]
    dxx = image[rows, cols + 1] - 2 * c + image[rows, cols - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        oy = np.where(dyy < 0, -dy / dyy, 0.0)
        ox = np.where(dxx < 0, -dx / dxx, 0.0)
    return np.column_stack([rows + np.clip(oy, -0.5, 0.5), cols + np.clip(ox, -0.5, 0.5)])
