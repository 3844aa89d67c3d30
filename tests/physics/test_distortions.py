import json
import math

import numpy as np
import pytest
from scipy import stats

from atomlens.physics.detectors.base import Compose, ReadoutNoise, ShotNoise
from atomlens.physics.detectors.sampling import poisson_counts, standard_gamma, standard_normal
from atomlens.physics.detectors.scan import resample_scan
from atomlens.physics.detectors.stem import (
    BlackPixels,
    DetectorLag,
    Drift,
    FlyBack,
    LineJumps,
    PMTGain,
    ScanJitter,
    ScanSpeed,
    Zingers,
    realistic_stem,
)
from atomlens.physics.detectors.tem import (
    DarkCurrent,
    DeadPixels,
    Gain,
    HotPixels,
    MTFBlur,
    Quantise,
    XraySpikes,
    realistic_tem,
)

SIZE = 256
FLAT = np.ones((SIZE, SIZE))
STEM_STEPS = [
    "Drift",
    "ScanJitter",
    "FlyBack",
    "ScanSpeed",
    "ShotNoise",
    "PMTGain",
    "DetectorLag",
    "LineJumps",
    "ReadoutNoise",
    "BlackPixels",
    "Zingers",
]
TEM_STEPS = [
    "ShotNoise",
    "MTFBlur",
    "Gain",
    "DarkCurrent",
    "ReadoutNoise",
    "XraySpikes",
    "DeadPixels",
    "HotPixels",
    "Quantise",
]


def rng(seed=0):
    return np.random.default_rng(seed)


def vertical_edge(column=100.5, shape=(128, 256), width=24.0):
    """An edge at ``column``: 0 on the left, 1 on the right, a linear ramp ``width`` px wide.

    Linear interpolation is exact on the ramp, so a shifted row crosses 1/2 exactly at
    ``column + shift`` (for shifts up to about width / 2).
    """
    profile = np.clip((np.arange(shape[1]) - column) / width + 0.5, 0.0, 1.0)
    return np.broadcast_to(profile, shape).copy()


def edge_positions(image, level=0.5):
    """Sub-pixel x where each row first crosses ``level`` upwards (linear interpolation)."""
    above = image >= level
    first = np.argmax(above, axis=1)
    left, right = image[np.arange(len(image)), first - 1], image[np.arange(len(image)), first]
    return first - 1 + (level - left) / (right - left)


# --- noise -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dose", [0.5, 8.0, 50.0, 500.0])
def test_shot_noise_variance_equals_mean(dose):
    counts, record = ShotNoise(dose_per_pixel=dose).apply(FLAT * 3.0, rng(1))
    assert record["scale"] == pytest.approx(dose / 3.0)
    assert np.array_equal(counts, np.round(counts))
    assert counts.mean() == pytest.approx(dose, rel=0.02)
    assert counts.var() == pytest.approx(dose, rel=0.03)


def test_cornish_fisher_poisson_matches_the_distribution():
    # Above exact_below the counts follow Poisson(30) closely: probabilities of a few values.
    counts = poisson_counts(np.full(400_000, 30.0), rng(2))
    exact = poisson_counts(np.full(400_000, 30.0), rng(3), exact_below=math.inf)
    for k in (20, 30, 40):
        assert np.mean(counts == k) == pytest.approx(np.mean(exact == k), abs=0.002)
    skew = ((counts - 30) ** 3).mean() / 30**1.5
    assert skew == pytest.approx(1 / math.sqrt(30), abs=0.03)


@pytest.mark.parametrize("mean", [0.3, 3.0, 15.0])
def test_exact_poisson_sampler_matches_the_pmf(mean):
    counts = poisson_counts(np.full(200_000, mean), rng(30))
    for k in range(int(mean) + 3):
        assert np.mean(counts == k) == pytest.approx(stats.poisson.pmf(k, mean), abs=0.003)
    scalar = poisson_counts(mean, rng(31), shape=(200_000,))
    assert scalar.mean() == pytest.approx(mean, rel=0.01)
    assert scalar.var() == pytest.approx(mean, rel=0.02)


def test_fast_normal_and_gamma_samplers_follow_their_distributions():
    z = standard_normal((300, 301), rng(32))
    assert z.dtype == np.float32 and z.shape == (300, 301)
    assert stats.kstest(z.ravel(), "norm").statistic < 0.005
    for shape in (0.5, 4.0, 25.0):  # exact below 10, Wilson-Hilferty above
        draws = standard_gamma(np.full(100_000, shape), rng(33))
        assert stats.kstest(draws, stats.gamma(shape).cdf).statistic < 0.01
    assert not standard_gamma(np.zeros(10), rng()).any()


def test_shot_noise_without_dose_reads_expected_electrons():
    counts, record = ShotNoise().apply(FLAT * 4.0, rng(4))
    assert record["scale"] == 1.0
    assert counts.mean() == pytest.approx(4.0, rel=0.02)


@pytest.mark.parametrize(("gain", "cv", "dose"), [(3.0, 0.6, 50.0), (10.0, 1.0, 2.0)])
def test_pmt_gain_noise_variance(gain, cv, dose):
    electrons, _ = ShotNoise(dose_per_pixel=dose).apply(FLAT, rng(5))
    signal, _ = PMTGain(gain=gain, cv=cv).apply(electrons, rng(6))
    assert signal.mean() == pytest.approx(dose * gain, rel=0.02)
    assert signal.var() == pytest.approx(dose * gain**2 * (1 + cv**2), rel=0.04)


def test_pmt_gain_of_zero_electrons_is_zero():
    signal, _ = PMTGain(gain=5.0, cv=0.5).apply(np.zeros((8, 8)), rng())
    assert not signal.any()


def test_readout_noise_std_and_offset():
    counts, _ = ReadoutNoise(sigma=3.0, offset=100.0).apply(np.zeros((SIZE, SIZE)), rng(7))
    assert counts.mean() == pytest.approx(100.0, abs=0.05)
    assert counts.std() == pytest.approx(3.0, rel=0.02)


def test_dark_current_is_poisson_of_rate_times_exposure():
    counts, record = DarkCurrent(rate=4.0, exposure=0.5).apply(np.zeros((SIZE, SIZE)), rng(8))
    assert record["mean"] == 2.0
    assert counts.mean() == pytest.approx(2.0, rel=0.02)
    assert counts.var() == pytest.approx(2.0, rel=0.04)
    assert np.array_equal(counts, np.round(counts))


def test_gain_scales_counts():
    out, _ = Gain(gain=2.5).apply(FLAT * 4, rng())
    assert np.allclose(out, 10.0)


# --- camera response --------------------------------------------------------------------------


def test_mtf_attenuates_a_grating_by_the_mtf():
    blur = MTFBlur(q0=0.2, floor=0.1)
    x = np.arange(64)
    for period in (16, 4, 2):
        grating = 10 + np.cos(2 * np.pi * x / period)[None, :] * np.ones((64, 1))
        out, _ = blur.apply(grating, rng())
        q = 1 / period
        expected = 0.9 / (1 + (q / 0.2) ** 2) + 0.1
        assert out.mean() == pytest.approx(10.0, rel=1e-6)
        amplitude = (out[0].max() - out[0].min()) / 2
        assert amplitude == pytest.approx(expected, rel=1e-4)


def test_mtf_keeps_the_mean_and_lowers_high_frequency_power():
    blur = MTFBlur(q0=0.15, floor=0.05)
    noise = rng(9).normal(100.0, 10.0, (SIZE, SIZE))
    out, record = blur.apply(noise, rng())
    assert out.mean() == pytest.approx(noise.mean(), rel=1e-6)
    assert record["mtf_nyquist"] == pytest.approx(float(blur.mtf(0.5)))
    q = np.hypot(np.fft.fftfreq(SIZE)[:, None], np.fft.fftfreq(SIZE)[None, :])
    power_in = np.abs(np.fft.fft2(noise - noise.mean())) ** 2
    power_out = np.abs(np.fft.fft2(out - out.mean())) ** 2
    band = (q > 0.4) & (q < 0.5)
    ratio = power_out[band].sum() / power_in[band].sum()
    predicted = (blur.mtf(q[band]) ** 2 * power_in[band]).sum() / power_in[band].sum()
    assert ratio == pytest.approx(predicted, rel=1e-3)
    assert ratio < 0.05


def test_quantise_gives_integers_within_the_bit_depth():
    values = np.linspace(-50.0, 5000.0, 64 * 64).reshape(64, 64)
    out, record = Quantise(bits=12).apply(values, rng())
    assert np.array_equal(out, np.round(out))
    assert out.min() == 0 and out.max() == 4095 == record["saturation"]
    assert record["n_saturated"] == np.count_nonzero(np.rint(values) > 4095)
    assert record["n_clipped_low"] == np.count_nonzero(np.rint(values) < 0)


# --- pixel defects ----------------------------------------------------------------------------


def mask_of(coords, shape):
    mask = np.zeros(shape, bool)
    mask[coords[:, 0], coords[:, 1]] = True
    return mask


@pytest.mark.parametrize(
    ("step", "value"),
    [
        (DeadPixels(fraction=0.01), 0.0),
        (HotPixels(fraction=0.01, level=4095.0), 4095.0),
        (BlackPixels(fraction=0.01), 0.0),
    ],
)
def test_defect_pixels_are_where_listed_and_nowhere_else(step, value):
    image = np.full((128, 128), 100.0)
    out, record = step.apply(image, rng(10))
    mask = mask_of(record["coords"], image.shape)
    assert 80 < mask.sum() < 250
    assert np.all(out[mask] == value)
    assert np.all(out[~mask] == 100.0)


def test_zingers_are_bright_single_pixels_where_listed():
    image = rng(11).uniform(0, 50, (128, 128))
    out, record = Zingers(fraction=0.005, brightness=4.0).apply(image, rng(12))
    mask = mask_of(record["coords"], image.shape)
    assert mask.sum() > 20
    assert record["value"] == pytest.approx(4 * image.max())
    assert np.allclose(out[mask], record["value"])
    assert np.array_equal(out[~mask], image[~mask].astype(np.float32))


def test_fixed_defect_map_is_the_same_for_every_image():
    step = DeadPixels(fraction=0.001, map_seed=42)
    _, first = step.apply(FLAT, rng(1))
    _, second = step.apply(FLAT, rng(2))
    assert np.array_equal(first["coords"], second["coords"]) and len(first["coords"]) > 20


def test_xray_spikes_saturate_small_clusters_at_the_listed_places():
    image = np.full((128, 128), 10.0)
    out, record = XraySpikes(mean_count=20.0, max_size=5, level=16383.0).apply(image, rng(13))
    mask = mask_of(record["coords"], image.shape)
    assert len(record["centres"]) > 5
    assert np.all(out[mask] == 16383.0) and np.all(out[~mask] == 10.0)
    assert mask[record["centres"][:, 0], record["centres"][:, 1]].all()
    assert mask.sum() <= 5 * len(record["centres"])
    # Every spike pixel lies within the walk length of its hit.
    distance = np.abs(record["coords"][:, None, :] - record["centres"][None, :, :]).sum(axis=2)
    assert distance.min(axis=1).max() <= 4


# --- scan geometry ----------------------------------------------------------------------------


def test_horizontal_jitter_moves_each_row_by_its_recorded_shift():
    image = vertical_edge()
    out, record = ScanJitter(sigma_x=1.5, sigma_y=0.0).apply(image, rng(14))
    shifts = record["shifts_x"]
    assert shifts.shape == (128,) and shifts.std() > 0.8
    assert not record["shifts_y"].any()
    assert np.allclose(edge_positions(out), 100.5 + shifts, atol=1e-4)


def test_vertical_jitter_resamples_each_row_at_its_shifted_y():
    ramp = np.broadcast_to(np.arange(128.0)[:, None], (128, 64))
    out, record = ScanJitter(sigma_x=0.0, sigma_y=0.7, correlation=0.5).apply(ramp, rng(15))
    inner = slice(5, -5)  # away from the mirrored borders
    assert np.allclose(out[inner], (ramp - record["shifts_y"][:, None])[inner], atol=1e-4)
    # A horizontal edge: a row just above it takes up exactly the shifted fraction.
    edge = (np.arange(128.0)[:, None] >= 64) * np.ones((1, 64))
    out, record = ScanJitter(sigma_x=0.0, sigma_y=0.3).apply(edge, rng(16))
    predicted = np.clip(np.arange(128.0) - record["shifts_y"] - 63, 0, 1)
    assert np.allclose(out[:, 10], predicted, atol=1e-5)


def test_correlated_jitter_has_the_drawn_correlation_and_sigma():
    shifts = ScanJitter(sigma_x=0.5, correlation=0.8).draw((20000, 8), rng(17))["shifts_x"]
    assert shifts.std() == pytest.approx(0.5, rel=0.05)
    assert np.corrcoef(shifts[:-1], shifts[1:])[0, 1] == pytest.approx(0.8, abs=0.02)


def test_drift_shears_a_vertical_line_by_velocity_times_row():
    out, record = Drift(velocity_y=0.0, velocity_x=0.05).apply(vertical_edge(), rng())
    rows = np.arange(128)
    assert np.allclose(record["shifts_x"], 0.05 * rows)
    assert np.allclose(edge_positions(out), 100.5 + 0.05 * rows, atol=1e-4)


def test_drift_along_y_stretches_the_image():
    ramp = np.broadcast_to(np.arange(128.0)[:, None], (128, 32))
    out, _ = Drift(velocity_y=-0.1, velocity_x=0.0).apply(ramp, rng())
    # Content moves up by 0.1 px per row: row r shows y = 1.1 r.
    assert np.allclose(out[:100, 0], 1.1 * np.arange(100), atol=1e-4)


def test_fly_back_is_largest_at_the_line_start_and_decays():
    step = FlyBack(amplitude=2.0, decay=8.0)
    ramp = np.broadcast_to(np.arange(256.0), (16, 256))
    out, record = step.apply(ramp, rng())
    shifts = record["shifts_x"]
    assert shifts[0] == pytest.approx(2.0 * math.exp(-0.5 / 8.0))
    assert np.all(np.diff(shifts) < 0) and shifts[80] < 1e-3
    # A ramp moved right by s reads x - s; the image is read as constant across each pixel,
    # which adds a sawtooth error of a few hundredths where the pixels are stretched.
    measured = ramp[0] - out[0]
    assert np.allclose(measured[2:], shifts[2:], atol=0.05)
    assert abs(measured[2]) > abs(measured[40]) + 1.0
    # The first pixels are compressed (sampled further apart); a negative amplitude stretches.
    assert np.diff(out[0, 2:8]).min() > 1.0
    stretched, _ = FlyBack(amplitude=-2.0, decay=8.0).apply(ramp, rng())
    assert np.diff(stretched[0, 2:8]).max() < 1.0


def test_scan_speed_displaces_and_blurs_along_the_line():
    step = ScanSpeed(amplitude=0.2, length=20.0)
    record = step.draw((8, 256), rng(18))
    speed = record["speed"]
    assert speed.mean() == pytest.approx(1.0) and speed.std() > 0.1
    ramp = np.broadcast_to(np.arange(256.0), (8, 256))
    out = resample_scan(ramp, *step.sampling_offsets(record, (8, 256)))
    # Read as constant across each pixel, the ramp is a staircase: averaged over a few pixels,
    # its shift is the recorded one.
    error = (ramp[0] - out[0] - record["shifts_x"])[4:-4]
    assert np.abs(np.convolve(error, np.ones(8) / 8, mode="valid")).max() < 0.03
    assert np.abs(record["shifts_x"]).max() > 2.0
    # Blur: where the probe is fast, a pixel averages over ``speed`` px, so a bright column is
    # diluted by 1 / speed.
    column = int(np.argmax(speed[20:-20])) + 20
    line = np.zeros((1, 256))
    line[0, column] = 1.0
    blurred = resample_scan(line, *step.sampling_offsets(record, (1, 256)))
    seen_at = int(np.argmax(blurred[0]))
    assert speed[seen_at] > 1.2
    assert blurred.sum() == pytest.approx(1 / speed[seen_at], rel=0.03)


def test_fused_scan_steps_add_their_shifts():
    chain = Compose([ScanJitter(sigma_x=0.8), Drift(velocity_x=0.02), FlyBack(0.0, 5.0)])
    out, records = chain.apply(vertical_edge(), rng(19))
    assert [name for name, _ in records] == ["ScanJitter", "Drift", "FlyBack"]
    total = records[0][1]["shifts_x"] + records[1][1]["shifts_x"]
    assert np.allclose(edge_positions(out), 100.5 + total, atol=1e-4)


def test_folding_scan_is_refused():
    with pytest.raises(ValueError, match="backwards"):
        resample_scan(np.ones((4, 8)), 0.0, -1.5 * np.arange(9.0))


# --- detector response along the scan ---------------------------------------------------------


def test_detector_lag_rises_63_percent_in_one_time_constant():
    step = np.zeros((4, 128))
    step[:, 40:] = 1.0
    out, _ = DetectorLag(tau=5.0).apply(step, rng())
    assert out[0, 39] == 0.0
    assert out[0, 39 + 5] == pytest.approx(1 - math.exp(-1), rel=1e-5)
    assert out[0, 39 + 10] == pytest.approx(1 - math.exp(-2), rel=1e-5)
    settled, _ = DetectorLag(tau=5.0).apply(FLAT[:4] * 7.0, rng())
    assert np.allclose(settled, 7.0)


def test_line_jumps_multiply_rows_by_the_recorded_factors():
    out, record = LineJumps(probability=0.2, sigma=0.3).apply(FLAT * 5.0, rng(20))
    factors = record["factors"]
    assert 20 < np.count_nonzero(factors != 1.0) < 90
    assert np.allclose(out, 5.0 * factors[:, None], rtol=1e-6)


# --- reproducibility, composition, presets ----------------------------------------------------


@pytest.mark.parametrize("preset", [realistic_stem, realistic_tem])
def test_same_seed_same_output_other_seed_different(preset):
    image = 1 + 0.5 * np.cos(np.arange(64) / 3.0)[None, :] * np.ones((64, 1))

    def run(seed):
        generator = rng(seed)
        return preset(generator).apply(image, generator)[0]

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


@pytest.mark.parametrize("preset", [realistic_stem, realistic_tem])
def test_the_input_image_is_never_modified(preset):
    image = rng(23).uniform(0.5, 1.5, (40, 48))
    kept = image.copy()
    generator = rng(24)
    preset(generator).apply(image, generator)
    for step in [*preset(rng(25)).steps, Gain(3.0), LineJumps(1.0, 0.5)]:
        step.apply(image, rng(26))
    assert np.array_equal(image, kept)


def test_compose_applies_in_order_and_records_every_step():
    image = np.full((8, 8), 200.0)
    forward, records = Compose([Gain(2.0), Quantise(bits=8)]).apply(image, rng())
    backward, _ = Compose([Quantise(bits=8), Gain(2.0)]).apply(image, rng())
    assert np.all(forward == 255) and np.all(backward == 400)
    assert [name for name, _ in records] == ["Gain", "Quantise"]
    assert records[1][1]["n_saturated"] == 64


def test_compose_matches_step_by_step_application():
    steps = [
        ShotNoise(dose_per_pixel=30.0),
        PMTGain(gain=2.0),
        LineJumps(0.3, 0.2),
        ReadoutNoise(1.0),
    ]
    image = rng(21).uniform(0.5, 1.5, (32, 32))
    fused, _ = Compose(steps).apply(image, rng(22))
    generator, out = rng(22), image
    for step in steps:
        out, _ = step.apply(out, generator)
    assert np.allclose(fused, out, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    ("preset", "names"), [(realistic_stem, STEM_STEPS), (realistic_tem, TEM_STEPS)]
)
def test_presets_give_finite_float32_images_and_every_record(preset, names):
    yy, xx = np.mgrid[:96, :80]
    image = 1 + 0.8 * np.cos(xx / 2.0) * np.cos(yy / 2.3)
    for seed in range(6):
        generator = rng(seed)
        chain = preset(generator)
        out, records = chain.apply(image, generator)
        assert out.dtype == np.float32 and out.shape == image.shape
        assert np.isfinite(out).all()
        assert [name for name, _ in records] == names
        described = json.loads(json.dumps(chain.describe()))
        assert [step["name"] for step in described["steps"]] == names


def test_preset_parameters_stay_in_their_documented_ranges():
    stem = [realistic_stem(rng(seed)).steps for seed in range(150)]
    doses = np.array([steps[4].dose_per_pixel for steps in stem])
    assert doses.min() >= 2.0 and doses.max() <= 1000.0
    assert np.median(doses) == pytest.approx(math.sqrt(2000.0), rel=0.5)
    assert all(abs(steps[0].velocity_x) <= 0.02 and steps[1].sigma_x <= 0.5 for steps in stem)
    off = np.mean([steps[9].fraction == 0 for steps in stem])
    assert 0.3 < off < 0.7
    tem = [realistic_tem(rng(seed)).steps for seed in range(150)]
    assert all(t[0].dose_per_pixel * t[2].gain <= 2 ** t[-1].bits / 8 for t in tem)
    assert {t[-1].bits for t in tem} == {12, 14, 16}


def test_describe_has_units_in_the_keys():
    assert ShotNoise(dose_per_pixel=10.0).describe() == {
        "name": "ShotNoise",
        "dose_per_pixel_e_per_px": 10.0,
        "dose_per_image_e": None,
        "exact_below_e": 20.0,
    }
    assert "velocity_x_px_per_row" in Drift().describe()
    assert MTFBlur().describe()["q0_cycles_per_px"] == 0.25


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ShotNoise(dose_per_pixel=-5.0), "dose"),
        (lambda: ShotNoise(dose_per_pixel=math.nan), "dose"),
        (lambda: DeadPixels(fraction=1.5), "fraction"),
        (lambda: LineJumps(probability=-0.1), "probability"),
        (lambda: ScanJitter(correlation=1.0), "correlation"),
        (lambda: ScanJitter(sigma_x=-1.0), "sigma_x"),
        (lambda: FlyBack(amplitude=5.0, decay=2.0), "amplitude"),
        (lambda: ScanSpeed(amplitude=0.9), "amplitude"),
        (lambda: PMTGain(gain=0.0), "gain"),
        (lambda: PMTGain(cv=-1.0), "cv"),
        (lambda: MTFBlur(q0=0.0), "q0"),
        (lambda: MTFBlur(floor=2.0), "floor"),
        (lambda: Quantise(bits=0), "bits"),
        (lambda: Quantise(bits=12.5), "bits"),
        (lambda: XraySpikes(max_size=0), "max_size"),
        (lambda: ReadoutNoise(sigma=-1.0), "sigma"),
        (lambda: DetectorLag(tau=-2.0), "tau"),
        (lambda: Drift(velocity_x=math.inf), "velocity_x"),
        (lambda: realistic_stem(rng(), dose_per_pixel_range=(0.0, 10.0)), "dose_per_pixel_range"),
        (lambda: Compose([Gain(1.0), "noise"]), "Distortion"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_images_raise():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        Gain(1.0).apply(np.zeros((2, 4, 4)), rng())
    with pytest.raises(ValueError, match="finite"):
        ScanJitter().apply(np.full((4, 4), np.nan), rng())
    with pytest.raises(ValueError, match="non-negative"):
        ShotNoise(dose_per_pixel=10.0).apply(-FLAT, rng())
    with pytest.raises(ValueError, match="non-negative"):
        Compose([ReadoutNoise(sigma=5.0), PMTGain()]).apply(np.zeros((16, 16)), rng())
    with pytest.raises(TypeError, match="Generator"):
        Gain(1.0).apply(FLAT, 0)
