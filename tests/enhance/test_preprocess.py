"""The canonical scale of enhancement: 8 px per column spacing, and back."""

from __future__ import annotations

import numpy as np
import pytest

from atomlens.enhance import from_canonical, to_canonical
from atomlens.locate import estimate_spacing


def _lattice(period: float, size: int) -> np.ndarray:
    y, x = np.mgrid[:size, :size] + 0.5
    return (np.cos(np.pi * y / period) ** 8 * np.cos(np.pi * x / period) ** 8).astype(np.float32)


@pytest.mark.parametrize("period", [4.0, 13.0, 24.0])
def test_columns_end_up_eight_pixels_apart(period):
    size = int(12 * period)
    canonical, factor = to_canonical(_lattice(period, size), spacing=period)
    assert factor == pytest.approx(8.0 / period)
    assert estimate_spacing(canonical) == pytest.approx(8.0, abs=0.25)


def test_the_round_trip_keeps_shape_and_column_positions():
    from atomlens.locate import locate

    image = 10 + 100 * _lattice(16.0, 160)
    canonical, _ = to_canonical(image, 16.0)
    back = from_canonical(canonical, image.shape)
    assert back.shape == image.shape and back.dtype == np.float32
    found = []
    for each in (image, back):
        table = locate(each, pixel_size=0.1)
        inside = table["y"].between(8, 152) & table["x"].between(8, 152)
        points = table.loc[inside, ["y", "x"]].to_numpy()
        found.append(points[np.lexsort(np.round(points.T[::-1]))])
    assert len(found[0]) == len(found[1]) == 81  # 9 x 9 columns 15.5 ... 143.5 px
    assert np.abs(found[0] - found[1]).max() < 0.05  # [px]


def test_the_units_are_kept():
    image = 1000 + 50 * _lattice(8.0, 64)
    canonical, factor = to_canonical(image, 8.0)
    assert factor == 1.0 and np.allclose(canonical, image, atol=1e-3)


@pytest.mark.parametrize("spacing", [0.5, 100.0, np.nan, -3.0, 0.0])
def test_a_spacing_out_of_reach_is_refused(spacing):
    with pytest.raises(ValueError, match="spacing"):
        to_canonical(np.ones((64, 64)), spacing)
