"""Time-boxed experiment: how well does a small CPU-trained network estimate C10 and C12?

Trains on the fly on freshly simulated Ronchigrams (200 kV, 30 mrad, 0.5 mrad / px, 128 px, thin
amorphous carbon 20-100 Å in one slice, dose 1e5-1e7 e- per image, C10 uniform in +-500 Å, |C12| in
0-200 Å with a random angle, C30 fixed at 10 µm to break the chi -> -chi sign symmetry) and reports
on a fixed held-out set simulated with another seed:

* MAE(C10) and vector MAE(C12) [nm], after resolving the overall sign by the better of +-;
* the sign accuracy (how often the unresolved prediction already has the right sign);
* the fraction of errors within one predicted sigma (Gaussian negative-log-likelihood head);
* inference speed (Ronchigrams / s, batched, from raw detector image to estimate, including the
  bright-field disc search and canonical resampling) and the model size.

The default loss is sign-invariant: min over s = +-1 of the Gaussian NLL of s * (C10, C12a, C12b),
so the network is never punished for the unavoidable sign flip; but it is not rewarded for the sign
either, and never learns it (see benchmarks/results/calibration_exploration.md). ``--loss signed``
trains on the plain NLL, for data whose C30 sign is known. The learning rate follows a time-based
warm-up + cosine schedule, so ``--minutes`` fixes the run. The defaults reproduce the best run.

Examples
--------
    .venv/bin/python benchmarks/explore_calibration.py --minutes 12
    .venv/bin/python benchmarks/explore_calibration.py --minutes 10 --input spectrum --net plain
    .venv/bin/python benchmarks/explore_calibration.py --minutes 10 --net plain --loss signed

Weights and a JSON summary go to ``--out`` (default /tmp/atomlens_explore), outside the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from atomlens.calibrate.preprocess import canonical_grid, ronchigram_input
from atomlens.nn.regressors import ResNet18Regressor
from atomlens.physics.imaging.ronchigram import RonchigramSetup, simulate_ronchigrams
from atomlens.physics.optics.aberrations import Aberrations, random_aberrations
from atomlens.physics.potentials.specimens import AmorphousSpecimen

SETUP = RonchigramSetup(energy=200e3, semiangle=30.0, angular_sampling=0.5, size=128)
RANGES = {"C10": (-500.0, 500.0), "C12": (0.0, 200.0)}  # [Å]
C30 = 1e5  # [Å] = 10 µm, fixed: breaks the chi -> -chi symmetry
SCALE = np.array([500.0, 200.0, 200.0])  # targets (C10, C12a, C12b) / SCALE are ~unit
THICKNESS = (20.0, 100.0)  # [Å]
DOSE = (1e5, 1e7)  # [e- per image], log-uniform
GROUP = 8  # Ronchigrams sharing one specimen thickness in a simulation call
TEST_SEED = 999_999  # training batch i uses seed i, so the test seed is never met in training


def simulate(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy detector images (count, 128, 128) and scaled targets (count, 3)."""
    rng = np.random.default_rng([seed, 12345])
    aberrations = random_aberrations(count, RANGES, rng, fixed=Aberrations(C30=C30))
    images = np.empty((count, *SETUP.size), dtype=np.float32)
    for start in range(0, count, GROUP):
        chunk = aberrations[start : start + GROUP]
        specimen = AmorphousSpecimen(thickness=(t := rng.uniform(*THICKNESS)), slice_thickness=t)
        images[start : start + len(chunk)] = simulate_ronchigrams(
            SETUP, chunk, specimen, seed=seed, first_index=start, batch_size=GROUP
        )
    doses = np.exp(rng.uniform(*np.log(DOSE), count))
    images = rng.poisson(images * doses[:, None, None]).astype(np.float32)  # shot noise
    keys = ("C10", "C12a", "C12b")
    targets = np.array([[a.to_cartesian()[k] for k in keys] for a in aberrations])
    return images, (targets / SCALE).astype(np.float32)


def canonical(images: np.ndarray, centre: str = "axis") -> np.ndarray:
    """Canonical 96 x 96 grids; "axis" is exact for untilted simulations and 3x faster."""
    return np.stack(
        [
            canonical_grid(
                ronchigram_input(image, energy=SETUP.energy, semiangle=SETUP.semiangle,
                                 angular_sampling=SETUP.angular_sampling),
                centre=centre,
            )
            for image in images
        ]
    )  # fmt: skip


def _window(size: int) -> torch.Tensor:
    """Radial Hann window reaching zero at 0.9 semi-angles of the canonical grid."""
    axis = (torch.arange(size) - size / 2 + 0.5) * 2 * 1.25 / size
    radius = torch.hypot(axis[:, None], axis[None, :]) / 0.9
    return torch.where(radius < 1, torch.cos(radius * math.pi / 2) ** 2, torch.zeros(()))


def network_input(grids: np.ndarray, representation: str) -> torch.Tensor:
    """(N, 1, 96, 96) network input from canonical grids.

    "canonical": the grid minus 1 inside the disc (it is normalised to mean 1 there).
    "spectrum": log |FFT|^2 of the windowed, mean-free grid (van Hulst et al.), standardised.
    """
    x = torch.from_numpy(grids)
    if representation == "canonical":
        return torch.where(x > 0, x - 1, x)[:, None]
    window = _window(x.shape[-1])
    x = (x - 1) * window
    power = torch.fft.fftshift(torch.fft.fft2(x).abs() ** 2, dim=(-2, -1))
    power = torch.log(power + 1e-3)
    power = (power - power.mean(dim=(-2, -1), keepdim=True)) / power.std(dim=(-2, -1), keepdim=True)
    return power[:, None].float()


class PlainCNN(nn.Module):
    """Six conv-BN-ReLU layers (96 -> 6 px), 3 x 3 average pool, linear head.

    Unlike ResNet18's global average pool, the 3 x 3 pool keeps coarse position, which the power
    spectrum (ring radii) and the radial change of magnification caused by C30 (the sign) need.
    """

    def __init__(self, outputs: int, width: int = 16):
        super().__init__()
        layers, channels = [], 1
        plan = [(width, 2), (2 * width, 2), (4 * width, 2), (4 * width, 1), (8 * width, 2),
                (8 * width, 1)]  # fmt: skip
        for out, stride in plan:
            layers += [
                nn.Conv2d(channels, out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.head = nn.Linear(9 * channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(net: str, width: int) -> nn.Module:
    """Network with 6 outputs: means and log-variances of the 3 scaled targets."""
    return ResNet18Regressor(6, width=width) if net == "resnet18" else PlainCNN(6, width)


def gaussian_nll(output: torch.Tensor, target: torch.Tensor, signless: bool) -> torch.Tensor:
    """Mean Gaussian NLL; ``signless`` takes the min over s = +-1 of the NLL of s * target.

    The signless loss never penalises a wrong overall sign, so it gives no incentive to learn the
    sign even where C30 reveals it; the signed loss does (use it when C30's sign is known).
    """
    mean, log_var = output[:, :3], output[:, 3:].clamp(-14, 4)
    nll = [
        0.5 * (((s * target - mean) ** 2) * torch.exp(-log_var) + log_var).sum(dim=1)
        for s in ((1, -1) if signless else (1,))
    ]
    return (torch.minimum(*nll) if signless else nll[0]).mean()


def evaluate(model: nn.Module, inputs: torch.Tensor, targets: np.ndarray) -> dict:
    """Sign-resolved errors [nm], sign accuracy and 1-sigma coverage on a held-out set."""
    model.eval()
    with torch.no_grad():
        output = torch.cat([model(chunk) for chunk in inputs.split(100)]).numpy()
    model.train()
    mean, sigma = output[:, :3] * SCALE, np.exp(0.5 * output[:, 3:].clip(-14, 4)) * SCALE
    truth = targets * SCALE
    plus = ((mean - truth) ** 2 / SCALE**2).sum(1)
    minus = ((mean + truth) ** 2 / SCALE**2).sum(1)
    sign = np.where(plus <= minus, 1.0, -1.0)[:, None]
    error = mean - sign * truth
    strong = np.abs(truth[:, 0]) > 100  # |C10| > 10 nm: the sign is visible there if anywhere
    return {
        "mae_c10_nm": float(np.abs(error[:, 0]).mean() / 10),
        "vector_mae_c12_nm": float(np.hypot(error[:, 1], error[:, 2]).mean() / 10),
        "median_c10_nm": float(np.median(np.abs(error[:, 0])) / 10),
        "median_c12_nm": float(np.median(np.hypot(error[:, 1], error[:, 2])) / 10),
        "sign_accuracy": float((sign > 0).mean()),
        "sign_accuracy_abs_c10_gt_10nm": float((sign[strong] > 0).mean()),
        "coverage_1sigma": float((np.abs(error) < sigma).mean()),
        "coverage_1sigma_per_output": (np.abs(error) < sigma).mean(0).round(3).tolist(),
        "median_sigma_nm": (np.median(sigma, 0) / 10).round(2).tolist(),
    }


def inference_speed(model: nn.Module, representation: str, images: np.ndarray) -> float:
    """Ronchigrams / s from raw images: disc search, canonical grid, input, network (batched)."""
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for chunk in np.array_split(images, max(1, len(images) // 64)):
            model(network_input(canonical(chunk, centre="disc"), representation))
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="training wall-time budget")
    parser.add_argument("--input", choices=("canonical", "spectrum"), default="canonical")
    parser.add_argument("--net", choices=("resnet18", "plain"), default="resnet18")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--loss", choices=("signless", "signed"), default="signless")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--test-count", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/atomlens_explore"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{args.input}_{args.net}{args.width}_{args.loss}"

    cache = args.out / f"test_{args.test_count}.npz"
    if cache.exists():
        data = np.load(cache)
        test_images, test_targets, test_grids = data["images"], data["targets"], data["grids"]
    else:
        test_images, test_targets = simulate(args.test_count, TEST_SEED)
        test_grids = canonical(test_images)
        np.savez(cache, images=test_images, targets=test_targets, grids=test_grids)
    test_inputs = network_input(test_grids, args.input)

    model = build(args.net, args.width)
    parameters = sum(p.numel() for p in model.parameters())
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget, warmup = args.minutes * 60, 0.05
    log, step, seen, start = [], 0, 0, time.perf_counter()
    print(f"{name}: {parameters} parameters, budget {args.minutes} min", flush=True)
    while (elapsed := time.perf_counter() - start) < budget:
        fraction = elapsed / budget
        scale = fraction / warmup if fraction < warmup else 0.5 * (1 + math.cos(math.pi * fraction))
        for group in optimiser.param_groups:
            group["lr"] = args.lr * max(scale, 0.01)
        images, targets = simulate(args.batch, seed=step)
        inputs = network_input(canonical(images), args.input)
        loss = gaussian_nll(model(inputs), torch.from_numpy(targets), args.loss == "signless")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step, seen = step + 1, seen + args.batch
        if step % 50 == 0:
            record = {"step": step, "minutes": elapsed / 60, "loss": loss.item()}
            if step % 200 == 0:
                record |= evaluate(model, test_inputs, test_targets)
            log.append(record)
            print(json.dumps(record), flush=True)
    minutes = (time.perf_counter() - start) / 60

    result = {
        "run": name,
        "input": args.input,
        "net": f"{args.net} width {args.width}",
        "loss": args.loss,
        "parameters": parameters,
        "steps": step,
        "ronchigrams_seen": seen,
        "minutes": round(minutes, 1),
        **evaluate(model, test_inputs, test_targets),
        "inference_per_s": round(inference_speed(model, args.input, test_images[:256]), 1),
        "log": log,
    }
    weights = args.out / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    result["model_mb"] = round(weights.stat().st_size / 2**20, 2)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "log"}, indent=1))


if __name__ == "__main__":
    main()
