import numpy as np
import pytest

from atomlens.physics import Aberrations, Probe

SETS = {
    "none": Aberrations(),
    "defocus": Aberrations(C10=-120.0),
    "overfocus": Aberrations(C10=150.0),
    "astigmatism": Aberrations(C10=-50.0, C12=80.0, phi12=0.4),
    "coma": Aberrations(C21=2500.0, phi21=0.7),
    "trefoil": Aberrations(C23=2000.0, phi23=-0.3),
    "mixed": Aberrations(
        C10=-150,
        C12=80,
        phi12=0.4,
        C21=2000,
        phi21=0.7,
        C23=1500,
        phi23=-0.3,
        C30=2e5,
        C32=5e4,
        phi32=0.2,
        C34=3e4,
        phi34=0.5,
    ),
}


def _centroid(intensity, threshold=0.0):
    """Intensity-weighted centre [px] of the pixels above threshold * max."""
    weights = np.where(intensity > threshold * intensity.max(), intensity, 0.0)
    rows, cols = np.indices(intensity.shape)
    return np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("name", SETS)
def test_probe_intensity_agrees_with_abtem(name):
    abtem = pytest.importorskip("abtem")
    n, sampling = 96, 0.1
    ours = Probe(energy=200e3, semiangle=25.0, aberrations=SETS[name]).intensity((n, n), sampling)
    probe = abtem.Probe(
        energy=200e3, semiangle_cutoff=25.0, gpts=(n, n), sampling=sampling, **SETS[name].to_abtem()
    )
    theirs = np.abs(probe.build(scan=(n // 2 * sampling, n // 2 * sampling)).compute().array) ** 2
    theirs = theirs.T / theirs.sum()  # abTEM indexes (x, y)
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 0.01


def test_probe_is_normalised_and_centred():
    probe = Probe(energy=300e3, semiangle=20.0)
    intensity = probe.intensity((65, 64), 0.15)
    assert intensity.sum() == pytest.approx(1.0, rel=1e-10)
    assert np.unravel_index(intensity.argmax(), intensity.shape) == (32, 32)
    wave = probe.build((65, 64), 0.15)
    assert float((wave.abs() ** 2).sum()) == pytest.approx(1.0, rel=1e-10)


def test_probe_position_moves_the_peak():
    probe = Probe(energy=200e3, semiangle=25.0)
    intensity = probe.intensity((64, 64), 0.1, position=(2.0, 4.5))
    assert _centroid(intensity, threshold=0.05) == pytest.approx([20.0, 45.0], abs=0.02)


def test_beam_tilt_with_defocus_shifts_the_probe_geometrically():
    # A tilt t through a defocus C10 moves the probe by C10 * t (geometric optics).
    c10, tilt = -300.0, (0.0, 5.0)
    base = Probe(energy=200e3, semiangle=20.0, aberrations=Aberrations(C10=c10))
    tilted = Probe(energy=200e3, semiangle=20.0, aberrations=Aberrations(C10=c10), tilt=tilt)
    shape, sampling = (256, 256), 0.1
    shift = _centroid(tilted.intensity(shape, sampling)) - _centroid(
        base.intensity(shape, sampling)
    )
    assert shift * sampling == pytest.approx([0.0, c10 * tilt[1] * 1e-3], abs=0.03)


def test_source_size_adds_variance():
    shape, sampling, source = (128, 128), 0.1, 0.5
    sharp = Probe(energy=200e3, semiangle=25.0).intensity(shape, sampling)
    blurred = Probe(energy=200e3, semiangle=25.0, source_size=source).intensity(shape, sampling)
    rows = (np.arange(shape[0]) - shape[0] // 2) * sampling
    var_sharp = (rows[:, None] ** 2 * sharp).sum()
    var_blurred = (rows[:, None] ** 2 * blurred).sum()
    assert blurred.sum() == pytest.approx(1.0, rel=1e-9)
    assert var_blurred - var_sharp == pytest.approx(source**2, rel=0.02)


def test_opposite_defocus_gives_point_reflected_intensity():
    shape, sampling = (64, 64), 0.1
    plus = Probe(200e3, 25.0, Aberrations(C10=100.0, C21=800.0)).intensity(shape, sampling)
    minus = Probe(200e3, 25.0, Aberrations(C10=-100.0, C21=800.0, phi21=np.pi)).intensity(
        shape, sampling
    )
    reflected = np.roll(minus[::-1, ::-1], (1, 1), axis=(0, 1))  # point reflection about (32, 32)
    assert np.allclose(plus, reflected, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"energy": -1, "semiangle": 20}, "energy"),
        ({"energy": 200e3, "semiangle": 0}, "semi-angle"),
        ({"energy": 200e3, "semiangle": 20, "source_size": -1}, "source_size=.*source size"),
    ],
)
def test_bad_probe_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Probe(**kwargs)
