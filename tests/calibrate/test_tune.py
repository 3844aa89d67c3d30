"""The closed tuning loop in simulation (calibrate.tune)."""

import importlib
import math

import numpy as np
import pytest

from atomlens.calibrate import SimulatedMicroscope, tune
from atomlens.calibrate.symmetry import COEFFICIENTS
from atomlens.calibrate.tune import magnitudes, rotate, tolerances
from atomlens.physics import Aberrations, AmorphousSpecimen, RonchigramSetup

SMALL = RonchigramSetup(energy=200e3, semiangle=30.0, angular_sampling=0.5, size=128)
#: The network needs the detector to reach past the disc (its training geometry): 192 px.
NETWORK_SIZE = RonchigramSetup(energy=200e3, semiangle=30.0, angular_sampling=0.5, size=192)
#: 40 Å of carbon in two 20 Å slices: the shadow shows the C10 of the mean slice depth, 10 Å,
#: which ``thickness=20`` refers back to the entrance surface.
SPECIMEN = AmorphousSpecimen(thickness=40.0, slice_thickness=20.0)
TRUTH = Aberrations(C10=-300.0, C12=80.0, phi12=0.4)
GAIN = np.array([1.02, 0.98, 1.01, 1.0, 1.0, 1.0, 1.0, 1.0])


def test_the_tolerance_is_a_phase_error_of_pi_over_4_at_the_aperture_edge():
    tolerance = tolerances(200e3, 30.0)
    assert tolerance["C10"] == pytest.approx(6.97, abs=0.01)  # [Å], about 0.7 nm
    assert tolerance["C12"] == tolerance["C10"]
    assert tolerance["C30"] == pytest.approx(1.55e4, rel=0.01)  # [Å], 1.55 µm
    lam, alpha = 0.025079, 0.03
    for name, n in (("C10", 1), ("C21", 2), ("C30", 3)):
        chi = 2 * math.pi / lam * tolerance[name] * alpha ** (n + 1) / (n + 1)
        assert chi == pytest.approx(math.pi / 4, rel=1e-3), name


def test_rotation_turns_every_term_by_its_order():
    start = Aberrations(C10=-50.0, C12=80.0, phi12=0.4, C21=300.0, phi21=1.0, C23=200.0)
    cartesian = start.to_cartesian()
    values = np.array([cartesian.get(k, 0.0) for k in COEFFICIENTS])
    turned = Aberrations.from_cartesian(dict(zip(COEFFICIENTS, rotate(values, 0.1), strict=True)))
    assert turned["C10"] == pytest.approx(-50.0)
    assert turned["phi12"] == pytest.approx(0.5)
    assert turned["phi21"] == pytest.approx(1.1)
    assert turned["phi23"] == pytest.approx(0.1)
    assert magnitudes(rotate(values, 0.1)) == pytest.approx(magnitudes(values))


def test_the_history_is_each_state_minus_the_correction_through_the_corrector():
    microscope = SimulatedMicroscope(TRUTH, setup=NETWORK_SIZE, specimen=SPECIMEN, gain=GAIN,
                                     rotation=0.02, specimen_seed=4, seed=2)  # fmt: skip
    start = microscope.aberrations.copy()
    result = tune(microscope, "network", max_iterations=2)
    assert 1 <= len(result.steps) <= 2
    np.testing.assert_allclose(result.steps[0].before, start)
    for step, following in zip(result.steps, [*result.steps[1:], None], strict=True):
        expected = -step.estimate.values * np.isin(np.arange(8), [0, 1, 2])  # C10, C12 only
        np.testing.assert_allclose(step.requested, expected)
        np.testing.assert_allclose(step.landed, rotate(GAIN * step.requested, 0.02))
        np.testing.assert_allclose(step.after, step.before + step.landed)
        assert len(step.images) == 3 and step.offsets == (0.0, -200.0, 200.0)
        if following is not None:
            np.testing.assert_allclose(following.before, step.after)
    np.testing.assert_allclose(microscope.aberrations, result.final)
    assert result.ronchigrams == 3 * len(result.steps) == microscope.recorded


def test_the_physics_loop_brings_a_known_state_within_tolerance():
    microscope = SimulatedMicroscope(TRUTH, setup=NETWORK_SIZE, specimen=SPECIMEN, gain=GAIN,
                                     rotation=0.01, specimen_seed=4, seed=2)  # fmt: skip
    result = tune(microscope, "physics", max_iterations=3, thickness=20.0)
    assert result.converged
    assert result.within_tolerance()
    assert len(result.steps) <= 3
    assert all(not step.note for step in result.steps)  # never refused
    assert len(result.steps[0].images) == 5  # far from focus: the triple and two shifts
    error = magnitudes(result.final)
    assert error["C10"] < result.tolerance["C10"] and error["C12"] < result.tolerance["C12"]


def test_the_loop_can_stop_without_the_last_correction(monkeypatch):
    loose = {name: 1e6 for name in ("C10", "C12", "C21", "C23", "C30")}  # [Å]: all within
    module = importlib.import_module("atomlens.calibrate.tune")  # the name is the function's
    monkeypatch.setattr(module, "tolerances", lambda *args: loose)
    microscope = SimulatedMicroscope(TRUTH, setup=NETWORK_SIZE, specimen=SPECIMEN)
    result = tune(microscope, "network", max_iterations=3, correct_within=False)
    assert len(result.steps) == 1 and result.converged
    np.testing.assert_array_equal(result.steps[0].requested, np.zeros(8))
    np.testing.assert_array_equal(microscope.aberrations, result.steps[0].before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_iterations": 0}, "at least 1"), ({"max_iterations": 1.5}, "integer"),
     ({"method": "magic"}, "method must be one of"), ({"terms": ("C99",)}, "terms")],
)  # fmt: skip
def test_bad_settings_are_refused_before_any_image_is_taken(kwargs, match):
    microscope = SimulatedMicroscope(TRUTH, setup=SMALL)
    with pytest.raises(ValueError, match=match):
        tune(microscope, **kwargs)
    assert microscope.recorded == 0


def test_the_microscope_images_one_specimen_area_and_checks_the_shifts():
    microscope = SimulatedMicroscope(TRUTH, setup=SMALL, detector=None)
    first, again = microscope.ronchigrams([0.0, 0.0])
    np.testing.assert_array_equal(first, again)  # the same area, no noise
    with pytest.raises(ValueError, match="one \\(dy, dx\\) pair"):
        microscope.ronchigrams([0.0, 0.0], [(1.0, 0.0)])
