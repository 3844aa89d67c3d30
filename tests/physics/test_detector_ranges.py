"""Detector parameters respect the documented ranges; a dark field of view is valid input."""

import math

import numpy as np
import pytest

from atomlens.core.validation import PARAMETERS, ParameterError, SizeLimitError
from atomlens.data import ImageSampler, write_heldout
from atomlens.data.datasets import read_table
from atomlens.physics.detectors import (
    Compose,
    Gain,
    GaussianPSF,
    PMTGain,
    ReadoutNoise,
    ShotNoise,
    realistic_stem,
    realistic_tem,
    ronchigram_camera,
)


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: ShotNoise(dose_per_pixel=1e300), "dose_per_pixel"),
        (lambda: ShotNoise(dose_per_pixel=0.0), "dose_per_pixel"),
        (lambda: ShotNoise(dose_per_image=1e300), "dose_per_image"),
        (lambda: ShotNoise(dose_per_image=1.01e15), "dose_per_image"),
        (lambda: Gain(gain=1e300), "gain"),
        (lambda: Gain(gain=-1.0), "gain"),
        (lambda: PMTGain(gain=1e300), "gain"),
        (lambda: GaussianPSF(sigma=1e300), "psf_sigma"),
        (lambda: GaussianPSF(sigma=-0.5), "psf_sigma"),
        (lambda: ReadoutNoise(sigma=1e300), "readout_noise"),
        (lambda: ReadoutNoise(offset=-1e300), "dark_offset"),
        (lambda: ronchigram_camera(1e300), "dose_per_image"),
        (lambda: ronchigram_camera(1e6, psf_sigma=1e300), "psf_sigma"),
        (lambda: ronchigram_camera(1e6, gain=1e300), "gain"),
        (lambda: ronchigram_camera(1e6, dark_offset=1e300), "dark_offset"),
        (lambda: ronchigram_camera(1e6, readout_noise=1e300), "readout_noise"),
        (lambda: realistic_stem(rng(), dose_per_pixel_range=(1.0, 1e300)), "dose_per_pixel"),
        (lambda: realistic_tem(rng(), dose_per_pixel_range=(0.0, 10.0)), "dose_per_pixel"),
    ],
)
def test_out_of_range_detector_parameters_are_refused_with_unit_and_range(make, kind):
    valid = PARAMETERS[kind]
    with pytest.raises(ParameterError) as error:
        make()
    message = str(error.value)
    assert valid.text() in message and valid.meaning in message


@pytest.mark.parametrize("value", [math.inf, math.nan, "500", True])
def test_a_dose_must_be_a_finite_number_of_electrons(value):
    with pytest.raises(ParameterError, match=r"ShotNoise: dose_per_image=\.\.\. .* number of e\b"):
        ShotNoise(dose_per_image=value)


def test_values_inside_the_documented_ranges_still_work():
    chain = ronchigram_camera(1e15, psf_sigma=1e3, gain=1e6, dark_offset=-1e9, readout_noise=1e9)
    image, _ = chain.apply(np.full((8, 8), 1 / 64), rng())
    assert np.isfinite(image).all()
    counts, record = ShotNoise(dose_per_pixel=1e12).apply(np.ones((4, 4)), rng())
    assert record["scale"] == 1e12 and np.isfinite(counts).all()


def test_shot_noise_of_a_dark_image_is_zero_counts():
    counts, record = ShotNoise(dose_per_pixel=500.0).apply(np.zeros((6, 7)), rng())
    assert counts.dtype == np.float32 and not counts.any()
    assert record["scale"] == 500.0  # read as relative to 1, as simulate_image's dose
    counts, _ = ShotNoise(dose_per_image=1e6).apply(np.zeros((6, 7)), rng())
    assert not counts.any()


def test_a_realistic_chain_takes_a_dark_image():
    generator = np.random.default_rng(3)
    image, records = realistic_stem(generator).apply(np.zeros((32, 32)), generator)
    assert np.isfinite(image).all() and dict(records)["ShotNoise"]["scale"] > 0
    generator = np.random.default_rng(3)
    image, _ = realistic_tem(generator).apply(np.zeros((32, 32)), generator)
    assert np.isfinite(image).all()


def test_a_tiny_image_mean_does_not_overflow_the_scale():
    image = np.zeros((4, 4))
    image[0, 0] = 1e-310  # dose / mean overflows; each pixel / mean does not
    counts, _ = ShotNoise(dose_per_pixel=1e12).apply(image, rng())
    assert np.isfinite(counts).all() and counts[0, 0] > 0 and not counts[1:].any()


# The held-out restoration set `simulate dataset --task restoration --count 89 --size 32` stopped
# at item 88: its random edge structure cut every atom out of the 4.5 Å field of view, the HAADF
# image was all zero, and ShotNoise refused it.
HELDOUT_SEED, EMPTY_ITEM = 1_000_000, 88
SAMPLER = ImageSampler(modality="stem", size=32, distortions="realistic")


def test_heldout_item_88_an_empty_field_is_simulated():
    item = SAMPLER.sample(EMPTY_ITEM, HELDOUT_SEED)
    assert len(item.atoms) == 0 and not item.clean.any()  # the sampler drew vacuum
    assert item.image.shape == (32, 32) and np.isfinite(item.image).all()
    assert item.image.std() > 0  # read-out noise of the camera, on zero signal


class _OnlyItem:
    """A sampler that always returns one item of another (to write just that item)."""

    def __init__(self, sampler: ImageSampler, index: int):
        self.sampler, self.index = sampler, index

    def sample(self, index: int, seed: int = 0):
        return self.sampler.sample(self.index, seed)

    def describe(self) -> dict:
        return {**self.sampler.describe(), "only_item": self.index}


def test_heldout_file_with_the_empty_item_is_written(tmp_path):
    import h5py

    path = write_heldout(
        tmp_path / "ds.h5",
        "restoration",
        1,
        sampler=_OnlyItem(SAMPLER, EMPTY_ITEM),
        seed=HELDOUT_SEED,
        progress=False,
    )
    with h5py.File(path, "r") as handle:
        assert handle["image"].shape == (1, 32, 32) and not handle["clean"][()].any()
    assert len(read_table(path, "atoms")) == 0


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: ImageSampler(dose_per_pixel=(1.0, 1e300)), "dose_per_pixel"),
        (lambda: ImageSampler(pixel_size=(0.1, 1e300)), "pixel_size"),
        (lambda: ImageSampler(size=10**9), "size"),
        (lambda: ImageSampler(size=8), "size"),
        (lambda: ImageSampler(pixel_size=(0.2, 0.1)), "pixel_size"),
        (lambda: ImageSampler(chain_dose_per_pixel=(0.0, 1.0)), "chain_dose_per_pixel"),
        (lambda: ImageSampler(chain_dose_per_pixel=(5.0, 1.0)), "chain_dose_per_pixel"),
    ],
)
def test_sampler_ranges_are_checked(make, name):
    with pytest.raises(ValueError, match=f"{name}="):
        make()


@pytest.mark.parametrize("realism", [False, True])
@pytest.mark.parametrize("modality", ["haadf", "hrtem"])
def test_the_chain_dose_range_sets_the_detected_dose(modality, realism):
    """The realistic chain's ShotNoise draws its dose from chain_dose_per_pixel."""
    sampler = ImageSampler(
        modality=modality, size=32, realism=realism, chain_dose_per_pixel=(0.05, 0.1)
    )
    for index in range(3):
        steps = sampler.sample(index, 7).metadata["distortions"]["steps"]
        doses = [step["dose_per_pixel_e_per_px"] for step in steps if step["name"] == "ShotNoise"]
        assert len(doses) == 1 and 0.05 <= doses[0] <= 0.1
    default = ImageSampler(modality=modality, size=32, realism=realism)
    assert default.sample(0, 7).image.shape == (32, 32)


def test_a_heldout_set_too_large_for_memory_is_refused_before_any_work(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("nothing may be simulated")

    sampler = ImageSampler(size=4096)
    monkeypatch.setattr(ImageSampler, "sample", never)
    with pytest.raises(SizeLimitError, match="held-out"):
        write_heldout(tmp_path / "big.h5", "restoration", 10**6, sampler=sampler, progress=False)
    assert not list(tmp_path.iterdir())


def test_the_message_names_the_step():
    with pytest.raises(ParameterError, match=r"^GaussianPSF: sigma=\.\.\. \(detector blur"):
        Compose([ShotNoise(dose_per_pixel=10.0), GaussianPSF(sigma=2e3)])
