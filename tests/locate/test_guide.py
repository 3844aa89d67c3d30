"""locate(..., guide=): candidates from another image (enhanced, restored), fit on the counts."""

from __future__ import annotations

import numpy as np
import pytest

from atomlens.core.validation import InputError
from atomlens.locate import locate


def _lattice(dose: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[:96, :96] - 4.0
    clean = 0.2 + np.cos(np.pi * y / 8) ** 8 * np.cos(np.pi * x / 8) ** 8
    counts = np.random.default_rng(seed).poisson(dose * clean).astype(float)
    return counts, clean


def test_the_image_itself_as_guide_changes_nothing():
    counts, _ = _lattice(200.0)
    plain = locate(counts, pixel_size=0.25)
    guided = locate(counts, pixel_size=0.25, guide=counts)
    assert guided.attrs["guided"] and not plain.attrs["guided"]
    assert np.array_equal(plain[["y", "x"]].to_numpy(), guided[["y", "x"]].to_numpy())


def test_a_clean_guide_finds_the_columns_noise_hides_and_fits_the_counts():
    counts, clean = _lattice(3.0, seed=2)  # about 3 e- at a column: peaks drown in noise
    guided = locate(counts, pixel_size=0.25, guide=clean)
    plain = locate(counts, pixel_size=0.25)
    # of the 12 x 12 lattice; a guide's candidate still needs support in the counts
    assert len(guided) >= 130 > len(plain) + 25
    # the positions come from the counts: scattered by shot noise, unlike the clean guide's
    truth = locate(clean * 1e4, pixel_size=0.25)
    assert guided["sigma_y"].median() > 10 * truth["sigma_y"].median()


def test_a_column_only_the_guide_shows_is_dropped():
    """A blob a generator might invent between columns is not in the counts: not kept."""
    counts, clean = _lattice(200.0)
    guide = clean.copy()
    guide[44:47, 48:51] += 1.0  # a bright 'column' halfway between four real ones
    guided = locate(counts, pixel_size=0.25, guide=guide)
    plain = locate(counts, pixel_size=0.25)
    assert len(plain) - 1 <= len(guided) <= len(plain)
    distance = np.hypot(guided["y"] - 45, guided["x"] - 49)
    assert distance.min() > 3


def test_a_guide_of_another_shape_or_with_parallel_frames_is_refused():
    counts, _ = _lattice(200.0)
    with pytest.raises(ValueError, match="shape"):
        locate(counts, pixel_size=0.25, guide=counts[:-4])
    with pytest.raises(ValueError, match="one process"):
        locate(counts[None], pixel_size=0.25, guide=counts[None], workers=2)
    with pytest.raises(InputError, match="guide"):
        locate(counts, pixel_size=0.25, guide=np.full_like(counts, np.nan))
