"""Property-based tests over the parameters of every physics constructor and simulator.

Contract: a constructor either refuses with a ValueError that names one of the parameters it was
given, or accepts, and then every value lies in its documented range (docs/errors.md). A
simulator given an accepted set-up returns finite numbers of the promised shape.
"""

from __future__ import annotations

import re
import time

import numpy as np
from fuzz_strategies import HOSTILE_NUMBERS, numbers
from hypothesis import given
from hypothesis import strategies as st

from atomlens.core.validation import PARAMETERS
from atomlens.physics import dynamics, imaging, optics, potentials, structures

# constructor -> {keyword: entry of PARAMETERS}
CONSTRUCTORS = {
    imaging.RonchigramSetup: {
        "energy": "energy",
        "semiangle": "semiangle",
        "angular_sampling": "angular_sampling",
        "size": "size",
        "edge_width": "edge_width",
        "source_size": "source_size",
    },
    optics.Probe: {
        "energy": "energy",
        "semiangle": "semiangle",
        "edge_width": "edge_width",
        "source_size": "source_size",
    },
    imaging.HRTEMImaging: {
        "energy": "energy",
        "objective_aperture": "objective_aperture",
        "focal_spread": "focal_spread",
        "divergence": "divergence",
        "slice_thickness": "slice_thickness",
        "thermal_sigma": "thermal_sigma",
    },
    imaging.STEMImaging: {
        "energy": "energy",
        "semiangle": "semiangle",
        "source_size": "source_size",
        "atom_width": "atom_width",
    },
    potentials.AmorphousSpecimen: {
        "thickness": "thickness",
        "density": "density",
        "slice_thickness": "slice_thickness",
    },
    potentials.PhaseGrating: {"phase_std": "phase_std"},
}


def _some_parameters(constructor) -> st.SearchStrategy[dict]:
    """Any subset of the constructor's parameters, each hostile, at an edge or inside."""
    table = CONSTRUCTORS[constructor]
    return st.fixed_dictionaries({}, optional={n: numbers(kind) for n, kind in table.items()})


@given(data=st.data())
def test_constructors_accept_only_documented_ranges(data):
    constructor = data.draw(st.sampled_from(list(CONSTRUCTORS)))
    kwargs = data.draw(_some_parameters(constructor))
    if constructor is optics.Probe:
        kwargs.setdefault("energy", 200e3)
        kwargs.setdefault("semiangle", 20.0)
    try:
        constructor(**kwargs)
    except ValueError as err:
        names = "|".join(re.escape(n) for n in kwargs) or "$^"
        assert re.search(rf"\b({names})=\.\.\.", str(err)) or "detector reaches" in str(err), err
        return
    for name, value in kwargs.items():
        valid = PARAMETERS[CONSTRUCTORS[constructor][name]]
        assert valid.contains(value) or (name == "correlation_length" and value == 0), (name, value)


@given(
    coefficients=st.dictionaries(
        st.sampled_from(["C10", "C12", "phi12", "C21", "C23", "C30", "C56", "defocus", "Cs"]),
        st.one_of(numbers("aberration"), numbers("aberration_angle")),
        max_size=4,
    )
)
def test_aberrations_accept_finite_values_in_range_only(coefficients):
    try:
        aberrations = optics.Aberrations(coefficients)
    except ValueError as err:
        assert re.search(r"Aberration|=\.\.\.", str(err)), err
        return
    values = np.array(list(aberrations.to_abtem().values()), dtype=float)
    assert np.isfinite(values).all()


@given(
    energy=numbers("energy"),
    semiangle=numbers("semiangle"),
    angular_sampling=numbers("angular_sampling"),
    c10=st.one_of(st.sampled_from([0.0, -300.0, 1e4]), numbers("aberration")),
    dose=st.one_of(st.none(), numbers("dose_per_image")),
)
def test_ronchigram_simulation_is_finite_or_refused(energy, semiangle, angular_sampling, c10, dose):
    start = time.perf_counter()
    try:
        setup = imaging.RonchigramSetup(
            energy=energy, semiangle=semiangle, angular_sampling=angular_sampling, size=16
        )
        camera = None if dose is None else imaging_camera(dose)
        images = imaging.simulate_ronchigrams(
            setup,
            [optics.Aberrations(C10=c10)],
            potentials.AmorphousSpecimen(thickness=20.0),
            detector=camera,
            oversampling=1,
        )
    except ValueError:
        return
    finally:
        assert time.perf_counter() - start < 30
    assert images.shape == (1, 16, 16) and images.dtype == np.float32
    assert np.isfinite(images).all() and (images >= 0).all()


def imaging_camera(dose: float):
    from atomlens.physics import detectors

    return detectors.ronchigram_camera(dose)


@given(
    pixel_size=numbers("pixel_size", cheap=0.5),
    thickness=numbers("thickness", cheap=40.0),
    rotation=st.one_of(numbers("rotation"), st.just("random")),
    dose=st.one_of(st.none(), numbers("dose_per_pixel")),
    mode=st.sampled_from(["HAADF", "ABF", "BF", "hrtem"]),
)
def test_image_simulation_is_finite_or_refused(pixel_size, thickness, rotation, dose, mode):
    start = time.perf_counter()
    try:
        atoms = structures.field(
            "SrTiO3", (24, 24), pixel_size, thickness=thickness, rotation=rotation, rng=0
        )
        optics_ = imaging.HRTEMImaging() if mode == "hrtem" else imaging.STEMImaging(mode=mode)
        result = imaging.simulate_image(
            atoms, pixel_size, optics_, dose_per_pixel=dose, rng=np.random.default_rng(0)
        )
    except ValueError:
        return
    finally:
        assert time.perf_counter() - start < 30
    assert result.image.shape == (24, 24)
    assert np.isfinite(result.image).all() and np.isfinite(result.clean).all()


@given(
    frames=st.one_of(
        st.integers(-3, 20), st.integers(10**5 + 1, 10**12), st.sampled_from(HOSTILE_NUMBERS)
    ),
    drift=numbers("drift"),
    hop_rate=st.floats(-1, 2),
)
def test_series_are_bounded_or_refused(frames, drift, hop_rate):
    field = structures.field("Si", (16, 16), 0.25, rng=0)
    start = time.perf_counter()
    try:
        model = dynamics.DynamicsModel(drift=(drift, 0.0), hop_rate=hop_rate)
        series = dynamics.simulate_series(field, frames, model, 0)
    except ValueError:
        return
    finally:
        assert time.perf_counter() - start < 30
    assert series.frames == frames
    assert np.isfinite(series.tracks[["y_A", "x_A"]].to_numpy()).all()
