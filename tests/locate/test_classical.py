"""The classical column finder, its batched Gaussian refinement, and column errors."""

import numpy as np
import pandas as pd
import pytest

from atomlens.locate.classical import locate_columns
from atomlens.locate.metrics import column_errors
from atomlens.metrics import match_positions

PIXEL = 0.1  # [Å]


@pytest.fixture(scope="module")
def columns():
    """A jittered square lattice of Gaussian columns (8 px apart, 1.5 px wide) and its table."""
    rng = np.random.default_rng(0)
    grid = np.arange(4.0, 96, 8.0)
    cy, cx = (g.ravel() + rng.uniform(-0.5, 0.5, g.size) for g in np.meshgrid(grid, grid))
    y, x = np.mgrid[:96, :96].astype(float)
    image = 0.1 + np.sum(
        np.exp(-((y[..., None] - cy) ** 2 + (x[..., None] - cx) ** 2) / (2 * 1.5**2)), axis=-1
    )
    return image, pd.DataFrame({"y": cy, "x": cx})


def test_locate_columns_finds_every_column_to_subpixel_precision(columns):
    image, table = columns
    counts = np.random.default_rng(2).poisson(image * 1e5).astype(np.float32)
    found = locate_columns(counts, PIXEL, spacing=0.8, width=0.15)
    fi, ti = match_positions(found[["y", "x"]].to_numpy(), table[["y", "x"]].to_numpy(), 2.0)
    assert len(fi) == len(table) == len(found)
    error = np.hypot(*(found[["y", "x"]].to_numpy()[fi] - table[["y", "x"]].to_numpy()[ti]).T)
    assert error.max() < 0.05
    assert found["sigma"].median() == pytest.approx(0.15, rel=0.05)


def test_dark_columns_are_found_by_inverting(columns):
    image, table = columns
    bright = column_errors(image, table, PIXEL, spacing=0.8, width=0.15)
    dark = column_errors(2.0 - image, table, PIXEL, spacing=0.8, width=0.15, dark=True)
    assert dark["recall"] == bright["recall"] == 1.0
    assert dark["rmse_pm"] == pytest.approx(bright["rmse_pm"])


def test_column_errors_count_misses_and_false_columns(columns):
    image, table = columns
    truth = column_errors(image, table, PIXEL, spacing=0.8, width=0.15, truth=image)
    assert truth["precision"] == truth["recall"] == 1.0
    assert truth["rmse_pm"] < 0.5  # 0.05 px
    assert truth["intensity_error"] == 0.0
    extra = pd.DataFrame({"y": [50.0], "x": [50.0]})  # a true column the image does not show
    missed = column_errors(image, pd.concat([table, extra]), PIXEL, spacing=0.8, width=0.15)
    assert missed["recall"] == pytest.approx((missed["true"] - 1) / missed["true"])
    fewer = column_errors(image, table.iloc[::2], PIXEL, spacing=0.8, width=0.15)
    assert fewer["precision"] < 0.6 and fewer["recall"] == 1.0


def test_intensity_error_of_a_scaled_image(columns):
    image, table = columns
    reference = np.median(image)
    brighter = reference + 1.1 * (image - reference)  # every column 10 % brighter
    result = column_errors(brighter, table, PIXEL, spacing=0.8, width=0.15, truth=image)
    assert result["intensity_error"] == pytest.approx(0.1, rel=1e-6)


@pytest.mark.parametrize(
    ("image", "words"),
    [(np.full((16, 16), np.nan), "NaN"), (np.ones(16), "2-D"), (np.ones((2, 16, 16)), "2-D")],
)
def test_bad_input_is_refused(image, words):
    with pytest.raises(ValueError, match=words):
        locate_columns(image, PIXEL)
