"""STEM and HRTEM image formation: agreement with abTEM and basic physics."""

import numpy as np
import pytest

from atomlens.physics.imaging.hrtem import HRTEMImaging, exit_wave, hrtem_image
from atomlens.physics.imaging.stem import STEMImaging, stem_image

A_STO = 3.905  # SrTiO3 lattice constant [Å]


def _srtio3(repeats):
    ase = pytest.importorskip("ase")
    cell = ase.Atoms(
        "SrTiOOO",
        scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)],
        cell=[A_STO] * 3,
        pbc=True,
    )
    return cell.repeat(repeats)


@pytest.fixture(scope="module")
def abtem_haadf():
    """abTEM frozen-phonon HAADF of SrTiO3 [001], one unit cell scanned, 16 x 16 positions."""
    abtem = pytest.importorskip("abtem")
    atoms = _srtio3((3, 3, 5))
    phonons = abtem.FrozenPhonons(atoms, num_configs=4, sigmas=0.08, seed=1)
    potential = abtem.Potential(phonons, sampling=0.06, slice_thickness=A_STO / 2)
    scan = abtem.GridScan(
        start=(A_STO, A_STO), end=(2 * A_STO, 2 * A_STO), sampling=A_STO / 16, endpoint=False
    )
    probe = abtem.Probe(energy=200e3, semiangle_cutoff=25)
    detector = abtem.AnnularDetector(inner=70, outer=200)
    image = probe.scan(potential, scan=scan, detectors=detector).compute(progress_bar=False)
    return image.array.T  # abTEM indexes (x, y)


def test_haadf_agrees_with_abtem(abtem_haadf):
    atoms = _srtio3((1, 1, 5))
    imaging = STEMImaging(energy=200e3, semiangle=25.0, source_size=0.0)
    ours = stem_image(atoms.positions[:, [1, 0]], atoms.numbers, (16, 16), A_STO / 16, imaging)
    theirs = abtem_haadf
    # the brightest pixel is the Sr column in both, then Ti-O, then O
    assert np.unravel_index(theirs.argmax(), theirs.shape) == (0, 0)
    assert np.unravel_index(ours.argmax(), ours.shape) == (0, 0)
    for image in (ours, theirs):
        assert image[0, 0] > image[8, 8] > image[0, 8]
    # relative column intensities: Ti-O / Sr within 5 %, O / Sr within 0.02 of the Sr peak
    assert ours[8, 8] / ours[0, 0] == pytest.approx(theirs[8, 8] / theirs[0, 0], rel=0.05)
    assert ours[0, 8] / ours[0, 0] == pytest.approx(theirs[0, 8] / theirs[0, 0], abs=0.02)
    # and the whole unit cell, normalised to the Sr peak
    rms = np.sqrt(np.mean((ours / ours[0, 0] - theirs / theirs[0, 0]) ** 2))
    assert rms < 0.03


def test_hrtem_agrees_with_abtem():
    abtem = pytest.importorskip("abtem")
    atoms = _srtio3((4, 4, 3))
    atoms.positions[:, 2] += A_STO / 4
    n, extent = 128, 4 * A_STO
    aberrations = {"C10": 50.0, "C30": -1e5}
    # abTEM's potentials are smoothed by about exp(-0.032 k^2); a 0.04 Å thermal smearing matches.
    imaging = HRTEMImaging(
        energy=300e3,
        aberrations=aberrations,
        objective_aperture=None,
        focal_spread=0.0,
        divergence=0.0,
        slice_thickness=A_STO / 2,
        thermal_sigma=0.04,
    )
    ours = hrtem_image(atoms.positions[:, [1, 0, 2]], atoms.numbers, (n, n), extent / n, imaging)
    with abtem.config.set({"antialias.cutoff": 1.0, "antialias.taper": 0.0}):
        potential = abtem.Potential(atoms, gpts=(n, n), slice_thickness=A_STO / 2)
        wave = abtem.PlaneWave(energy=300e3).multislice(potential)
        theirs = wave.apply_ctf(abtem.CTF(energy=300e3, **aberrations)).intensity().compute()
    theirs = theirs.array.T
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 0.05


def test_haadf_intensity_scales_as_z_to_gamma():
    imaging = STEMImaging(source_size=0.0)
    image = stem_image([[6.4, 3.2], [6.4, 9.6]], [14, 79], (64, 64), 0.2, imaging)
    silicon, gold = image[32, 16], image[32, 48]
    assert gold / silicon == pytest.approx((79 / 14) ** imaging.z_exponent, rel=0.01)


def test_abf_shows_dips_at_atoms_and_one_in_vacuum():
    imaging = STEMImaging(mode="ABF", contrast=0.3)
    image = stem_image([[3.2, 3.2]], [8], (64, 64), 0.1, imaging)
    assert image.min() == pytest.approx(0.7, abs=1e-5)
    assert np.unravel_index(image.argmin(), image.shape) == (32, 32)
    assert image[0, 0] == pytest.approx(1.0, abs=1e-3)


def test_hrtem_of_vacuum_is_uniform_and_exit_wave_is_unitary():
    imaging = HRTEMImaging()
    assert np.allclose(hrtem_image(np.zeros((0, 3)), [], (32, 32), 0.1, imaging), 1.0, atol=1e-6)
    atoms = _srtio3((2, 2, 2))
    wave = exit_wave(
        atoms.positions[:, [1, 0, 2]], atoms.numbers, (64, 64), 2 * A_STO / 64, imaging
    )
    assert float((wave.abs() ** 2).mean()) == pytest.approx(1.0, rel=1e-9)  # no absorption


def test_focal_spread_damps_fine_detail():
    atoms = _srtio3((2, 2, 1))
    args = (atoms.positions[:, [1, 0, 2]], atoms.numbers, (64, 64), 2 * A_STO / 64)
    sharp = hrtem_image(*args, HRTEMImaging(focal_spread=0.0, divergence=0.0))
    blurred = hrtem_image(*args, HRTEMImaging(focal_spread=80.0, divergence=0.0))
    assert blurred.std() < sharp.std()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: STEMImaging(mode="DF"), "STEM mode"),
        (lambda: STEMImaging(contrast=1.5), "contrast"),
        (lambda: HRTEMImaging(slice_thickness=0), "slice_thickness"),
        (lambda: HRTEMImaging(objective_aperture=-1), "aperture"),
        (lambda: stem_image([[0, 0]], [6, 6], (8, 8), 0.1, STEMImaging()), "atomic numbers"),
    ],
)
def test_bad_imaging_input(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_divergence_envelope_follows_the_gradient_of_chi():
    from atomlens.physics.imaging.hrtem import objective_transfer

    shape, pixel = (64, 64), 0.1
    plain = HRTEMImaging(aberrations={}, objective_aperture=None, focal_spread=0.0, divergence=0.5)
    # no aberrations: chi = 0 everywhere, so a beam divergence changes nothing
    assert np.allclose(objective_transfer(plain, shape, pixel).numpy(), 1.0)
    # pure defocus: |grad_k chi| = 2 pi C10 lambda |k|, E_s = exp(-2 (pi theta C10 k)^2)
    defocus = HRTEMImaging(
        aberrations={"C10": 200.0}, objective_aperture=None, focal_spread=0.0, divergence=0.5
    )
    transfer = objective_transfer(defocus, shape, pixel).abs().numpy()
    k = 5 / (64 * pixel)  # pixel (0, 5) [1/Å]
    expected = np.exp(-2 * (np.pi * 0.5e-3 * 200.0 * k) ** 2)
    assert transfer[0, 5] == pytest.approx(expected, rel=1e-3)


def test_a_tiny_pixel_size_that_would_pad_a_field_with_gigabytes_of_vacuum_is_refused():
    """8 Å of vacuum at 0.001 Å/px is 8000 px per side: refused before any grid is allocated."""
    from atomlens.core.validation import SizeLimitError
    from atomlens.physics import HRTEMImaging, field, simulate_image

    atoms = field("SrTiO3", (24, 24), 0.001, rotation=10.0, rng=0)
    with pytest.raises(SizeLimitError, match="padded with vacuum"):
        simulate_image(atoms, 0.001, HRTEMImaging())
