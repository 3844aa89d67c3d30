"""VAE-EM (paper 004): the spectra, the symmetric code map, the EM and the verb."""

import numpy as np
import pytest
import torch

from atomlens.calibrate.latent import LatentMap, correction_basis
from atomlens.calibrate.spectra import ronchigram_spectra
from atomlens.calibrate.vae_em import EMOptions, vae_em
from atomlens.calibrate.vae_estimate import _state_offsets
from atomlens.nn import VAERegressor, vae_loss

TRIPLE = np.array([[0.0, 0, 0], [-200, 0, 0], [200, 0, 0]])
FIVE = np.array([[0.0, 0, 0], [-200, 0, 0], [200, 0, 0], [0, 100, 0], [0, 0, 100]])


def _even_codes(states: np.ndarray) -> np.ndarray:
    """A smooth, even, nonlinear map from states [Å] to 5 codes (a stand-in for the VAE's)."""
    u = states / 300.0
    r2 = (u**2).sum(1)
    return np.stack([np.tanh(u[:, 0] ** 2 - u[:, 1] ** 2 - u[:, 2] ** 2),
                     u[:, 0] * u[:, 1] / (1 + r2), u[:, 0] * u[:, 2] / (1 + r2),
                     (u[:, 1] ** 2 - u[:, 2] ** 2) / (1 + np.sqrt(r2)),
                     1 / (1 + u[:, 0] ** 2)], axis=1)  # fmt: skip


def _coarse(**changes) -> EMOptions:
    """A coarser first grid than the default, for test time."""
    return EMOptions(step=np.array([60.0, 40.0, 40.0]), finest=4.0, **changes)


@pytest.fixture(scope="module")
def latent_map():
    rng = np.random.default_rng(0)
    low, high = [-900, -350, -350], [900, 350, 350]
    states = rng.uniform(low, high, (12000, 3))
    fitted = LatentMap.fit(states, _even_codes(states) + 0.02 * rng.standard_normal((12000, 5)))
    held_out = rng.uniform(low, high, (2000, 3))
    noisy = _even_codes(held_out) + 0.02 * rng.standard_normal((2000, 5))
    return fitted.with_noise(held_out, noisy)


def test_spectra_are_the_same_for_a_point_inverted_shadow():
    rng = np.random.default_rng(1)
    grids = 1 + 0.2 * rng.standard_normal((3, 96, 96))
    spectra = ronchigram_spectra(grids)
    assert spectra.shape == (3, 32, 32) and spectra.dtype == np.float32
    np.testing.assert_allclose(spectra, ronchigram_spectra(grids[:, ::-1, ::-1]), atol=1e-4)
    np.testing.assert_allclose(spectra.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(spectra.std(axis=(1, 2)), 1, atol=1e-4)


def test_spectra_show_the_magnification_of_the_shadow():
    """A shadow stretched along x (astigmatism) concentrates its spectrum along ky."""
    rng = np.random.default_rng(2)
    from scipy import ndimage

    grid = ndimage.gaussian_filter(rng.standard_normal((96, 96)), (0.7, 3.0)) + 5
    spectrum = ronchigram_spectra(grid)
    along_y = spectrum[16 + 3 : 16 + 8, 15:18].mean()
    along_x = spectrum[15:18, 16 + 3 : 16 + 8].mean()
    assert along_y > along_x + 0.5


BAD_GRIDS = [np.zeros((64, 64)), np.zeros((2, 96, 95)), np.full((96, 96), np.nan)]


@pytest.mark.parametrize("bad", BAD_GRIDS)
def test_spectra_refuse_what_is_not_a_canonical_grid(bad):
    with pytest.raises(ValueError, match="ronchigram_spectra"):
        ronchigram_spectra(bad)


def test_the_code_map_is_even_and_fits_a_known_map(latent_map):
    rng = np.random.default_rng(3)
    states = rng.uniform([-600, -250, -250], [600, 250, 250], (500, 3))
    np.testing.assert_allclose(latent_map.predict(states), latent_map.predict(-states), atol=1e-12)
    np.testing.assert_allclose(correction_basis(states), correction_basis(-states))
    assert latent_map.score(states, _even_codes(states))["map_r2"] > 0.98
    again = LatentMap.from_dict(latent_map.to_dict())
    np.testing.assert_array_equal(again.predict(states), latent_map.predict(states))


def test_a_damaged_code_map_is_refused(latent_map):
    values = latent_map.to_dict()
    values["weights"] = values["weights"][:-1]
    with pytest.raises(ValueError, match="do not match"):
        LatentMap.from_dict(values)
    with pytest.raises(ValueError, match="Not a latent map"):
        LatentMap.from_dict({"centres_A": []})


PLANTED = [(-156.0, -71.6, 65.0), (292.3, -8.0, 136.9), (-329.0, 12.6, -51.6)]


@pytest.mark.parametrize("truth", PLANTED)
def test_em_recovers_a_planted_state_with_its_sign(latent_map, truth):
    truth = np.array(truth)
    rng = np.random.default_rng(4)
    codes = _even_codes(truth + FIVE) + 0.02 * rng.standard_normal((5, 5))
    result = vae_em(codes, FIVE, latent_map, _coarse())
    assert np.all(np.abs(result.values - truth) <= 4 * result.sigma + 2), (result.values, truth)
    assert result.sigma.max() < 20
    assert result.sign_probability > 0.99 and np.sign(result.values[0]) == np.sign(truth[0])


def test_em_absorbs_a_gap_between_simulation_and_microscope(latent_map):
    """Codes off the simulator's map by a constant (the gap): fitting the correction in the
    M-step brings the state closer than trusting the simulator's map (correction=0)."""
    nine = np.array([[a, b, c] for a in (-200, 0, 200) for b, c in ((0, 0), (100, 0), (0, 100))])
    rng = np.random.default_rng(5)
    errors = {0.0: [], 1.0: []}
    for _ in range(6):
        truth = np.array([rng.uniform(-500, 500), *rng.uniform(-140, 140, 2)])
        codes = _even_codes(truth + nine) + 0.02 * rng.standard_normal((9, 5))
        codes += 0.08 * np.array([1, 0, 0, 0, -1])
        for tau in errors:
            result = vae_em(codes, nine, latent_map, _coarse(correction=tau))
            errors[tau].append(np.linalg.norm(result.values - truth))
    assert np.mean(errors[1.0]) < 0.85 * np.mean(errors[0.0]), errors


def test_codes_that_tell_nothing_give_a_wide_sigma():
    """A map whose codes do not depend on the state: the sigma is that of the prior box, not
    the grid step."""
    rng = np.random.default_rng(6)
    states = rng.uniform([-900, -350, -350], [900, 350, 350], (3000, 3))
    flat = LatentMap.fit(states, 0.02 * rng.standard_normal((3000, 2)))
    codes = 0.02 * rng.standard_normal((3, 2))
    result = vae_em(codes, TRIPLE, flat, _coarse(correction=0.0))
    assert np.all(result.sigma >= 100), result.sigma  # [Å]


def test_offsets_are_checked():
    assert _state_offsets([0.0, -200.0, {"C12a": 100.0}]).tolist() == [
        [0, 0, 0], [-200, 0, 0], [0, 100, 0]]  # fmt: skip
    with pytest.raises(ValueError, match="C10 and C12 only"):
        _state_offsets([0.0, {"C21a": 50.0}])
    with pytest.raises(ValueError, match="offsets up to"):
        _state_offsets([0.0, 500.0])
    with pytest.raises(ValueError, match="at different offsets"):
        _state_offsets([0.0, 0.0])
    with pytest.raises(ValueError, match="look like metres"):
        _state_offsets([0.0, -2e-8, 2e-8])  # metres, not Å
    with pytest.raises(ValueError, match="finite"):
        _state_offsets([0.0, float("nan")])


def test_a_vae_without_a_regression_head():
    model = VAERegressor(size=32, latent=4, outputs=0).eval()
    x = torch.randn(3, 1, 32, 32)
    prediction, reconstruction, mean, _ = model(x)
    assert prediction.shape == (3, 0) and reconstruction.shape == x.shape and mean.shape == (3, 4)
    loss = vae_loss(model(x), x, x.new_zeros((3, 0)))
    assert np.isfinite(loss.item()) and loss.item() > 0


def test_train_vae_generate_fit_and_use(tmp_path, capsys):
    """`atomlens train calibrate vae-generate|vae-fit` end to end on a tiny bank; the folder is a
    VAE with its code map, and VAE-EM runs on it."""
    from atomlens.calibrate.training import simulate_examples
    from atomlens.calibrate.vae_estimate import load_vae
    from atomlens.calibrate.vae_training import sampler
    from atomlens.cli import main

    bank = tmp_path / "bank"

    def train(*args):
        assert main(["train", "calibrate", *map(str, args), "--threads", "1"]) == 0

    train("vae-generate", "--bank", bank, "--chunks", 1, "--chunk-size", 16)
    train("vae-generate", "--bank", bank / "validation", "--seed", 900, "--chunks", 1,
          "--chunk-size", 8)  # fmt: skip
    with np.load(bank / "chunk_000000.npz") as chunk:
        assert str(chunk["prior"]) == "focus-astigmatism"
        _, truth = simulate_examples(16, 0, sampler())
        np.testing.assert_array_equal(chunk["coefficients"], truth)
        assert np.abs(truth[:, 0]).max() <= 900 and np.hypot(*truth[:, 1:3].T).max() <= 350
    model = tmp_path / "vae"
    train("vae-fit", "--bank", bank, "-o", model, "--steps", 2, "--batch", 4, "--latent", 4,
          "--validate-every", 2)  # fmt: skip
    assert "map_r2" in capsys.readouterr().out
    vae, latent_map, config = load_vae(str(model))
    assert config["task"] == "ronchigram-vae" and config["prior"] == "focus-astigmatism"
    assert latent_map.weights.shape[1] == 4 and latent_map.noise.shape == (4,)
    assert vae(torch.zeros(2, 1, 32, 32))[2].shape == (2, 4)
    # vae-refit fits the map again on the bank; the weights and their SHA-256 stay
    train("vae-refit", "--model", model, "--bank", bank)
    load_vae.cache_clear()
    _, refitted, again = load_vae(str(model))
    assert again["sha256"] == config["sha256"] and again["map_examples"] == 16
    np.testing.assert_allclose(refitted.weights, latent_map.weights, atol=1e-8)
    refused = ["train", "calibrate", "vae-fit", "--bank", str(bank), "-o", str(tmp_path / "x"),
               "--latent", "1"]  # fmt: skip
    assert main(refused) == 2
    assert "latent must be an integer in [2, 64]" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def known_case():
    """The atomlens simulator (not what the VAE's map was fitted on: a fixed 30 Å carbon
    specimen, 1e7 e-): C10 = -30 nm, C12 = 8 nm at 22.9°, the triple and two two-fold offsets."""
    from atomlens.calibrate import SimulatedMicroscope
    from atomlens.physics import Aberrations, AmorphousSpecimen, RonchigramSetup

    truth = Aberrations(C10=-300.0, C12=80.0, phi12=0.4)
    scope = SimulatedMicroscope(truth, setup=RonchigramSetup(size=192, angular_sampling=0.63),
                                specimen=AmorphousSpecimen(thickness=30.0), seed=2)  # fmt: skip
    plan = [0.0, -200.0, 200.0, {"C12a": 100.0}, {"C12b": 100.0}]
    return scope.ronchigrams(plan), plan, scope.aberrations.copy(), scope.calibration


@pytest.mark.parametrize("prior", ["network", "flat"])
def test_vae_em_recovers_a_simulated_known_case(known_case, prior):
    from atomlens.calibrate import estimate_vae_em

    images, plan, truth, calibration = known_case
    result = estimate_vae_em(images, offsets=plan, prior=prior, **calibration)
    error = result.values[:3] - truth[:3]
    assert np.all(np.abs(error) <= 3 * result.sigma[:3]), (error, result.sigma[:3])
    assert result.sign_resolved and result.values[0] < 0
    assert np.all(result.sigma[:3] < 60)  # [Å]
    assert result.model.startswith("VAE-EM") and "VAE-EM" in result.notes[-1]
    assert ("network's estimate as the prior" in result.notes[-1]) == (prior == "network")


def test_a_prior_of_the_state_pulls_the_estimate_and_is_checked(latent_map):
    truth = np.array([-329.0, 12.6, -51.6])
    rng = np.random.default_rng(8)
    codes = _even_codes(truth + TRIPLE) + 0.05 * rng.standard_normal((3, 5))
    flat = vae_em(codes, TRIPLE, latent_map, _coarse())
    informed = vae_em(codes, TRIPLE, latent_map, _coarse(), prior=(truth, np.full(3, 5.0)))
    assert np.linalg.norm(informed.values - truth) < np.linalg.norm(flat.values - truth)
    assert np.all(informed.sigma < flat.sigma)
    with pytest.raises(ValueError, match="positive sigmas"):
        vae_em(codes, TRIPLE, latent_map, _coarse(), prior=(truth, np.zeros(3)))


def test_vae_em_refuses_a_series_it_cannot_use(known_case):
    from atomlens.calibrate import estimate, estimate_vae_em

    images, plan, _, calibration = known_case
    with pytest.raises(ValueError, match="2 Ronchigrams but 3 offsets"):
        estimate(images[:2], offsets=plan[:3], method="vae-em", **calibration)
    with pytest.raises(ValueError, match="VAE-EM needs the offset"):
        estimate(images[:2], method="vae-em", **calibration)
    with pytest.raises(ValueError, match="at different offsets"):
        estimate(images[:2], offsets=[0.0, 0.0], method="vae-em", **calibration)
    with pytest.raises(ValueError, match="prior must be 'network' or 'flat'"):
        estimate_vae_em(images[:3], offsets=plan[:3], prior="uniform", **calibration)
    with pytest.raises(ValueError, match="trained at 200 kV"):
        estimate(images[:3], offsets=plan[:3], method="vae-em", energy=300e3, semiangle=30,
                 angular_sampling=calibration["angular_sampling"])  # fmt: skip
    with pytest.raises(ValueError, match="identical pixel data"):
        estimate([images[0], images[0]], offsets=[0.0, 200.0], method="vae-em", **calibration)


def test_the_command_passes_vae_em_on(known_case, monkeypatch, tmp_path, capsys):
    import tifffile

    from atomlens.cli import main

    images, _, _, calibration = known_case
    from atomlens.cli.calibrate import _offsets

    files = []
    for k, image in enumerate(images):
        files.append(str(tmp_path / f"r{k}.tif"))
        tifffile.imwrite(files[-1], image)
    flags = ["--energy", "200e3", "--semiangle", "30", "--angular-sampling",
             str(calibration["angular_sampling"])]  # fmt: skip
    # two-fold offsets on the command line: NAME=nm items beside the C10 changes
    assert _offsets("0,-20,20,C12a=10,C12b=10", 5) == [0.0, -200.0, 200.0, {"C12a": 100.0},
                                                       {"C12b": 100.0}]  # fmt: skip
    assert main(["calibrate", *files, "--offsets", "0,-20,20,C12a=10,C12b=10", "--method",
                 "vae-em", "--json", *flags]) == 0  # fmt: skip
    assert '"model": "VAE-EM (ronchigram-vae)"' in capsys.readouterr().out
    assert main(["calibrate", *files[:2], "--offsets", "0,C99=1", *flags]) == 2
    assert "unknown coefficient 'C99'" in capsys.readouterr().err
    assert main(["calibrate", *files[:2], "--offsets", "0,0", "--method", "vae-em", *flags]) == 2
    assert "at different offsets" in capsys.readouterr().err
