import numpy as np
import pytest

from atomlens.calibrate import (
    CANONICAL_EXTENT,
    canonical_grid,
    find_bright_field_disc,
    ronchigram_input,
)
from atomlens.io import MissingCalibrationError, write_tiff
from atomlens.physics import Aberrations, PhaseGrating, RonchigramSetup, simulate_ronchigram


def _disc(angular_sampling, tilt=(0.0, 0.0), size=128, semiangle=20.0):
    setup = RonchigramSetup(
        semiangle=semiangle, angular_sampling=angular_sampling, size=size, edge_width=0.0
    )
    return simulate_ronchigram(setup, Aberrations(), PhaseGrating(0.0), tilt=tilt)


@pytest.mark.parametrize("tilt", [(0.0, 0.0), (3.0, -4.5)])
def test_disc_detection_finds_centre_and_radius(tilt):
    image = _disc(0.4, tilt)
    cy, cx, radius = find_bright_field_disc(image)
    assert radius * 0.4 == pytest.approx(20.0, rel=0.03)  # [mrad]
    assert ((cy - 64) * 0.4, (cx - 64) * 0.4) == pytest.approx(tilt, abs=0.3)


def test_canonical_grid_does_not_depend_on_detector_sampling_or_tilt():
    grids = []
    for sampling, tilt in ((0.3, (0.0, 0.0)), (0.5, (2.0, 3.0))):
        data = ronchigram_input(
            _disc(sampling, tilt, size=160), energy=200e3, semiangle=20.0, angular_sampling=sampling
        )
        grids.append(canonical_grid(data, size=64))
    # the disc of radius one semi-angle fills the same pixels on the canonical grid
    offsets = (np.arange(64) - 32 + 0.5) * 2 * CANONICAL_EXTENT / 64
    radius = np.hypot(*np.meshgrid(offsets, offsets, indexing="ij"))
    for grid in grids:
        assert grid[radius < 0.85].mean() == pytest.approx(1.0, rel=0.02)
        assert grid[radius > 1.15].max() < 0.05
    assert np.abs(grids[0] - grids[1])[(radius < 0.85) | (radius > 1.15)].max() < 0.1


def test_calibration_comes_from_the_file_and_flags_override(tmp_path):
    path = tmp_path / "r.tif"
    write_tiff(path, _disc(0.5), angular_sampling=0.5, metadata={"energy_eV": 300e3})
    data = ronchigram_input(path, semiangle=20.0)
    assert (data.energy, data.angular_sampling, data.semiangle) == (300e3, 0.5, 20.0)
    assert ronchigram_input(path, semiangle=20.0, energy=200e3).energy == 200e3


def test_missing_calibration_names_every_missing_value(tmp_path):
    path = tmp_path / "bare.tif"
    write_tiff(path, _disc(0.5))
    with pytest.raises(MissingCalibrationError, match=r"energy.*semi-angle.*angular sampling"):
        ronchigram_input(path)
    with pytest.raises(MissingCalibrationError, match="semiangle="):
        ronchigram_input(np.ones((32, 32)), energy=200e3, angular_sampling=0.5)


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (np.ones((8, 8)), {}, "at least 16"),
        (np.full((32, 32), np.nan), {}, "NaN"),
        (np.ones((32, 32)), {"semiangle": -1.0}, "semiangle"),
        (np.ones((32, 32)), {"energy": 0.0}, "energy"),
    ],
)
def test_bad_ronchigrams(image, kwargs, message):
    arguments = {"energy": 200e3, "semiangle": 20.0, "angular_sampling": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        ronchigram_input(image, **arguments)


def test_flat_image_has_no_disc():
    with pytest.raises(ValueError, match="flat"):
        find_bright_field_disc(np.ones((32, 32)))
