"""The physics-based measurement from several Ronchigrams of one specimen (calibrate.measure)."""

import math

import numpy as np
import pytest
import torch

from atomlens.calibrate import MeasureOptions, estimate, measure
from atomlens.calibrate.shadow import gradient_basis, hessian_basis, shadow_position
from atomlens.calibrate.symmetry import COEFFICIENTS
from atomlens.cli.calibrate import _probe_shifts
from atomlens.core.validation import InputError
from atomlens.physics import (
    Aberrations,
    AmorphousSpecimen,
    RonchigramSetup,
    ronchigram_camera,
    simulate_ronchigram,
)
from atomlens.physics.optics.transfer import BASIS, chi_basis

SETUP = RonchigramSetup(energy=200e3, semiangle=30.0, angular_sampling=0.5, size=128)
CALIBRATION = {"energy": 200e3, "semiangle": 30.0, "angular_sampling": 0.5}
#: A thin specimen: the C10 measured is that of the plane the shadow image is sharpest in.
SPECIMEN = AmorphousSpecimen(thickness=10.0, slice_thickness=10.0)
TRUTH = Aberrations(C10=-300.0, C12=80.0, phi12=0.4)
#: A start near the truth and no search: for the tests of what is refused (faster).
NEAR = {"initial": np.array([-260.0, 35.0, 57.0, 0, 0, 0, 0, 0]),
        "options": MeasureOptions(search=False)}  # fmt: skip
#: (C10 offset [Å], probe shift (dy, dx) [Å]): a through-focus triple, then two probe shifts.
PLAN = [(0.0, (0.0, 0.0)), (-200.0, (0.0, 0.0)), (200.0, (0.0, 0.0)),
        (0.0, (1.5, 0.0)), (0.0, (0.0, 1.5))]  # fmt: skip


def _series(truth, plan, seed=3, specimen_seeds=None):
    """Ronchigrams of one specimen (the same simulator seed and field) at the planned settings."""
    camera = ronchigram_camera(1e7)
    images = []
    for k, (offset, shift) in enumerate(plan):
        changed = truth.replace(C10=truth["C10"] + offset)
        specimen_seed = seed if specimen_seeds is None else specimen_seeds[k]
        image = simulate_ronchigram(SETUP, changed, SPECIMEN, shift=shift, seed=specimen_seed,
                                    oversampling=3)  # fmt: skip
        images.append(camera.apply(image, np.random.default_rng(1000 + k))[0])
    return images


def _cartesian(aberrations):
    cart = aberrations.to_cartesian()
    return np.array([cart.get(name, 0.0) for name in COEFFICIENTS])


@pytest.fixture(scope="module")
def series():
    return _series(TRUTH, PLAN)


@pytest.fixture(scope="module")
def with_shifts(series):
    return measure(series, offsets=[p[0] for p in PLAN], probe_shifts=[p[1] for p in PLAN],
                   **CALIBRATION)  # fmt: skip


def test_the_shadow_bases_are_the_gradient_and_hessian_of_chi():
    """x = (lambda / 2 pi) grad chi, with chi_basis's azimuth convention (y = rows)."""
    wavelength, step = 0.025, 1e-6
    terms = [(1, 0, "a"), (1, 2, "a"), (1, 2, "b"), (2, 1, "a"), (2, 1, "b"), (2, 3, "a"),
             (2, 3, "b"), (3, 0, "a")]  # fmt: skip
    order = [BASIS.index(t) for t in terms]

    def wave(alpha):
        ay = torch.tensor([[alpha[0]]], dtype=torch.float64)
        ax = torch.tensor([[alpha[1]]], dtype=torch.float64)
        chi = chi_basis(torch.hypot(ay, ax), torch.atan2(ay, ax), wavelength)
        return chi[order, 0, 0].numpy() * wavelength / (2 * math.pi)

    alpha = np.array([0.012, -0.007])
    numeric = np.stack([(wave(alpha + step * e) - wave(alpha - step * e)) / (2 * step)
                        for e in np.eye(2)])  # fmt: skip
    np.testing.assert_allclose(gradient_basis(alpha), numeric, atol=1e-9)
    hessian = np.stack([np.stack([(gradient_basis(alpha + step * e)[i]
                                   - gradient_basis(alpha - step * e)[i]) / (2 * step)
                                  for e in np.eye(2)]) for i in range(2)])  # fmt: skip
    np.testing.assert_allclose(hessian_basis(alpha), hessian, atol=1e-8)


def test_shadow_position_known_value():
    values = np.zeros(8)
    values[0] = -100.0  # C10 = -10 nm: the shadow is inverted
    np.testing.assert_allclose(
        shadow_position(values, np.array([0.01, 0.0]), np.array([0.0, 2.0])), [-1.0, 2.0]
    )


def test_planted_aberrations_come_back_within_the_stated_uncertainty(with_shifts):
    truth = _cartesian(TRUTH)
    error = with_shifts.values - truth
    assert with_shifts.sign_resolved
    assert np.sign(with_shifts.values[0]) == np.sign(truth[0])
    for index, name in enumerate(COEFFICIENTS[:3]):
        assert abs(error[index]) < 3 * with_shifts.sigma[index], name
        assert with_shifts.sigma[index] < 5.0, name  # [Å]: sub-nanometre
    assert with_shifts.model.startswith("physics")


def test_estimate_routes_probe_shifts_to_the_measurement(series, with_shifts, monkeypatch):
    calls = []
    monkeypatch.setattr("atomlens.calibrate.multi.measure",
                        lambda *args, **kwargs: calls.append(kwargs) or with_shifts)  # fmt: skip
    routed = estimate(series, offsets=[p[0] for p in PLAN], probe_shifts=[p[1] for p in PLAN],
                      **CALIBRATION)  # fmt: skip
    assert routed is with_shifts
    assert calls[0]["probe_shifts"] == [p[1] for p in PLAN]
    estimate(series[:3], offsets=[p[0] for p in PLAN[:3]], method="physics", **CALIBRATION)
    assert calls[1]["probe_shifts"] is None
    with pytest.raises(ValueError, match="physics"):
        estimate(series, offsets=[p[0] for p in PLAN], probe_shifts=[p[1] for p in PLAN],
                 method="network", **CALIBRATION)  # fmt: skip


def test_a_through_focus_triple_alone_is_refused_with_a_clear_message(series):
    """At this size, images 20 nm apart in defocus about C10 = -30 nm match after the model no
    better than unrelated images (the Fresnel detail changes with defocus): refused, with the
    remedy; the network still combines the triple."""
    with pytest.raises(InputError, match="do not match one another"):
        measure(series[:3], offsets=[p[0] for p in PLAN[:3]], **CALIBRATION)
    combined = estimate(series[:3], offsets=[p[0] for p in PLAN[:3]], **CALIBRATION)
    assert combined.model == "ronchigram-aberrations"


def test_adding_defocus_and_two_fold_offsets_to_probe_shifts_does_not_hurt(series, with_shifts):
    """Probe shifts alone, then with the through-focus images (``with_shifts``), then also with
    a two-fold offset: no worse beyond the uncertainty (the fit's fixed point moves by about a
    sigma with the start)."""
    truth = _cartesian(TRUTH)
    chosen = (0, 3, 4)
    alone = measure([series[i] for i in chosen], offsets=[PLAN[i][0] for i in chosen],
                    probe_shifts=[PLAN[i][1] for i in chosen], **NEAR, **CALIBRATION)  # fmt: skip
    extra = TRUTH.to_cartesian()
    extra["C12a"] += 100.0
    image = simulate_ronchigram(SETUP, Aberrations.from_cartesian(extra), SPECIMEN, seed=3,
                                oversampling=3)  # fmt: skip
    offsets = [p[0] for p in PLAN] + [{"C12a": 100.0}]
    shifts = [p[1] for p in PLAN] + [(0.0, 0.0)]
    more = measure([*series, image], offsets=offsets, probe_shifts=shifts, **NEAR, **CALIBRATION)
    base = np.abs(alone.values - truth)
    for result in (with_shifts, more):
        error = np.abs(result.values - truth)
        assert error[0] <= base[0] + 3 * alone.sigma[0]
        assert np.hypot(*error[1:3]) <= np.hypot(*base[1:3]) + 3 * np.hypot(*alone.sigma[1:3])
        assert np.sign(result.values[0]) == np.sign(truth[0])


@pytest.mark.parametrize(
    ("offsets", "shifts", "match"),
    [
        ([0.0, -200.0], None, "3 Ronchigrams but 2 offsets"),
        ([0.0, -200.0, 200.0], [(0, 0), (1, 0)], "3 Ronchigrams but 2 probe shifts"),
        ([0.0, -2e-8, 2e-8], None, "metres"),
        ([0.0, -2e5, 2e5], None, "not pm"),
        ([0.0, 0.0, 0.0], [(0, 0), (1e-10, 0), (0, 1e-10)], "metres"),
        ([0.0, 0.0, 0.0], None, "same setting"),
    ],
)
def test_offsets_and_shifts_in_the_wrong_number_or_units_are_refused(
    series, offsets, shifts, match
):
    with pytest.raises(ValueError, match=match):
        measure(series[:3], offsets=offsets, probe_shifts=shifts, **NEAR, **CALIBRATION)


def test_a_series_of_different_specimens_is_refused():
    plan = [(0.0, (0.0, 0.0)), (0.0, (1.5, 0.0)), (0.0, (0.0, 1.5))]
    images = _series(TRUTH, plan, specimen_seeds=[3, 4, 5])
    with pytest.raises(InputError, match="do not match one another"):
        measure(images, offsets=[0.0] * 3, probe_shifts=[p[1] for p in plan], **NEAR,
                **CALIBRATION)  # fmt: skip


def test_nan_input_is_refused(series):
    broken = series[1].copy()
    broken[10, 10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        measure([series[0], broken], offsets=[0.0, -200.0], **NEAR, **CALIBRATION)


def test_cli_probe_shifts_are_parsed_and_counted():
    assert _probe_shifts("0,0; 1.5,0;0,-1.5", 3) == [(0.0, 0.0), (1.5, 0.0), (0.0, -1.5)]
    with pytest.raises(ValueError, match="2 pairs for 3"):
        _probe_shifts("0,0;1,0", 3)
    with pytest.raises(ValueError, match="dy,dx"):
        _probe_shifts("0,0;1", 2)


def test_the_command_passes_offsets_shifts_and_thickness_on(series, with_shifts, monkeypatch,
                                                            tmp_path, capsys):  # fmt: skip
    import tifffile

    from atomlens.cli import main

    files = []
    for k, image in enumerate(series):
        files.append(str(tmp_path / f"r{k}.tif"))
        tifffile.imwrite(files[-1], image)
    calls = []
    monkeypatch.setattr("atomlens.calibrate.estimate",
                        lambda items, **kwargs: calls.append(kwargs) or with_shifts)  # fmt: skip
    flags = ["--energy", "200e3", "--semiangle", "30", "--angular-sampling", "0.5"]
    args = ["calibrate", *files, "--offsets", "0,-20,20,0,0", "--probe-shifts",
            "0,0;0,0;0,0;1.5,0;0,1.5", "--thickness", "3", "--json", *flags]  # fmt: skip
    assert main(args) == 0
    assert calls[0]["offsets"] == [0.0, -200.0, 200.0, 0.0, 0.0]  # nm -> Å
    assert calls[0]["probe_shifts"] == [p[1] for p in PLAN]
    assert calls[0]["thickness"] == pytest.approx(30.0)
    assert '"sign_resolved": true' in capsys.readouterr().out
    assert main([*args[:-7], "--probe-shifts", "0,0;1,0", *flags]) == 2
    assert "2 pairs for 5" in capsys.readouterr().err
