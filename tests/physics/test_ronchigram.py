import numpy as np
import pytest

from atomlens.physics import (
    Aberrations,
    AmorphousSpecimen,
    CrystalSpecimen,
    PhaseGrating,
    PotentialSpecimen,
    RonchigramSetup,
    ronchigram_camera,
    simulate_ronchigram,
    simulate_ronchigrams,
)
from atomlens.physics.optics.transfer import cartesian_coefficients

SMALL = RonchigramSetup(energy=200e3, semiangle=25.0, angular_sampling=0.6, size=96)


def _abtem_ronchigram(potential_slices, sampling, slice_thickness, aberrations, semiangle):
    abtem = pytest.importorskip("abtem")
    n = potential_slices.shape[-1]
    # abTEM indexes (x, y): transpose our (y, x) slices. Its anti-aliasing aperture is switched
    # off so that both codes propagate the same band of frequencies.
    array = np.ascontiguousarray(np.swapaxes(potential_slices, 1, 2)).astype(np.float32)
    potential = abtem.PotentialArray(array, sampling=sampling, slice_thickness=slice_thickness)
    probe = abtem.Probe(
        energy=200e3, semiangle_cutoff=semiangle, soft=False, **aberrations.to_abtem()
    )
    with abtem.config.set({"antialias.cutoff": 1.0, "antialias.taper": 0.0}):
        exit_wave = probe.multislice(potential, scan=(n // 2 * sampling, n // 2 * sampling))
        pattern = exit_wave.diffraction_patterns(max_angle=None, block_direct=False, fftshift=True)
        array = pattern.compute().array
    return array.T / array.sum()


@pytest.mark.parametrize("slices", [1, 3])
def test_ronchigram_agrees_with_abtem(slices):
    setup = RonchigramSetup(
        energy=200e3, semiangle=25.0, angular_sampling=0.6, size=96, edge_width=0.0
    )
    rng = np.random.default_rng(1)
    atoms = [(rng.uniform(0, setup.extent[0], (300, 2)), np.full(300, 6)) for _ in range(slices)]
    from atomlens.physics import projected_potentials

    potential = projected_potentials(atoms, setup.size, setup.sampling).numpy()
    aberrations = Aberrations(C10=-150.0, C12=40.0, phi12=0.5, C21=1000.0, phi21=0.3, C30=1e5)
    specimen = PotentialSpecimen(potential, sampling=setup.sampling, slice_thickness=10.0)
    ours = simulate_ronchigram(setup, aberrations, specimen, oversampling=1)
    theirs = _abtem_ronchigram(potential, setup.sampling, 10.0, aberrations, setup.semiangle)
    assert np.linalg.norm(ours / ours.sum() - theirs) / np.linalg.norm(theirs) < 0.01


def test_without_specimen_the_ronchigram_is_the_aperture_disc():
    setup = RonchigramSetup(semiangle=20.0, angular_sampling=0.5, size=128, edge_width=0.0)
    image = simulate_ronchigram(setup, Aberrations(C10=-100.0), PhaseGrating(phase_std=0.0))
    ay, ax = setup.angles()
    inside = np.hypot(ay[:, None], ax[None, :]) < 20.0 - 1.0
    outside = np.hypot(ay[:, None], ax[None, :]) > 20.0 + 1.0
    assert image.sum() == pytest.approx(1.0, rel=1e-5)
    assert image[inside].std() / image[inside].mean() < 0.05  # flat bright-field disc
    assert image[outside].sum() < 0.01


def test_beam_tilt_moves_the_disc():
    setup = RonchigramSetup(semiangle=15.0, angular_sampling=0.5, size=128)
    image = simulate_ronchigram(setup, Aberrations(), PhaseGrating(0.0), tilt=(3.0, -5.0))
    rows, cols = np.indices(image.shape)
    centre = np.array([(rows * image).sum(), (cols * image).sum()]) / image.sum()
    assert (centre - 64) * setup.angular_sampling == pytest.approx([3.0, -5.0], abs=0.1)


def test_seeded_ronchigrams_do_not_depend_on_batching():
    sets = [Aberrations(C10=c) for c in (-300.0, -100.0, 100.0)]
    together = simulate_ronchigrams(SMALL, sets, AmorphousSpecimen(thickness=30), seed=5)
    single = simulate_ronchigrams(
        SMALL, sets, AmorphousSpecimen(thickness=30), seed=5, batch_size=1
    )
    assert np.array_equal(together, single)
    later = simulate_ronchigrams(
        SMALL, sets[1:], AmorphousSpecimen(thickness=30), seed=5, first_index=1
    )
    assert np.array_equal(together[1:], later)
    other = simulate_ronchigrams(SMALL, sets, AmorphousSpecimen(thickness=30), seed=6)
    assert not np.allclose(together, other)


@pytest.mark.parametrize(
    "specimen",
    [AmorphousSpecimen(thickness=60, slice_thickness=20), PhaseGrating(0.5, 0.3)],
    ids=["amorphous-multislice", "phase-grating"],
)
def test_intensity_is_conserved(specimen):
    image = simulate_ronchigram(SMALL, Aberrations(C10=-200.0), specimen)
    assert image.min() >= 0
    # a little scatters beyond the detector edge (max angle 28.8 mrad) for amorphous carbon
    assert 0.9 < image.sum() <= 1.0 + 1e-5


def test_crystal_specimen_shows_diffraction_discs():
    ase_build = pytest.importorskip("ase.build")
    cell = ase_build.bulk("Au", "fcc", a=4.078, cubic=True)
    setup = RonchigramSetup(semiangle=10.0, angular_sampling=0.5, size=128)
    image = simulate_ronchigram(
        setup, Aberrations(C10=-50.0), CrystalSpecimen(atoms=cell, repeats_z=3, rotation=0.0)
    )
    ay, ax = setup.angles()
    radius = np.hypot(ay[:, None], ax[None, :])
    # Au {200} Bragg discs sit at 2 theta = lambda / d200 = 0.0251 / 2.039 = 12.3 mrad, outside
    # the 10 mrad bright-field disc: the crystal scatters into them, vacuum would not.
    ring = (radius > 11.0) & (radius < 22.0)
    assert image[ring].sum() > 0.01


def test_auto_oversampling_grows_with_defocus():
    setup = RonchigramSetup(semiangle=30.0, angular_sampling=0.5, size=128)
    radii = setup.probe_radii(cartesian_coefficients([Aberrations(C10=c) for c in (0, 1e3, 4e3)]))
    assert radii == pytest.approx([0.0, 30.0, 120.0], rel=0.02, abs=0.5)  # r = C10 * alpha_max
    factors = setup.oversampling_for(radii)
    assert factors[0] == 1 and factors[2] >= 5 and all(f % 2 for f in factors)


def test_noisy_ronchigram_counts_match_the_dose():
    image = simulate_ronchigram(
        SMALL, Aberrations(C10=-100.0), PhaseGrating(0.3), detector=ronchigram_camera(1e6), seed=0
    )
    assert image.sum() == pytest.approx(1e6, rel=0.01)
    assert np.allclose(image, np.round(image))  # electron counts


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 4}, r"size=.*\[8, 16384\] px"),
        ({"angular_sampling": 0}, "angular_sampling=.*mrad/px"),
        ({"semiangle": -3}, "semi-angle"),
        ({"energy": 0}, "energy"),
    ],
)
def test_bad_setup(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RonchigramSetup(**kwargs)


def test_bad_batch_inputs():
    with pytest.raises(ValueError, match="tilts"):
        simulate_ronchigrams(SMALL, [Aberrations()], tilts=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="odd"):
        simulate_ronchigrams(SMALL, [Aberrations()], oversampling=2)
    with pytest.raises(ValueError, match="grid"):
        potential = np.zeros((32, 32))
        simulate_ronchigram(
            SMALL, Aberrations(), PotentialSpecimen(potential, sampling=0.1), oversampling=1
        )


def test_engine_is_built_once_per_setup_and_factor(monkeypatch):
    # The grids and chi basis are built on a cache miss only: within a call with many batches,
    # and across calls with an equal setup (a dataset simulated in chunks).
    from atomlens.physics.imaging import ronchigram

    built = []

    class Counting(ronchigram._Engine):
        def __init__(self, *args, **kwargs):
            built.append(args[:2])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(ronchigram, "_Engine", Counting)
    monkeypatch.setattr(ronchigram, "_ENGINES", {})
    setup = RonchigramSetup(energy=200e3, semiangle=20.0, angular_sampling=0.6, size=32)
    sets = [Aberrations(C10=c) for c in (-50.0, 0.0, 50.0, 100.0)]
    specimen = PhaseGrating()
    first = simulate_ronchigrams(setup, sets, specimen, oversampling=1, batch_size=1)
    assert built == [(setup, 1)]
    again = simulate_ronchigrams(
        RonchigramSetup(energy=200e3, semiangle=20.0, angular_sampling=0.6, size=32),
        sets,
        specimen,
        oversampling=1,
        batch_size=3,
    )
    assert built == [(setup, 1)] and np.array_equal(first, again)
    simulate_ronchigrams(setup, sets[:1], specimen, oversampling=3)
    assert built == [(setup, 1), (setup, 3)]
    other = RonchigramSetup(energy=200e3, semiangle=20.0, angular_sampling=0.5, size=32)
    simulate_ronchigrams(other, sets[:1], specimen, oversampling=1)
    assert built[-1] == (other, 1) and len(ronchigram._ENGINES) == 1  # one setup kept
