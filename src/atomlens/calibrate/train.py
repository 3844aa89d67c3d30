"""Train the Ronchigram aberration estimator: simulate a bank of examples, fit, recalibrate.

The steps are separate, so that simulation and training can run side by side (one CPU core each)
and a bank can be reused::

    python -m atomlens.calibrate.train generate --bank BANK --seed 0 --chunks 103
    python -m atomlens.calibrate.train generate --bank BANK --seed 1000 --chunks 189 \
        --prior corrected
    python -m atomlens.calibrate.train generate --bank BANK/validation --seed 500000 --chunks 2
    python -m atomlens.calibrate.train fit --bank BANK --minutes 85 --output MODEL_FOLDER
    python -m atomlens.calibrate.train recalibrate --model MODEL_FOLDER --bank BANK/validation

``fit`` keeps picking up chunks that ``generate`` is still writing. Chunk c of the training bank
is simulated with seed c; validation and test sets use seeds from 500000 and 900000, so they never
meet training data. On a GPU pass ``--device cuda`` to both steps, more chunks and a longer budget,
and ``--width 32``: the same command trains the full version.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from atomlens.calibrate.metrics import error_summary, resolve_sign
from atomlens.calibrate.network import (
    OUTPUTS,
    SCALES,
    laplace_sigma,
    network_input,
    predict_grids,
    sign_free_loss,
)
from atomlens.calibrate.simulation import PRIORS, TrainingDistribution, simulate_examples
from atomlens.calibrate.symmetry import (
    COEFFICIENTS,
    ELEMENTS,
    transform_coefficients,
    transform_grids,
)
from atomlens.nn import ResNet18Regressor


def generate(
    bank: Path, first: int, chunks: int, size: int, device: str | None, prior: str = "broad"
) -> None:
    """Write chunks ``chunk_<seed>.npz`` (grids float16, coefficients [Å]) to ``bank``."""
    bank.mkdir(parents=True, exist_ok=True)
    distribution = dataclasses.replace(TrainingDistribution(), ranges=PRIORS[prior])
    for seed in range(first, first + chunks):
        path = bank / f"chunk_{seed:06d}.npz"
        if path.exists():
            continue
        start = time.perf_counter()
        grids, coefficients = simulate_examples(size, seed, distribution, device=device)
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, grids=grids.astype(np.float16), coefficients=coefficients, prior=prior)
        temporary.rename(path)
        rate = size / (time.perf_counter() - start)
        print(f"{path.name}: {size} Ronchigrams, {rate:.1f} / s", flush=True)


def bank_priors(bank: Path) -> dict[str, int]:
    """Examples per aberration prior in a bank (chunks without a record count as "broad")."""
    counts: dict[str, int] = {}
    for path in sorted(bank.glob("chunk_*[0-9].npz")):
        with np.load(path) as data:
            prior = str(data["prior"]) if "prior" in data.files else "broad"
            counts[prior] = counts.get(prior, 0) + len(data["coefficients"])
    return counts


class Bank:
    """The finished chunks of a bank, in memory; :meth:`refresh` reads only chunks that are new.

    Chunks stay separate arrays (no concatenated copy), so a bank that ``generate`` keeps filling
    costs one read per chunk during training.
    """

    def __init__(self, folder: Path):
        self.folder, self.paths = folder, set()
        self.grids: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []
        self.refresh()

    def refresh(self) -> None:
        for path in sorted(self.folder.glob("chunk_*[0-9].npz")):
            if path not in self.paths:
                with np.load(path) as data:
                    self.grids.append(data["grids"])
                    self.truth.append(data["coefficients"])
                self.paths.add(path)
        if not self.truth:
            raise FileNotFoundError(
                f"No chunk_*.npz in {self.folder}; run the generate step first."
            )
        self.offsets = np.cumsum([0] + [len(t) for t in self.truth])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grids (float32) and coefficients [Å] of the examples at these bank indices."""
        chunk = np.searchsorted(self.offsets, index, side="right") - 1
        local = index - self.offsets[chunk]
        grids = np.stack([self.grids[c][i] for c, i in zip(chunk, local, strict=True)])
        truth = np.stack([self.truth[c][i] for c, i in zip(chunk, local, strict=True)])
        return grids.astype(np.float32), truth


def load_bank(bank: Path) -> tuple[np.ndarray, np.ndarray]:
    """All finished chunks of a bank, concatenated."""
    chunks = Bank(bank)
    return np.concatenate(chunks.grids), np.concatenate(chunks.truth)


def validation_summary(
    decoded: dict[str, np.ndarray], truth: np.ndarray, sigma_factor: np.ndarray | None = None
) -> dict[str, float]:
    """Errors of single-image estimates: the sign head picks +-mean."""
    sign = np.where(decoded["p_plus"] >= 0.5, 1.0, -1.0)[:, None]
    sigma = laplace_sigma(decoded["scale"], 1.0 if sigma_factor is None else sigma_factor)
    return error_summary(sign * decoded["mean"], sigma, truth)


def sigma_factors(decoded: dict[str, np.ndarray], truth: np.ndarray) -> np.ndarray:
    """Per coefficient, the factor on the Laplace scale that makes it the maximum-likelihood one.

    For a Laplace distribution the ML scale is the mean absolute error, so the factor is
    mean(|error| / scale) over a validation set (errors after resolving the sign).
    """
    best = resolve_sign(decoded["mean"], truth, SCALES)[:, None]
    return (np.abs(decoded["mean"] - best * truth) / decoded["scale"]).mean(axis=0)


class _Average:
    """Exponential moving average of all float parameters and buffers."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model, self.decay = copy.deepcopy(model).eval(), decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for mine, theirs in zip(
            self.model.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if mine.dtype.is_floating_point:
                mine.mul_(self.decay).add_(theirs, alpha=1 - self.decay)
            else:
                mine.copy_(theirs)


def fit(args: argparse.Namespace) -> None:
    """Train with a time-based warm-up + cosine schedule, then calibrate sigma and save."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device(args.device or "cpu")
    validation_grids, validation_truth = load_bank(args.bank / "validation")
    model = ResNet18Regressor(OUTPUTS, in_channels=2, width=args.width).to(device)
    average = _Average(model, args.ema)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    bank = Bank(args.bank)
    budget, step, start, log = args.minutes * 60, 0, time.perf_counter(), []
    print(f"{len(bank)} examples in the bank; budget {args.minutes} min", flush=True)
    while (elapsed := time.perf_counter() - start) < budget:
        fraction = elapsed / budget
        warm = fraction / 0.03 if fraction < 0.03 else 0.5 * (1 + math.cos(math.pi * fraction))
        for group in optimiser.param_groups:
            group["lr"] = args.lr * max(warm, 0.005)
        grids, truth = bank.take(rng.integers(len(bank), size=args.batch))
        turns, transpose = ELEMENTS[rng.integers(len(ELEMENTS))]
        batch = transform_grids(grids, turns, transpose)
        target = transform_coefficients(truth, turns, transpose) / SCALES
        model.train()
        output = model(network_input(np.ascontiguousarray(batch)).to(device))
        loss, parts = sign_free_loss(
            output, torch.as_tensor(target, dtype=torch.float32, device=device)
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        average.update(model)
        step += 1
        if step % args.reload_every == 0:
            bank.refresh()
        if step % args.log_every == 0:
            record = {"step": step, "minutes": round(elapsed / 60, 2), "examples": len(bank)}
            record |= {"loss": round(loss.item(), 4)} | {k: round(v, 4) for k, v in parts.items()}
            if step % args.validate_every == 0:
                summary = validation_summary(
                    predict_grids(average.model, validation_grids[:512]), validation_truth[:512]
                )
                record |= {k: round(v, 4) for k, v in summary.items() if "sigma_" not in k}
            log.append(record)
            print(json.dumps(record), flush=True)
    model = average.model.cpu()
    decoded = predict_grids(model, validation_grids)
    factors = sigma_factors(decoded, validation_truth)
    summary = validation_summary(decoded, validation_truth, factors)
    print(json.dumps(summary), flush=True)
    extra = {
        "task": "ronchigram-aberrations",
        "coefficients": list(COEFFICIENTS),
        "units": "Å (Cartesian C_nm a/b = C cos(m phi), C sin(m phi))",
        "scales_A": SCALES.tolist(),
        "sigma_factors": factors.round(4).tolist(),
        "distribution": TrainingDistribution().describe(),
        "priors_A": {name: {k: list(v) for k, v in r.items()} for name, r in PRIORS.items()},
        "examples_per_prior": bank_priors(args.bank),
        "training": {
            "steps": step,
            "batch": args.batch,
            "minutes": round((time.perf_counter() - start) / 60, 1),
            "examples_in_bank_at_end": len(bank),
            "lr": args.lr,
            "ema": args.ema,
            "width": args.width,
            "device": str(device),
        },
        "validation": {k: round(v, 4) for k, v in summary.items()},
    }
    from atomlens.zoo import save_model

    card = args.card.read_text() if args.card else "# Ronchigram aberration estimator\n"
    save_model(model, args.output, arguments={"outputs": OUTPUTS, "in_channels": 2,
               "width": args.width}, card=card, extra=extra, overwrite=True)  # fmt: skip
    (args.output / "training_log.json").write_text(json.dumps(log, indent=1))
    print(f"saved {args.output}", flush=True)


def recalibrate(model_folder: Path, validation: Path) -> dict[str, float]:
    """Refit the sigma factors of a trained model on a validation bank; rewrite its config.

    The weights (and their SHA-256) are untouched.
    """
    from atomlens.zoo import load_model
    from atomlens.zoo.registry import CONFIG

    model, config = load_model(model_folder)
    grids, truth = load_bank(validation)
    decoded = predict_grids(model, grids)
    factors = sigma_factors(decoded, truth)
    summary = validation_summary(decoded, truth, factors)
    config["sigma_factors"] = factors.round(4).tolist()
    config["validation"] = {k: round(v, 4) for k, v in summary.items()} | {
        "examples": len(truth),
        "bank": validation.name,
    }
    path = model_folder / CONFIG
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(config, indent=2) + "\n")
    temporary.replace(path)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="simulate chunks of examples")
    gen.add_argument("--bank", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0, help="seed of the first chunk")
    gen.add_argument("--chunks", type=int, default=100)
    gen.add_argument("--chunk-size", type=int, default=512)
    gen.add_argument("--device", default=None)
    gen.add_argument("--threads", type=int, default=1)
    gen.add_argument("--prior", choices=sorted(PRIORS), default="broad", help="aberration prior")
    run = commands.add_parser("fit", help="train on a bank (and its validation/ folder)")
    run.add_argument("--bank", type=Path, required=True)
    run.add_argument("--output", type=Path, required=True, help="model folder to write")
    run.add_argument("--minutes", type=float, default=60.0)
    run.add_argument("--batch", type=int, default=32)
    run.add_argument("--lr", type=float, default=2e-3)
    run.add_argument("--ema", type=float, default=0.998)
    run.add_argument("--width", type=int, default=16)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default=None)
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--card", type=Path, default=None, help="Markdown model card to ship")
    run.add_argument("--log-every", type=int, default=50)
    run.add_argument("--validate-every", type=int, default=500)
    run.add_argument("--reload-every", type=int, default=500)
    cal = commands.add_parser("recalibrate", help="refit sigma on a validation bank")
    cal.add_argument("--model", type=Path, required=True, help="model folder")
    cal.add_argument("--bank", type=Path, required=True, help="validation bank")
    cal.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.command == "generate":
        generate(args.bank, args.seed, args.chunks, args.chunk_size, args.device, args.prior)
    elif args.command == "recalibrate":
        print(json.dumps(recalibrate(args.model, args.bank), indent=1))
    else:
        fit(args)


if __name__ == "__main__":
    main()
