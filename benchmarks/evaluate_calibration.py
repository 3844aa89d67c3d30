"""Evaluate the Ronchigram aberration estimator on held-out test sets, none used in training.

Test sets (seeds 900000+; training used chunks 0-102 and 1000-1188, validation 500000-500002):

* ``C10, C12 only``: the project's simulator in the issue's setting: 200 kV, 30 mrad, C10 in
  +-50 nm, |C12| <= 20 nm, no other aberration, with the training specimens and noise;
* ``target``: the same plus the small higher orders of a corrected microscope: |C21|, |C23| <=
  100 nm, C30 in +-5 µm;
* ``full range``: the whole training distribution (|C10| <= 60 nm, |C21|, |C23| <= 200 nm,
  C30 +-10 µm);
* ``thick a-C``: amorphous carbon 200-400 Å thick, beyond the 20-200 Å of training;
* ``crystals``: thin crystals only (8 % of training);
* ``low dose``: 1e4-1e5 e- per image (training 1e5-1e8);
* ``abTEM``: simulated by abTEM (an independent code) from atomistic amorphous carbon, see
  ``benchmarks/calibration_abtem_set.py`` (one file per aberration setting: ``target`` or
  ``c10-c12``); also as defocus pairs (+20 nm of C10) combined with
  :func:`atomlens.calibrate.combine`.

For each: MAE of C10 and C30, vector MAE of C12, C21, C23 (after resolving the overall sign with
the truth: "sign-resolved"; and with the estimator's own sign), with and without 8-fold
test-time augmentation (TTA: the rotated and mirrored copies averaged), the sign accuracy of the
single image, how often the sign is called resolved (p >= 0.9) and how often it is right then,
and the share of sign-resolved errors within 1 and 2 sigma. A constant guess (all zeros) is the
baseline.
Speed: Ronchigrams per second from raw images to estimates (batches of 64, 2 threads).

    .venv/bin/python benchmarks/evaluate_calibration.py --abtem EVAL/abtem.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from atomlens.calibrate import combine, estimate_batch
from atomlens.calibrate.estimate import _predict, calibrated_sigma, load_estimator
from atomlens.calibrate.metrics import error_summary
from atomlens.calibrate.network import predict_grids
from atomlens.calibrate.preprocess import RonchigramInput
from atomlens.calibrate.training import simulate_examples
from atomlens.data import RonchigramSampler

RESULTS = Path(__file__).parent / "results"
TARGET = {"C10": (-500.0, 500.0), "C12": (0.0, 200.0), "C21": (0.0, 1000.0),
          "C23": (0.0, 1000.0), "C30": (-5e4, 5e4)}  # fmt: skip
BASE = RonchigramSampler()
ONLY_C10_C12 = {"C10": (-500.0, 500.0), "C12": (0.0, 200.0)}
SETS = {
    "C10, C12 only": (900_005, dataclasses.replace(BASE, ranges=ONLY_C10_C12)),
    "target": (900_000, dataclasses.replace(BASE, ranges=TARGET)),
    "full range": (900_001, BASE),
    "thick a-C": (900_002, dataclasses.replace(BASE, ranges=TARGET, crystal_fraction=0.0,
                                               amorphous_thickness=(200.0, 400.0))),
    "crystals": (900_003, dataclasses.replace(BASE, ranges=TARGET, crystal_fraction=1.0)),
    "low dose": (900_004, dataclasses.replace(BASE, ranges=TARGET, dose_per_image=(1e4, 1e5))),
}  # fmt: skip
COLUMNS = [
    ("mae_C10_nm_sign_resolved", "C10 [nm]"),
    ("slope_C10_sign_resolved", "C10 slope"),
    ("vector_mae_C12_nm_sign_resolved", "C12 [nm]"),
    ("vector_mae_C21_nm_sign_resolved", "C21 [nm]"),
    ("vector_mae_C23_nm_sign_resolved", "C23 [nm]"),
    ("mae_C30_um_sign_resolved", "C30 [µm]"),
    ("sign_accuracy", "sign acc."),
    ("resolved_share", "sign called"),
    ("resolved_accuracy", "acc. when called"),
    ("mae_C10_nm", "C10 own sign [nm]"),
    ("coverage_1sigma", "1σ cover"),
    ("coverage_2sigma", "2σ cover"),
]


def summarise(decoded: dict, truth: np.ndarray, threshold: float = 0.9) -> dict:
    """Metrics of single-image estimates (decoded network outputs with calibrated sigma)."""
    sign = np.where(decoded["p_plus"] >= 0.5, 1.0, -1.0)[:, None]
    mean = sign * decoded["mean"]
    summary = error_summary(mean, decoded["sigma"], truth)
    confidence = np.maximum(decoded["p_plus"], 1 - decoded["p_plus"])
    right = np.sign(mean[:, 0]) == np.sign(truth[:, 0])
    called = confidence >= threshold
    summary["resolved_share"] = float(called.mean())
    summary["resolved_accuracy"] = float(right[called].mean()) if called.any() else float("nan")
    return summary


def baseline(truth: np.ndarray) -> dict:
    """The constant guess: all coefficients zero."""
    return error_summary(np.zeros_like(truth), np.ones_like(truth), truth)


def decoded_for(images, sampling, network, config, augment=False) -> dict:
    items = [RonchigramInput(im, 200e3, 30.0, float(sampling)) for im in images]
    return _predict(items, network, config, 64, progress=False, augment=augment)[0]


def pairs_summary(first: dict, second: dict, offset: float, truth: np.ndarray) -> dict:
    """Metrics of defocus pairs combined with ``combine``."""
    shift = np.zeros((2, 8))
    shift[1, 0] = offset
    values, sigmas, probabilities = [], [], []
    for i in range(len(truth)):
        means = np.stack([first["mean"][i], second["mean"][i]])
        sigma = np.stack([first["sigma"][i], second["sigma"][i]])
        p_plus = np.array([first["p_plus"][i], second["p_plus"][i]])
        value, error, probability, _ = combine(means, sigma, p_plus, shift)
        values.append(value)
        sigmas.append(error)
        probabilities.append(probability)
    values, sigmas = np.array(values), np.array(sigmas)
    right = np.sign(values[:, 0]) == np.sign(truth[:, 0])
    summary = error_summary(values, sigmas, truth, sign_correct=right)
    called = np.array(probabilities) >= 0.9
    summary["resolved_share"] = float(called.mean())
    summary["resolved_accuracy"] = float(right[called].mean()) if called.any() else float("nan")
    return summary


def speed(images: np.ndarray, sampling: float, model: str) -> float:
    estimate_batch(images[:8], energy=200e3, semiangle=30.0, angular_sampling=sampling, model=model)
    start = time.perf_counter()
    estimate_batch(list(images), energy=200e3, semiangle=30.0, angular_sampling=sampling,
                   model=model, batch_size=64)  # fmt: skip
    return len(images) / (time.perf_counter() - start)


def table(rows: dict[str, dict]) -> str:
    head = "| test set | N | " + " | ".join(name for _, name in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for name, summary in rows.items():
        cells = [f"{summary.get(key, float('nan')):.2f}" for key, _ in COLUMNS]
        lines.append(f"| {name} | {int(summary['count'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ronchigram-aberrations", help="name or folder")
    parser.add_argument("--count", type=int, default=1024, help="per simulator test set")
    parser.add_argument("--abtem", type=Path, nargs="*", default=[],
                        help="npz file(s) from calibration_abtem_set.py")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/atomlens_calibration_eval"))
    parser.add_argument("--out", type=Path, default=RESULTS / "calibration_evaluation")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    network, config = load_estimator(str(args.model))
    rows, baselines = {}, {}
    for name, (seed, distribution) in SETS.items():
        count = args.count if name in ("target", "full range", "C10, C12 only") else args.count // 2
        cache = args.cache / f"{seed}_{count}.npz"
        if cache.exists():
            data = np.load(cache)
            grids, truth = data["grids"], data["truth"]
        else:
            grids, truth = simulate_examples(count, seed, distribution, progress=True)
            np.savez(cache, grids=grids, truth=truth)
        decoded = predict_grids(network, grids)
        decoded["sigma"] = calibrated_sigma(decoded, config)
        rows[name] = summarise(decoded, truth)
        if name in ("target", "C10, C12 only"):
            augmented = predict_grids(network, grids, augment=True)
            augmented["sigma"] = calibrated_sigma(augmented, config)
            rows[f"{name}, TTA"] = summarise(augmented, truth)
        baselines[name] = baseline(truth)
        print(name, json.dumps({k: round(rows[name][k], 3) for k, _ in COLUMNS}), flush=True)
    speeds = {}
    for path in args.abtem:
        data = np.load(path)
        sampling, truth = float(data["angular_sampling"]), data["coefficients"]
        only_c10_c12 = not np.any(truth[:, 3:])
        label = "abTEM a-C, " + ("C10, C12 only" if only_c10_c12 else "target")
        offset = float(data["pair_offset_A"])
        for augment, suffix in ((False, ""), (True, ", TTA")):
            first = decoded_for(data["images"], sampling, network, config, augment)
            second = decoded_for(data["pairs"], sampling, network, config, augment)
            rows[label + suffix] = summarise(first, truth)
            rows[label + ", defocus pairs" + suffix] = pairs_summary(first, second, offset, truth)
        baselines[label] = baseline(truth)
        speeds[f"abTEM {data['images'].shape[1]} px"] = speed(data["images"], sampling, args.model)
    from atomlens.physics import RonchigramSetup, simulate_ronchigrams
    from atomlens.physics.optics.aberrations import random_aberrations

    setup = RonchigramSetup(energy=200e3, semiangle=30.0, angular_sampling=0.5, size=256)
    sets = random_aberrations(128, TARGET, np.random.default_rng(5))
    raw = simulate_ronchigrams(setup, sets, seed=920_000)
    speeds["simulated 256 px"] = speed(np.concatenate([raw, raw]), 0.5, args.model)
    report = {
        "model": str(args.model),
        "training": config.get("training"),
        "sets": rows,
        "constant_guess": baselines,
        "speed_ronchigrams_per_s": speeds,
        "threads": args.threads,
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    text = [
        "# Ronchigram aberration estimator: held-out evaluation",
        "",
        f"Model `{args.model}`; command: `.venv/bin/python benchmarks/evaluate_calibration.py "
        f"--abtem ...` ({args.threads} threads). Errors after resolving the overall sign with "
        "the truth, except 'C10 own sign' (the estimator's single-image sign).",
        "",
        table(rows),
        "",
        "Constant guess (all zero): " + ", ".join(
            f"{name}: C10 {b['mae_C10_nm']:.1f} nm, C12 {b['vector_mae_C12_nm']:.1f} nm"
            for name, b in baselines.items()),
        "",
        "Speed, raw image to estimate: "
        + ", ".join(f"{k}: {v:.0f} Ronchigrams/s" for k, v in speeds.items()),
    ]  # fmt: skip
    args.out.with_suffix(".md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
