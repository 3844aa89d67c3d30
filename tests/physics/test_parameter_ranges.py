"""Every physical parameter is checked against its documented range at the library boundary.

The cases are those of the hardening probe (issue 9): values that used to give NaN or all-zero
images, overflow, ZeroDivisionError, MemoryError or hours of work now raise a ValueError that names
the keyword argument, the unit and the valid range, before any work is done.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from atomlens.core.validation import (
    MAX_ATOMS,
    PARAMETERS,
    InputError,
    ParameterError,
    SizeLimitError,
    check_image,
    check_parameter,
    check_size,
)
from atomlens.physics import dynamics, imaging, optics, potentials, structures


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_range_refuses_nan_inf_and_values_beyond_it(name):
    valid = PARAMETERS[name]
    assert check_parameter(name, valid.high) == valid.high
    for bad in (math.nan, math.inf, -math.inf, valid.high * 10 + 1, valid.low - abs(valid.low) - 1):
        with pytest.raises(ParameterError, match=rf"{name}=\.\.\."):
            check_parameter(name, bad)
    if valid.low_open:
        with pytest.raises(ParameterError, match=r"must lie in \("):
            check_parameter(name, valid.low)
    for bad in ("1", None, [1.0], True):
        with pytest.raises(ParameterError, match="must be a"):
            check_parameter(name, bad)


def test_messages_carry_the_unit_and_the_range():
    with pytest.raises(ParameterError) as info:
        check_parameter("semiangle", 1e4)
    assert str(info.value) == (
        "semiangle=... (convergence semi-angle) must lie in (0, 500] mrad, got 10000 mrad."
    )
    with pytest.raises(ParameterError, match="whole number"):
        check_parameter("frames", 2.5)
    assert check_parameter("frames", 3.0) == 3 and isinstance(check_parameter("frames", 3.0), int)


def test_size_limit_is_checked_before_allocating(monkeypatch):
    with pytest.raises(SizeLimitError, match=r"37.3 GiB .*ATOMLENS_MAX_ARRAY_GB"):
        check_size("the image", (100_000, 100_000))
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", "0.001")
    with pytest.raises(SizeLimitError, match=r"0\.00391 GiB .* limit of 0\.001 GiB"):
        check_size("the image", (1024, 1024))
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", "lots")
    with pytest.raises(ValueError, match="ATOMLENS_MAX_ARRAY_GB must be a number"):
        check_size("the image", (8, 8))


def test_check_image_refuses_what_is_not_a_real_finite_image():
    with pytest.raises(InputError, match="complex"):
        check_image("x.tif", np.ones((8, 8), np.complex64))
    with pytest.raises(InputError, match=r"2-D array, got shape \(8,\)"):
        check_image("x.tif", np.ones(8))
    with pytest.raises(InputError, match="8 NaN or infinite"):
        check_image("x.tif", np.where(np.eye(8) > 0, np.nan, 1.0)[:1, :1].repeat(8, 0))
    with pytest.raises(InputError, match="negative values"):
        check_image("x.tif", -np.ones((8, 8)), non_negative=True)
    with pytest.raises(InputError, match="dtype <U1"):
        check_image("x.tif", np.array([["a"]]))
    source = np.arange(64, dtype=np.int16).reshape(8, 8)
    out = check_image("x.tif", source)
    assert out.dtype == np.float32 and source.dtype == np.int16  # the input is never modified


@pytest.mark.parametrize(
    ("build", "flag"),
    [
        (lambda: imaging.RonchigramSetup(angular_sampling=1e300), "angular_sampling"),
        (lambda: imaging.RonchigramSetup(angular_sampling=math.inf), "angular_sampling"),
        (lambda: imaging.RonchigramSetup(angular_sampling=1e-7), "angular_sampling"),
        (lambda: imaging.RonchigramSetup(semiangle=math.inf), "semiangle"),
        (lambda: imaging.RonchigramSetup(energy=1e300), "energy"),
        (lambda: imaging.RonchigramSetup(size=100_000), "size"),
        (lambda: imaging.RonchigramSetup(edge_width=math.nan), "edge_width"),
        (lambda: imaging.HRTEMImaging(focal_spread=math.nan), "focal_spread"),
        (lambda: imaging.HRTEMImaging(focal_spread=math.inf), "focal_spread"),
        (lambda: imaging.HRTEMImaging(objective_aperture=math.nan), "objective_aperture"),
        (lambda: imaging.STEMImaging(semiangle=math.inf), "semiangle"),
        (lambda: optics.Probe(200e3, 20.0, tilt=(1e9, 0.0)), "tilt"),
        (lambda: optics.Aberrations(C10=1e300), "C10"),
        (lambda: potentials.AmorphousSpecimen(thickness=1e9), "thickness"),
        (lambda: structures.field("Si", (64, 64), 1e-300), "pixel_size"),
        (lambda: structures.field("Si", (64, 64), 0.2, thickness=1e9), "thickness"),
        (lambda: dynamics.DynamicsModel(drift=(1e9, 0.0)), "drift"),
    ],
)
def test_probe_cases_are_refused_at_the_library_boundary(build, flag):
    with pytest.raises(ValueError, match=rf"{flag}=\.\.\."):
        build()


def test_a_field_of_view_that_would_hold_too_many_atoms_is_refused_before_building():
    # 1e-3 mrad/px over 64 px is a 2.5 um field: 6e9 atoms of carbon (it used to fill 24 GB).
    setup = imaging.RonchigramSetup(angular_sampling=1e-3, size=64)
    with pytest.raises(SizeLimitError, match=re.escape(f"more than the {MAX_ATOMS:.0e}")):
        imaging.simulate_ronchigrams(setup, [optics.Aberrations()])
    with pytest.raises(SizeLimitError, match=r"angular_sampling=\.\.\."):
        imaging.simulate_ronchigrams(setup, [optics.Aberrations()])
    with pytest.raises(SizeLimitError, match=r"pixel_size=\.\.\."):
        structures.field("Si", (64, 64), 50.0, thickness=5000.0)


def test_a_stack_beyond_the_memory_limit_is_refused_before_work(monkeypatch):
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", "0.01")
    setup = imaging.RonchigramSetup(size=512)
    with pytest.raises(SizeLimitError, match="the Ronchigrams"):
        imaging.simulate_ronchigrams(setup, [optics.Aberrations()] * 100)


def test_a_detector_beyond_the_paraxial_range_is_refused():
    with pytest.raises(ValueError, match="reaches 3200 mrad"):
        imaging.RonchigramSetup(angular_sampling=50, size=128)


def test_too_many_frames_are_refused_before_moving_atoms():
    field = structures.field("Si", (32, 32), 0.2)
    with pytest.raises(ParameterError, match=r"frames=\.\.\. .* \[1, 100000\]"):
        dynamics.simulate_series(field, 100_000_000, dynamics.DynamicsModel(), 0)


def test_values_inside_the_ranges_still_simulate():
    setup = imaging.RonchigramSetup(size=32, angular_sampling=2.0, semiangle=20)
    image = imaging.simulate_ronchigrams(setup, [optics.Aberrations(C10=100)])
    assert image.shape == (1, 32, 32) and np.isfinite(image).all() and image.sum() > 0.5


def test_devices_are_checked_before_work():
    from atomlens.core.validation import check_device

    assert check_device(None) is None and check_device("cpu") == "cpu"
    assert check_device("auto") in ("cpu", "cuda")
    for bad in ("bogus", "gpu0", 3):
        with pytest.raises(ParameterError, match=r"device=\.\.\. must be 'cpu'"):
            check_device(bad)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA GPU"):
            check_device("cuda:0")
    setup = imaging.RonchigramSetup(size=16)
    with pytest.raises(ParameterError, match="device="):
        imaging.simulate_ronchigrams(setup, [optics.Aberrations()], device="bogus")
