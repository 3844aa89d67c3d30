"""The Ronchigram sampler: the sampler protocol, reproducible groups, physical draws, refusals."""

import numpy as np
import pytest

from atomlens.data import RONCHIGRAM_PRIORS, RonchigramSampler

SMALL = RonchigramSampler(angular_sampling=(0.8, 0.8), group=2, amorphous_thickness=(20, 40))


def test_an_item_is_a_reproducible_group_drawn_from_seed_and_index():
    item = SMALL.sample(2, seed=5)
    again = SMALL.sample(2, seed=5)
    np.testing.assert_array_equal(item.counts, again.counts)
    assert item.aberrations == again.aberrations
    assert len(item) == 2 and item.counts.shape == (2, 98, 98) and item.counts.dtype == np.float32
    other_index, other_seed = SMALL.sample(3, seed=5), SMALL.sample(2, seed=6)
    assert not np.array_equal(item.counts, other_index.counts)
    assert not np.array_equal(item.counts, other_seed.counts)


def test_draws_follow_the_prior_and_the_geometry():
    item = SMALL.sample(0, seed=1)
    for aberrations in item.aberrations:
        assert abs(aberrations["C10"]) <= 600 and aberrations["C12"] <= 250
        assert abs(aberrations["C30"]) <= 1e5
    assert np.all(np.hypot(*item.tilts.T) <= SMALL.tilt)
    assert abs(item.true_semiangle / item.semiangle - 1) <= SMALL.semiangle_error
    assert item.angular_sampling == 0.8 and item.energy == 200e3
    # the bright-field disc (30 mrad = 37.5 px radius) is bright, the detector corners dark
    disc = item.counts[:, 49 - 20 : 49 + 20, 49 - 20 : 49 + 20].mean()
    corner = item.counts[:, :8, :8].mean()
    assert disc > 20 * max(corner, 1.0)
    corrected = RonchigramSampler(ranges=dict(RONCHIGRAM_PRIORS["corrected"]), group=2)
    assert all(abs(a["C30"]) <= 2e4 for a in corrected.sample(0, 0).aberrations)


def test_a_short_last_group_and_bad_settings():
    assert len(SMALL.sample(0, seed=1, size=1)) == 1
    with pytest.raises(ValueError, match="at least one"):
        SMALL.sample(0, seed=1, size=0)
    with pytest.raises(ValueError, match="angular_sampling"):
        RonchigramSampler(angular_sampling=(0.8, 0.4))
    with pytest.raises(ValueError, match="dose_per_image"):
        RonchigramSampler(dose_per_image=(0.0, 1e6))
    with pytest.raises(ValueError, match="group"):
        RonchigramSampler(group=0)
    assert RonchigramSampler().describe()["ranges_A"]["C12"] == [0.0, 250.0]


def test_a_hard_core_is_drawn_as_a_fraction_of_the_atom_spacing():
    sampler = RonchigramSampler(
        angular_sampling=(0.8, 0.8), group=1, amorphous_thickness=(20, 40), crystal_fraction=0.0,
        amorphous_elements={"C": 1.0}, hard_core=(0.5, 0.5),
    )  # fmt: skip
    specimen, text = sampler._specimen(np.random.default_rng(0))
    spacing = specimen.density ** (-1 / 3)  # 2.15 Å for a-C
    assert specimen.min_distance == pytest.approx(0.5 * spacing) and "1.08 Å apart" in text
    assert sampler.describe()["hard_core_fraction_of_spacing"] == [0.5, 0.5]
    assert sampler.sample(0, seed=1).counts.shape == (1, 98, 98)
    # the default places atoms independently and draws nothing for it
    assert RonchigramSampler()._specimen(np.random.default_rng(0))[0].min_distance == 0.0
    with pytest.raises(ValueError, match="hard_core"):
        RonchigramSampler(hard_core=(0.3, 0.7))
    with pytest.raises(ValueError, match="hard_core"):
        RonchigramSampler(hard_core=(0.5, 0.3))
