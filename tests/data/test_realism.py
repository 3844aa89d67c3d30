"""Specimen and optics effects of atomlens.data.realism, and ImageSampler(realism=True)."""

import math

import numpy as np
import pytest

from atomlens.core.validation import ParameterError
from atomlens.data import ImageSampler, realism
from atomlens.data.samplers import (
    REAL_PIXEL_SIZE,
    random_stem_imaging,
    simulate_realistic_image,
)
from atomlens.physics.structures.lattice import field

#: Sums and sums of squares of the image and clean arrays of the realism=False streams below,
#: computed on main before realism existed (commit 376f829). The default stream must not
#: change. (A sha256 of the arrays was kept here until 2026-11-30: the bits differ from one
#: machine to another, the old commit and main gave the same bits on each machine tried.)
PLAIN_STREAM = [
    ("stem", "realistic", 0, 3373336.4344466925, 45125494212.947556, 1023.9999482715502,
     4727.998364899564),
    ("stem", "realistic", 1, 48530.88391469419, 3099059.9350041635, 1023.9999798536301,
     1367.9767577225425),
    ("stem", "shot", 0, 213640.0, 205557088.0, 1023.9999482715502, 4727.998364899564),
    ("stem", "shot", 1, 120702.0, 19162034.0, 1023.9999798536301, 1367.9767577225425),
    ("hrtem", "realistic", 0, 827798.0, 974328678.0, 879.7708700150251, 843.5411318981369),
    ("hrtem", "realistic", 1, 753950.0, 2547570476.0, 972.5932219028473, 959.3909097850094),
    ("hrtem", "shot", 0, 804237.0, 706052955.0, 879.7708700150251, 843.5411318981369),
    ("hrtem", "shot", 1, 437250.0, 194468464.0, 972.5932219028473, 959.3909097850094),
    ("mixed", "realistic", 0, 84176.0, 8107976.0, 947.667308786884, 1030.726010103553),
    ("mixed", "realistic", 1, 124995.12729787827, 21882577.00888594, 1023.9999935515225,
     1609.5220435917522),
    ("mixed", "shot", 0, 38675.0, 1757425.0, 947.667308786884, 1030.726010103553),
    ("mixed", "shot", 1, 36555.0, 2071061.0, 1023.9999935515225, 1609.5220435917522),
]  # fmt: skip


def test_plain_stream_is_the_same_as_before():
    # the clean image to rounding; the counts to a few flipped Poisson draws (a rounding
    # difference in an expected count can move one draw by one count); another stream moves
    # these sums by percents
    for modality, distortions, index, *expected in PLAIN_STREAM:
        sampler = ImageSampler(modality=modality, size=32, distortions=distortions)
        result = sampler.sample(index, seed=7)
        assert "realism" not in result.metadata
        image, clean = (np.asarray(a, np.float64) for a in (result.image, result.clean))
        got = [image.sum(), (image**2).sum(), clean.sum(), (clean**2).sum()]
        assert got[:2] == pytest.approx(expected[:2], rel=1e-4), (modality, distortions, index)
        assert got[2:] == pytest.approx(expected[2:], rel=1e-9), (modality, distortions, index)


def test_wedge_mean_increases_linearly_along_its_direction():
    image = np.ones((64, 96), np.float32)
    out = realism.thickness_gradient(image, 0.2, span=0.6, direction=0.0)
    columns = out.mean(axis=0)
    slope, offset = np.polyfit(np.arange(96), columns, 1)
    assert np.allclose(columns, slope * np.arange(96) + offset, atol=1e-5)
    assert columns[-1] - columns[0] == pytest.approx(0.6, rel=1e-5)
    assert np.allclose(out.mean(axis=1), out.mean(axis=1)[0], atol=1e-6)  # flat across
    assert out.mean() == pytest.approx(1.0, rel=1e-5)  # thickness 1 at the centre


def test_wedge_scales_contrast_around_the_vacuum_level():
    rng = np.random.default_rng(0)
    image = (1 - 0.3 * rng.uniform(size=(32, 32))).astype(np.float32)
    out = realism.thickness_gradient(image, 0.2, span=0.8, direction=math.pi / 2, reference=1.0)
    thick = realism.thickness_map(image.shape, span=0.8, direction=math.pi / 2)
    assert np.allclose(1 - out, (1 - image) * thick, atol=1e-6)
    assert thick[-1, 0] > thick[0, 0]  # direction pi / 2 is +y (down the rows)


def test_background_is_smooth_and_in_unit_range():
    rng = np.random.default_rng(1)
    background = realism.smooth_background((128, 128), rng, length=20.0)
    assert background.min() == pytest.approx(0) and background.max() == pytest.approx(1)
    window = np.outer(np.hanning(128), np.hanning(128))  # the polynomial is not periodic
    power = np.abs(np.fft.fft2((background - background.mean()) * window)) ** 2
    q = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    assert power[q < 0.05].sum() > 0.99 * power.sum()


def test_additive_background_raises_the_mean_by_its_amplitude_at_most():
    image = np.ones((48, 48), np.float32)
    background = realism.smooth_background((48, 48), np.random.default_rng(2), length=10)
    out = realism.add_background(image, background, amplitude=0.3)
    assert np.allclose(out - image, 0.3 * background, atol=1e-6)
    pedestal = realism.add_background(image, background, amplitude=0.3, floor=1.0)
    assert np.allclose(pedestal, 1.3, atol=1e-6)  # floor 1: a constant pedestal
    with pytest.raises(ParameterError, match="mode"):
        realism.add_background(image, background, amplitude=0.3, mode="subtract")
    with pytest.raises(ParameterError, match="shape"):
        realism.add_background(image, background[:10], amplitude=0.3)


def _point(shape=(64, 64)) -> np.ndarray:
    image = np.zeros(shape, np.float32)
    image[shape[0] // 2, shape[1] // 2] = 1.0
    return image


def test_probe_tail_conserves_intensity_and_moves_weight_to_a_halo():
    out = realism.probe_tail(_point(), 0.1, weight=0.1, width=1.0)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
    assert out[32, 32] == pytest.approx(0.9, abs=0.01)
    # the tail decays with distance but is still there 2 Å (20 px) away
    assert out[32, 42] > out[32, 52] > 0


def test_mistilt_blurs_along_one_direction_only():
    pixel_size, tilt, thickness = 0.1, 20.0, 100.0
    out = realism.mistilt_blur(
        _point(), pixel_size, tilt=tilt, thickness=thickness, direction=0.0
    ).astype(float)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
    y, x = np.mgrid[:64, :64] - 32
    var_x = (out * x**2).sum() / out.sum()
    var_y = (out * y**2).sum() / out.sum()
    expected = (tilt * 1e-3 * thickness / pixel_size) ** 2 / 12  # uniform smear [px^2]
    assert var_x == pytest.approx(expected, rel=0.05)
    assert var_y < 1e-6
    # a diagonal tilt spreads equally along both axes
    diagonal = realism.mistilt_blur(
        _point(), pixel_size, tilt=tilt, thickness=thickness, direction=math.pi / 4
    )
    assert (diagonal * x**2).sum() == pytest.approx((diagonal * y**2).sum(), rel=1e-3)


def test_amorphous_layer_adds_carbon_on_one_side_with_patches():
    rng = np.random.default_rng(3)
    atoms = field("SrTiO3", (64, 64), 0.25, rotation=0.0, rng=rng)
    top = realism.add_amorphous_layer(atoms, 0.25, rng, thickness=10, coverage=1.0)
    added = top[len(atoms) :]
    assert set(added.get_chemical_symbols()) == {"C"}
    assert added.positions[:, 2].min() > atoms.positions[:, 2].max()
    patchy = realism.add_amorphous_layer(atoms, 0.25, rng, thickness=10, coverage=0.3)
    assert 0 < len(patchy) - len(atoms) < len(added)
    bottom = realism.add_amorphous_layer(atoms, 0.25, rng, thickness=10, side="bottom")
    crystal = bottom[: len(atoms)]
    assert bottom[len(atoms) :].positions[:, 2].max() < crystal.positions[:, 2].min()
    assert bottom.positions[:, 2].min() >= 0
    with pytest.raises(ParameterError, match="coverage"):
        realism.add_amorphous_layer(atoms, 0.25, rng, thickness=10, coverage=0)
    with pytest.raises(ParameterError, match="side"):
        realism.add_amorphous_layer(atoms, 0.25, rng, thickness=10, side="left")


def test_amorphized_regions_have_no_crystal_left():
    rng = np.random.default_rng(4)
    atoms = field("SrTiO3", (64, 64), 0.25, rotation=0.0, rng=rng)
    out, mask = realism.amorphize_regions(atoms, 0.25, rng, fraction=0.3, length=5)
    assert mask.mean() == pytest.approx(0.3, abs=0.02)
    assert set(out.get_chemical_symbols()) <= set(atoms.get_chemical_symbols())
    # every original atom still there lies outside the mask
    kept = {tuple(p) for p in np.round(atoms.positions, 6)} & {
        tuple(p) for p in np.round(out.positions, 6)
    }
    rows = [round(p[1] / 0.25) % 64 for p in kept]
    cols = [round(p[0] / 0.25) % 64 for p in kept]
    assert not mask[rows, cols].any()


@pytest.mark.parametrize(
    ("call", "keyword"),
    [
        (lambda im: realism.probe_tail(im, 0.1, weight=0.9, width=1.0), "weight"),
        (lambda im: realism.probe_tail(im, 0.1, weight=0.1, width=-1.0), "width"),
        (lambda im: realism.mistilt_blur(im, 0.1, tilt=-1, thickness=10, direction=0), "tilt"),
        (lambda im: realism.thickness_gradient(im, 0.1, span=2.5, direction=0), "span"),
        (lambda im: realism.thickness_gradient(im, 0.1, span=float("nan"), direction=0), "span"),
    ],
)
def test_bad_parameters_raise_clear_errors(call, keyword):
    with pytest.raises(ParameterError, match=keyword):
        call(np.ones((16, 16), np.float32))


def test_sampler_realism_is_reproducible_and_recorded():
    sampler = ImageSampler(modality="haadf", size=64, pixel_size=REAL_PIXEL_SIZE, realism=True)
    first, again = sampler.sample(5, seed=2), sampler.sample(5, seed=2)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.clean, again.clean)
    assert set(first.metadata["realism"]) == set(realism.CHANCES)
    assert first.metadata["imaging"]["mode"] == "HAADF"
    assert not np.array_equal(first.image, sampler.sample(6, seed=2).image)


def test_sampler_draws_every_effect_and_keeps_clean_and_image_aligned():
    sampler = ImageSampler(
        modality="mixed", size=48, pixel_size=(0.3, 0.3), realism=True, distortions="shot"
    )
    seen = set()
    for index in range(16):
        result = sampler.sample(index, seed=1)
        seen |= {name for name, value in result.metadata["realism"].items() if value}
        assert result.image.shape == result.clean.shape == (48, 48)
        assert np.isfinite(result.clean).all() and result.clean.min() >= 0
        # shot noise only: the image is the clean image times the dose, up to Poisson noise
        dose = result.metadata["dose_e_per_px"]
        residual = result.image - dose * result.clean
        assert abs(residual.mean()) < 5 * math.sqrt(dose * result.clean.mean() / result.clean.size)
        correlation = np.corrcoef(result.image.ravel(), result.clean.ravel())[0, 1]
        shifted = np.corrcoef(np.roll(result.image, 2, 1).ravel(), result.clean.ravel())[0, 1]
        assert correlation > shifted
    assert seen == set(realism.CHANCES)


def test_abf_modality_draws_abf_only_and_large_pixels_render_columns():
    sampler = ImageSampler(modality="abf", size=64, pixel_size=(0.6, 0.6), distortions="none")
    for index in range(3):
        result = sampler.sample(index, seed=0)
        assert result.metadata["imaging"]["mode"] == "ABF"
        assert result.pixel_size == 0.6
        assert result.clean.max() <= 1.0 + 1e-6  # vacuum level 1, columns dark


def test_sampler_rejects_unknown_modality_and_non_bool_realism():
    with pytest.raises(ValueError, match="modality"):
        ImageSampler(modality="adf")
    with pytest.raises(ValueError, match="realism"):
        ImageSampler(realism="yes")


def test_simulate_realistic_image_renders_a_given_field_and_checks_distortions():
    rng = np.random.default_rng(5)
    atoms = field("SrTiO3", (48, 48), 0.2, rotation=0.0, rng=rng)
    imaging = random_stem_imaging(rng, "HAADF")
    result = simulate_realistic_image(atoms, 0.2, imaging, rng, distortions="none")
    assert np.array_equal(result.image, result.clean)
    assert result.clean.mean() == pytest.approx(1.0, rel=1e-5)  # HAADF stays at mean 1
    assert set(result.metadata["realism"]) == set(realism.CHANCES)
    with pytest.raises(ValueError, match="distortions"):
        simulate_realistic_image(atoms, 0.2, imaging, rng, distortions="heavy")


def test_chances_turn_effects_on_and_off():
    off = dict.fromkeys(realism.CHANCES, 0.0)
    assert not any(realism.draw_realism(np.random.default_rng(0), stem=True, chances=off).values())
    on = dict.fromkeys(realism.CHANCES, 1.0)
    assert all(realism.draw_realism(np.random.default_rng(0), stem=True, chances=on).values())
    hrtem = realism.draw_realism(np.random.default_rng(0), stem=False, chances=on)
    assert hrtem["probe_tail"] is None  # no probe in HRTEM
    with pytest.raises(ParameterError, match="unknown"):
        realism.draw_realism(np.random.default_rng(0), stem=True, chances={"fog": 0.5})
    with pytest.raises(ParameterError, match="chances"):
        realism.draw_realism(np.random.default_rng(0), stem=True, chances={"probe_tail": 2})


def test_columns_at_the_largest_real_pixel_size_are_resolved(find_peaks):
    """At 0.52 Å/px (the .ser example) SrTiO3 [001] columns, 2.76 Å apart, sit about 5.3 px
    apart and every one is a separate peak."""
    from scipy.spatial import cKDTree

    from atomlens.physics import STEMImaging, simulate_image

    atoms = field("SrTiO3", (96, 96), 0.52, thickness=40.0, rotation=0.0)
    clean = simulate_image(atoms, 0.52, STEMImaging(gamma=1.0)).clean
    peaks = find_peaks(clean, min_distance=2, threshold=0.2)
    distances = cKDTree(peaks).query(peaks, k=2)[0][:, 1]
    assert np.median(distances) == pytest.approx(3.905 / math.sqrt(2) / 0.52, rel=0.05)
    assert len(peaks) > 0.8 * 2 * (96 * 0.52 / 3.905) ** 2  # Sr and Ti-O columns
