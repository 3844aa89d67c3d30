"""What calibrate refuses (docs/calibrate.md, "What calibrate refuses"), and what it must not.

Each refusal is checked at the library boundary (``estimate``) and, where the command adds
something (file reading, flag names, offsets in nm), through ``atomlens calibrate``.
"""

import json
import time
import warnings

import numpy as np
import pytest
import tifffile

from atomlens.calibrate import RonchigramInput, canonical_grid, estimate, load_estimator
from atomlens.calibrate.checks import (
    DISC_ERROR,
    EDGE_CONTRAST_LIMIT,
    NOISE_Q,
    check_counts,
    check_disc,
    check_reach,
    measure_disc,
    noise_statistic,
)
from atomlens.cli import main
from atomlens.core.validation import InputError, ParameterError
from atomlens.io import sidecar_path, write_ronchigram_sidecar, write_tiff
from atomlens.physics import (
    Aberrations,
    AmorphousSpecimen,
    RonchigramSetup,
    ronchigram_camera,
    simulate_ronchigram,
)

CAL = {"energy": 200e3, "semiangle": 30.0, "angular_sampling": 0.5}
FLAGS = ["--energy", "200e3", "--semiangle", "30", "--angular-sampling", "0.5"]
SPECIMEN = AmorphousSpecimen(thickness=60.0, slice_thickness=30.0)


def _ronchigram(semiangle=30.0, sampling=0.5, size=160, tilt=(0.0, 0.0), dose=1e6, seed=3,
                aberrations=None, **camera):  # fmt: skip
    """A simulated Ronchigram in counts (amorphous carbon, Poisson noise)."""
    setup = RonchigramSetup(semiangle=semiangle, angular_sampling=sampling, size=size)
    aberrations = aberrations or Aberrations(C10=-250.0, C12=60.0, phi12=0.4, C30=1e4)
    detector = ronchigram_camera(dose, **camera)
    return simulate_ronchigram(setup, aberrations, SPECIMEN, tilt=tilt, seed=seed,
                               detector=detector, oversampling=3)  # fmt: skip


@pytest.fixture(scope="module")
def image():
    """30 mrad at 0.5 mrad/px on 160 px: the detector reaches 1.33 semi-angles."""
    return _ronchigram()


def _checks(image, semiangle=30.0, sampling=0.5):
    """The refusals and notes of estimate that do not need the network."""
    item = RonchigramInput(image, 200e3, semiangle, sampling)
    check_counts(item.image, item.source)
    return check_reach(item) + check_disc(item)


# 1. counts, shape, dtype, values


def test_negative_counts_are_refused(tmp_path, capsys):
    path = tmp_path / "neg.tif"
    counts = np.random.default_rng(0).integers(1000, 30000, (64, 64))
    tifffile.imwrite(path, -counts.astype(np.int16))
    with pytest.raises(InputError, match=r"mean of .* <= 0"):
        estimate(path, **CAL)
    assert main(["calibrate", str(path), *FLAGS]) == 2
    assert "neg.tif has a mean of" in capsys.readouterr().err


def test_an_inverted_ronchigram_is_refused(image):
    with pytest.raises(InputError, match="inverted"):
        estimate(-image, **CAL)


def test_wrapped_around_pixels_are_refused(image):
    broken = image.copy()
    broken[5, 5] = -3 * image.max()  # an integer overflow, not dark-subtraction noise
    with pytest.raises(InputError, match=r"more than 2 x its maximum .* below zero"):
        estimate(broken, **CAL)


def test_dark_subtracted_noise_is_accepted():
    # 1e5 electrons (the lowest dose trained), 3 counts of read-out noise, the offset subtracted:
    # many pixels are negative, down to about a third of the image's range.
    noisy = _ronchigram(dose=1e5, readout_noise=3.0, dark_offset=5.0) - 5.0
    assert noisy.min() < 0
    result = estimate(noisy, **CAL)
    assert np.isfinite(result.values).all() and (result.sigma > 0).all()


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones(256), "2-D"),
        (np.ones((64, 64)) + 1j, "complex"),
        (np.full((64, 64), np.inf), "NaN or infinite"),
        (np.where(np.eye(64) > 0, np.nan, 1.0), "64 NaN or infinite"),
        (np.ones((8, 64)), "at least 16 px"),
        (np.ones((64, 64)), "flat"),
    ],
)
def test_what_is_not_one_real_image_is_refused(array, message):
    with pytest.raises(InputError, match=message):
        estimate(array, **CAL)


def test_a_stack_given_as_one_image_is_refused(image, tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.stack([image, image, image]), photometric="minisblack")
    with pytest.raises(InputError, match="stack of 3 images"):
        estimate(path, **CAL)


# 2. the bright-field disc against the stated calibration


def _lattice(size=256, period=12.0, width=1.5):
    """A HAADF-like lattice image: Gaussian columns on a square grid, no bright-field disc."""
    y, x = np.mgrid[:size, :size] % period - period / 2
    return (np.exp(-(x**2 + y**2) / (2 * width**2)) * 200 + 20).astype(np.float32)


def test_a_lattice_image_is_refused():
    with pytest.raises(InputError, match="no bright-field disc of the stated 30 mrad") as error:
        estimate(_lattice(), **CAL)
    assert "angular_sampling=" in str(error.value)  # what to check, in library terms


def test_the_si110_haadf_image_is_refused(real_data, capsys):
    path = real_data / "Si110_HAADF.png"
    with pytest.raises(InputError, match="no bright-field disc"):
        estimate(path, **CAL)
    assert main(["calibrate", str(path), *FLAGS]) == 2
    err = capsys.readouterr().err
    assert "--angular-sampling" in err and "mrad in radius" in err


@pytest.mark.parametrize("stated", [0.7, 0.35])
def test_a_disc_that_contradicts_the_angular_sampling_is_refused(image, stated):
    # the disc measures 30 mrad at 0.5 mrad/px: 42 or 21 mrad at the stated sampling
    with pytest.raises(InputError, match=r"measures \d+(\.\d)? mrad in radius, not the stated 30"):
        _checks(image, sampling=stated)


def test_a_disc_moderately_off_gives_a_note(image):
    notes = _checks(image, sampling=0.6)  # 20 % off: between the note and the error
    assert any("bright-field disc measures" in note for note in notes)


def test_a_small_bright_blob_is_not_a_disc_of_the_stated_size():
    y, x = np.mgrid[:160, :160] - 80
    blob = (np.hypot(y, x) < 20).astype(np.float32) * 100 + 1  # 10 mrad, stated 30 mrad
    with pytest.raises(InputError, match="measures 10 mrad"):
        _checks(blob)


@pytest.mark.parametrize(
    ("semiangle", "sampling", "size"),
    [(30.0, 0.5, 160), (30.0, 0.8, 100), (27.0, 0.4, 192), (33.0, 0.6, 144), (20.0, 0.3, 192)],
)
def test_genuine_ronchigrams_at_several_calibrations_pass(semiangle, sampling, size):
    image = _ronchigram(semiangle, sampling, size, tilt=(1.0, -0.5), dose=1e5)
    assert not [note for note in _checks(image, semiangle, sampling) if "disc" in note]
    disc = measure_disc(image, semiangle / sampling)
    assert disc.radius * sampling == pytest.approx(semiangle, rel=0.06)
    assert disc.edge_contrast < EDGE_CONTRAST_LIMIT / 4


def test_a_disc_cut_by_the_detector_edge_is_measured_where_its_edge_shows():
    # tilted by a fifth of the semi-angle and cropped to 1.0 semi-angles: 69 % of the edge shows
    tilted = _ronchigram(tilt=(6.0, 0.0))
    cut = tilted[20:140, 20:140]
    assert not any("measures" in note for note in _checks(cut))
    assert abs(measure_disc(cut, 60.0).radius / 60.0 - 1) < DISC_ERROR
    # cropped to 0.9 semi-angles, half of the edge shows: not a clear circle, nothing checkable
    with pytest.raises(InputError, match="can be checked"):
        _checks(tilted[26:134, 26:134])


def test_a_detector_inside_the_disc_is_refused(image, capsys, tmp_path):
    # reaching 0.53 semi-angles (like `atomlens simulate ronchigram --size 64`): no disc edge on
    # the detector, so neither the calibration nor the image could be checked
    with pytest.raises(InputError, match=r"would cover 100% of the detector .* can be checked"):
        estimate(image[48:112, 48:112], **CAL)
    path = tmp_path / "small.tif"
    write_tiff(path, image[48:112, 48:112])
    assert main(["calibrate", str(path), *FLAGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "check --angular-sampling and --semiangle against" in err


@pytest.mark.parametrize("size", [48, 64, 96])
def test_noise_and_lattices_filling_the_stated_disc_are_refused(size):
    # accepted with a note before (the stated 60 px disc covered the whole detector)
    rng = np.random.default_rng(size)
    y, x = np.mgrid[:size, :size]
    for array in (
        rng.random((size, size)),
        rng.poisson(5, (size, size)),
        2 + np.sin(x * 0.7) + np.sin(y * 0.7),
        2 + np.cos(x * 2 * np.pi / 9) * np.cos(y * 2 * np.pi / 9),
    ):
        with pytest.raises(InputError, match=r"white noise|can be checked|no bright-field disc"):
            estimate(array, **CAL)


def test_a_lattice_on_a_strip_detector_is_refused():
    # 40 x 122 px: the ring just outside the stated disc is off the detector, so the edge
    # contrast could not be measured and the lattice passed before
    y, x = np.mgrid[:40, :122]
    lattice = 2 + np.cos(x * 2 * np.pi / 7) + np.cos(y * 2 * np.pi / 5)
    with pytest.raises(InputError, match="under a quarter of the ring"):
        estimate(lattice, **(CAL | {"angular_sampling": 0.6}))  # reaching 0.4 semi-angles


def test_white_noise_is_refused_whatever_its_distribution():
    rng = np.random.default_rng(0)
    for noise in (
        rng.random((200, 200)),
        rng.poisson(0.05, (160, 160)),
        rng.exponential(1.0, (160, 160)),
        np.abs(rng.standard_cauchy((160, 160))),
        rng.random((160, 160)) < 0.01,
    ):
        assert noise_statistic(noise) < NOISE_Q
        with pytest.raises(InputError, match=r"no structure beyond white noise|no bright-field"):
            estimate(noise, **CAL)


def test_a_ronchigram_is_far_from_white_noise(image):
    assert noise_statistic(image) > 100 * NOISE_Q
    low_dose = _ronchigram(dose=1e4)  # ten times below the lowest trained dose
    assert noise_statistic(low_dose) > 5 * NOISE_Q


def test_values_beyond_float32_are_refused_without_a_warning(image, tmp_path, capsys):
    huge = image.astype(np.float64) * 1e38
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="beyond the float32 range"):
            estimate(huge, **CAL)
    path = tmp_path / "huge.npy"
    np.save(path, huge)
    assert main(["calibrate", str(path), *FLAGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "huge.npy holds values up to" in err


# 3. the calibration at the library boundary, and bounded time


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("angular_sampling", 1e300),
        ("angular_sampling", 1e-7),
        ("angular_sampling", float("nan")),
        ("semiangle", float("inf")),
        ("semiangle", 0.0),
        ("energy", 1e300),
    ],
)
def test_calibration_outside_the_valid_range_is_refused(image, keyword, value):
    with pytest.raises(ParameterError, match=f"{keyword}="):
        estimate(image, **(CAL | {keyword: value}))
    with pytest.raises(ParameterError, match=f"{keyword}="):
        RonchigramInput(image, **(CAL | {keyword: value}))


def test_the_command_names_the_flag(image, tmp_path, capsys):
    path = tmp_path / "r.tif"
    write_tiff(path, image)
    assert main(["calibrate", str(path), *FLAGS[:4], "--angular-sampling", "1e300"]) == 2
    assert "--angular-sampling (detector pixel size" in capsys.readouterr().err


def test_a_detector_covering_too_little_is_refused_before_the_work(image):
    load_estimator()
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"reaches only 0.00267 semi-angles"):
        estimate(image, **(CAL | {"angular_sampling": 1e-3}))
    assert time.perf_counter() - start < 2.0


def test_small_angular_sampling_is_resampled_in_bounded_time():
    # 1024 px at 0.025 mrad/px: 28 detector pixels per canonical pixel; binned before filtering
    y, x = np.mgrid[:1024, :1024] - 512
    disc = (np.hypot(y, x) < 30 / 0.025).astype(np.float32) + 0.01  # fills the detector
    item = RonchigramInput(disc, 200e3, 30.0, 0.025)  # reaching 0.43 semi-angles
    start = time.perf_counter()
    grid = canonical_grid(item, centre="axis")
    assert time.perf_counter() - start < 2.0
    # the detector's edge, 0.43 semi-angles out, lies 16.4 canonical pixels from the centre
    assert grid[48, 48 + 14] == pytest.approx(grid[48, 48], rel=0.05) and grid[48, 48] > 0
    assert grid[48, 48 + 19] == 0.0 and grid[48 - 19, 48] == 0.0


def test_large_images_are_checked_in_bounded_time():
    y, x = np.mgrid[:3000, :3000] - 1500
    disc = (np.hypot(y, x) < 1000).astype(np.float32) * 50 + 1
    start = time.perf_counter()
    measured = measure_disc(disc, 1000.0)
    assert time.perf_counter() - start < 2.0
    assert measured.radius == pytest.approx(1000.0, rel=0.02)


# 4. the same data twice


def test_the_same_image_twice_is_refused(image):
    with pytest.raises(InputError, match=r"Ronchigrams 1 \(array\) and 2 \(array\) hold identical"):
        estimate([image, image.copy()], offsets=[0.0, 0.0], **CAL)


def test_the_same_file_twice_is_refused_by_the_command(image, tmp_path, capsys):
    path = tmp_path / "r.tif"
    write_tiff(path, image)
    assert main(["calibrate", str(path), str(path), "--offsets", "0,0", *FLAGS]) == 2
    assert f"1 ({path}) and 2 ({path}) hold identical pixel data" in capsys.readouterr().err


# 5. no NaN in the output, no input overwritten


def test_offsets_must_be_finite(image, capsys, tmp_path):
    other = _ronchigram(seed=4)
    with pytest.raises(ParameterError, match="offsets="):
        estimate([image, other], offsets=[0.0, float("nan")], **CAL)
    with pytest.raises(ParameterError, match=r"offsets=.* \[-1e\+08, 1e\+08\] Å, got 1e\+09"):
        estimate([image, other], offsets=[0.0, 1e9], **CAL)
    result = estimate([image, other], offsets=[0.0, 1e8], **CAL)  # far apart, still finite
    assert np.isfinite(result.values).all() and np.isfinite(result.sigma).all()
    path = tmp_path / "r.tif"
    write_tiff(path, image)
    assert main(["calibrate", str(path), str(path), "--offsets", "0,nan", *FLAGS]) == 2
    assert "--offsets must be finite numbers within [-1e+07, 1e+07] nm" in capsys.readouterr().err


def test_the_command_takes_offsets_in_the_range_the_library_takes(image, capsys, tmp_path):
    # the command took offsets up to 1e8 nm (1e9 Å), which the library then refused in Å
    first, second = tmp_path / "a.tif", tmp_path / "b.tif"
    write_tiff(first, image)
    write_tiff(second, _ronchigram(seed=4))
    files = [str(first), str(second), *FLAGS]
    assert main(["calibrate", *files, "--offsets", "0,1e8"]) == 2
    assert "[-1e+07, 1e+07] nm, got '0,1e8'" in capsys.readouterr().err
    assert main(["calibrate", *files, "--offsets", "0,1e7", "--json"]) == 0
    assert np.isfinite(json.loads(capsys.readouterr().out)["C10"])


def test_the_output_may_not_be_an_input(image, tmp_path, capsys):
    path = tmp_path / "r.tif"
    write_tiff(path, image)
    assert main(["calibrate", str(path), "-o", str(path), "--overwrite", *FLAGS]) == 2
    assert "would replace the input" in capsys.readouterr().err


# 6. a broken sidecar beside the image is reported, not dropped


def _with_sidecar(image, tmp_path, **changes):
    """A TIFF and its version-2 sidecar, with ``changes`` written over the sidecar's fields."""
    path = tmp_path / "r.tif"
    write_tiff(path, image)
    setup = {"energy_eV": 200e3, "semiangle_mrad": 30.0, "angular_sampling_mrad_per_px": 0.5}
    write_ronchigram_sidecar(sidecar_path(path), setup=setup, aberrations={"C10": -250.0})
    record = json.loads(sidecar_path(path).read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        record[section][field] = value
    sidecar_path(path).write_text(json.dumps(record))
    return path


def test_a_broken_sidecar_is_an_error_naming_it_and_the_field(image, tmp_path, capsys):
    path = _with_sidecar(image, tmp_path, setup__energy_eV=-5.0)
    assert main(["calibrate", str(path), "--semiangle", "30", "--angular-sampling", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("atomlens calibrate: error: ")
    assert f"{sidecar_path(path)}: setup.energy_eV" in err
    assert "fix or remove it, or give --energy, --semiangle and --angular-sampling" in err


@pytest.mark.filterwarnings("always::UserWarning")  # printed by the command, as a user sees it
def test_the_flags_override_a_broken_sidecar_with_a_warning(image, tmp_path, capsys):
    path = _with_sidecar(image, tmp_path, aberrations_A_rad__C10="a lot")
    assert main(["calibrate", str(path), *FLAGS, "--json"]) == 0
    captured = capsys.readouterr()
    assert np.isfinite(json.loads(captured.out)["C10"])
    assert captured.err.startswith("atomlens: warning: ") and "aberrations_A_rad" in captured.err
    assert "left out" in captured.err
    # the truth is what the sidecar holds: asking for it needs the sidecar
    assert main(["calibrate", str(path), *FLAGS, "--truth"]) == 2
    assert "aberrations_A_rad" in capsys.readouterr().err


@pytest.mark.filterwarnings("always::UserWarning")
def test_a_sidecar_that_is_not_json_is_reported(image, tmp_path, capsys):
    path = _with_sidecar(image, tmp_path)
    sidecar_path(path).write_text('{"schema": "atomlens.ronchigram-sidecar", "vers')  # cut off
    assert main(["calibrate", str(path), "--semiangle", "30"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot read {sidecar_path(path)} as JSON" in err
    assert main(["calibrate", str(path), *FLAGS]) == 0
    assert "left out" in capsys.readouterr().err
