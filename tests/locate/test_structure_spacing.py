"""The structure model's spacing: the structure's, unless the image shows more columns."""

import numpy as np
import pytest

from atomlens.locate.locate import DENSER, SPACING_STEP, _structure_start


def looks(counts: dict[float, int], confidences: dict[float, float]):
    """A stand-in for the network: ``count`` candidates and a confidence at each spacing."""

    def look(value: float) -> tuple[np.ndarray, float]:
        key = min(counts, key=lambda known: abs(known - value))
        return np.zeros((counts[key], 2)), confidences[key]

    return look


STRUCTURE = 29.6  # [px]
DENSE = STRUCTURE / SPACING_STEP


def test_the_structure_spacing_is_kept_when_the_image_shows_its_columns():
    look = looks({STRUCTURE: 130, DENSE: 140}, {STRUCTURE: 0.80, DENSE: 0.90})
    spacing, source = _structure_start(look, STRUCTURE, (3.0, 100.0))
    assert spacing == STRUCTURE and source.startswith("from the structure")


def test_twice_the_columns_at_the_closer_spacing_means_the_image_shows_more():
    # a low-angle ADF image of SrTiO3: the O columns too (259 against 134 on the real image)
    look = looks({STRUCTURE: 134, DENSE: 259}, {STRUCTURE: 0.80, DENSE: 0.91})
    spacing, source = _structure_start(look, STRUCTURE, (3.0, 100.0))
    assert spacing == pytest.approx(DENSE) and "259 columns" in source


@pytest.mark.parametrize(
    ("dense_count", "dense_confidence"),
    [(int(DENSER * 100) + 50, 0.70), (int(DENSER * 100) - 1, 0.95)],
)
def test_more_columns_alone_or_more_confidence_alone_keep_the_structure(
    dense_count, dense_confidence
):
    look = looks({STRUCTURE: 100, DENSE: dense_count}, {STRUCTURE: 0.80, DENSE: dense_confidence})
    assert _structure_start(look, STRUCTURE, (3.0, 100.0))[0] == STRUCTURE


def test_a_closer_spacing_below_the_smallest_is_not_tried():
    look = looks({STRUCTURE: 10, DENSE: 100}, {STRUCTURE: 0.5, DENSE: 0.9})
    assert _structure_start(look, STRUCTURE, (DENSE + 1, 100.0))[0] == STRUCTURE
