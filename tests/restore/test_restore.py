"""The restore verb with the shipped network: units, tiling, stacks, no invented lattice."""

import warnings

import numpy as np
import pytest

import atomlens
from atomlens.core.validation import InputError, ParameterError
from atomlens.data import ImageSampler
from atomlens.restore import expected_counts, restore
from atomlens.restore.checks import invented_peaks
from atomlens.restore.training import psnr_db


@pytest.fixture(scope="module")
def sample():
    return ImageSampler(modality="haadf", size=128, realism=True).sample(3, 1_000_000)


def _psnr(image, truth):
    return float(psnr_db(image[None], truth[None])[0])


def test_the_network_restores_a_held_out_image(sample):
    truth = expected_counts(sample.image, sample.clean)
    restored = restore(sample.image, modality="haadf", pixel_size=sample.pixel_size)
    assert restored.shape == sample.image.shape and restored.dtype == np.float32
    assert _psnr(restored, truth) > _psnr(sample.image, truth) + 3


def test_the_wiener_step_after_the_network_brings_the_result_closer_to_the_truth():
    # held-out HAADF at a few and at many counts: the network alone rounds the contrast, and
    # the frame's own spectrum, shrunk where its output says noise dominates, is nearer
    for dose in (0.5, 200.0):
        sampler = ImageSampler(modality="haadf", size=128, distortions="shot",
                               dose_per_pixel=(dose, dose))  # fmt: skip
        example = sampler.sample(11, 1_000_000)
        truth = expected_counts(example.image, example.clean)
        alone = restore(example.image, wiener_step=False)
        stepped = restore(example.image)
        assert _psnr(stepped, truth) > _psnr(alone, truth) + 1.0


def test_the_package_is_callable_as_the_verb(sample):
    assert np.array_equal(atomlens.restore(sample.image), restore(sample.image))


@pytest.mark.parametrize("gain, offset", [(1000.0, 0.0), (0.001, 0.0), (1.0, 5000.0), (3.0, -7.0)])
def test_output_follows_the_input_units(sample, gain, offset):
    base = restore(sample.image)
    scaled = restore(sample.image * gain + offset)
    assert np.allclose(scaled, base * gain + offset, rtol=1e-3, atol=1e-3 * abs(gain) * base.std())


def test_a_stack_is_restored_frame_by_frame(sample):
    stack = np.stack([sample.image, sample.image[::-1].copy()])
    out = restore(stack)
    assert out.shape == stack.shape
    assert np.allclose(out[0], restore(stack[0]), atol=1e-4 * stack.std())
    assert np.allclose(out[1], restore(stack[1]), atol=1e-4 * stack.std())


def test_tiled_result_equals_the_untiled_one_away_from_tile_borders():
    image = ImageSampler(modality="haadf", size=256, realism=True).sample(5, 1_000_000).image
    whole = restore(image, tile=256, overlap=32)
    tiled = restore(image, tile=128, overlap=48)
    inner = (slice(24, -24), slice(24, -24))
    spread = np.percentile(whole, 99) - np.percentile(whole, 1)
    assert np.abs(tiled - whole)[inner].mean() < 0.01 * spread


def test_no_lattice_is_invented_on_vacuum_or_amorphous_film():
    rng = np.random.default_rng(0)
    vacuum = rng.poisson(30.0, size=(256, 256)).astype(np.float32)
    film = ImageSampler(modality="haadf", size=256, realism=True)
    amorphous = np.clip(rng.normal(100, 20, size=(256, 256)), 0, None)
    from scipy import ndimage

    amorphous = rng.poisson(ndimage.gaussian_filter(amorphous, 1.5)).astype(np.float32)
    for image in (vacuum, amorphous):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the verb's own check must not fire either
            restored = restore(image, modality="haadf")
        assert len(invented_peaks(image, restored)) == 0
    assert film.realism


def test_a_constant_image_is_refused_by_name():
    with pytest.raises(InputError, match="constant"):
        restore(np.full((64, 64), 3.0))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"modality": "sem"}, ValueError, "modality"),
        ({"method": "magic"}, ValueError, "method"),
        ({"pixel_size": -1.0}, ParameterError, "pixel_size"),
        ({"precision": "int8"}, ValueError, "precision"),
        ({"tile": 16}, ValueError, "tile"),
        ({"wiener_step": "yes"}, ValueError, "wiener_step"),
    ],
)
def test_bad_options_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        restore(np.random.default_rng(0).random((64, 64)), **kwargs)


def test_a_pixel_size_outside_the_training_range_warns():
    image = np.random.default_rng(0).poisson(50, (64, 64)).astype(float)
    with pytest.warns(UserWarning, match="outside the pixel sizes"):
        restore(image, pixel_size=2.0)


def test_the_input_is_never_modified(sample):
    image = sample.image.copy()
    restore(image)
    assert np.array_equal(image, sample.image)
