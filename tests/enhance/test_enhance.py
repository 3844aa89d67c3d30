"""The enhance verb with the shipped generators: columns kept in place, units, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import atomlens
from atomlens.core.validation import InputError
from atomlens.enhance import enhance, load_enhancer
from atomlens.locate import locate
from atomlens.physics import STEMImaging, field, simulate_image
from atomlens.physics.detectors import ShotNoise


@pytest.fixture(scope="module")
def srtio3():
    """A simulated SrTiO3 [001] HAADF image (0.25 Å/px) with shot noise, and its clean image."""
    rng = np.random.default_rng(11)
    atoms = field("SrTiO3", (160, 160), 0.25, zone_axis=(0, 0, 1), thickness=40.0, rotation=12.0)
    result = simulate_image(atoms, 0.25, STEMImaging(mode="HAADF"), rng=rng)
    noisy, _ = ShotNoise(dose_per_pixel=30.0).apply(np.clip(result.clean, 0, None), rng)
    return noisy, result.clean


def _columns(image: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = locate(image, pixel_size=0.25, spacing=2.76)
    points = table[["y", "x"]].to_numpy()
    keep = np.all((points > 8) & (points < 151), axis=1)
    return points[keep]


def test_enhancement_keeps_every_column_within_a_fifth_of_a_pixel(srtio3):
    """Columns found on the enhanced image lie where the noise-free image has them."""
    from scipy.spatial import cKDTree

    noisy, clean = srtio3
    enhanced = enhance(noisy, pixel_size=0.25, spacing=2.76, check_lattice=False)
    truth, found = _columns(clean), _columns(enhanced)
    distance, _ = cKDTree(found).query(truth)
    assert len(truth) > 100
    matched = distance < 0.6
    assert matched.mean() > 0.98  # (a column at the border may be lost, as on the raw counts)
    assert np.mean(distance[matched]) < 0.2  # [px]
    invented, _ = cKDTree(truth).query(found)
    assert np.all(invented < 0.6)  # no column the noise-free image lacks


def test_the_result_keeps_shape_units_and_the_input(srtio3):
    noisy, _ = srtio3
    before = noisy.copy()
    out = atomlens.enhance(noisy * 5 + 1000, check_lattice=False)  # the package is callable
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert np.array_equal(noisy, before)
    assert abs(np.median(out) - np.median(noisy * 5 + 1000)) < 0.2 * np.ptp(noisy * 5)
    stack = enhance(np.stack([noisy, noisy]), check_lattice=False)
    assert stack.shape == (2, *noisy.shape)
    assert np.allclose(stack[0], stack[1])


def test_the_shipped_model_states_what_it_was_trained_on():
    enhancer = load_enhancer()
    config = enhancer.config
    assert enhancer.modalities == ("haadf",)
    assert config["task"] == "image-enhancement"
    held_out = {"SrTiO3_ADF_cropped.hdf5", "Si110_HAADF.png", "SrTiO3_ABF_cropped.hdf5"}
    assert config["real_training_files"] and not held_out & set(config["real_training_files"])


@pytest.mark.parametrize(
    ("image", "options", "error", "match"),
    [
        (np.full((64, 64), np.nan), {}, InputError, "NaN|finite"),
        (np.ones((64, 64)), {}, InputError, "constant"),
        (np.ones(64), {}, InputError, "dimensions|2-D"),
        (np.ones((8, 8)), {}, InputError, "16"),
        (np.random.default_rng(0).normal(size=(96, 96)), {}, InputError, "no periodic"),
        (None, {"modality": "abf"}, ValueError, "trained on haadf"),
        (None, {"modality": "sem"}, ValueError, "modality"),
        (None, {"spacing": 2.0}, ValueError, "pixel_size"),
        (None, {"tile": 16}, ValueError, "tile"),
    ],
)
def test_bad_input_is_refused_with_the_reason(srtio3, image, options, error, match):
    with pytest.raises(error, match=match):
        enhance(srtio3[0] if image is None else image, **options)
