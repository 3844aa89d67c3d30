"""Reproduce paper 000's aberration regressors (VAE, AlexNet, ResNet18) on its interference images.

Run: ``.venv/bin/python benchmarks/reproduce_paper000.py --scale cpu`` (``smoke`` checks that it
runs in about a minute; ``gpu`` is the paper's scale, for a machine with a GPU: ``--device cuda``).
Writes ``benchmarks/results/paper000_reproduction_<scale>.{md,json}`` (e.g. ``..._cpu.md``) with the
paper's Table 1 beside ours.

Setting (the paper gives no units or ranges, so these are assumptions, stated in the table):
200 kV, the paper-000 interference image (``atomlens.physics.imaging.interference``) with a 10 mrad
illumination aperture, random beam tilt and divergence, Poisson and dark-current noise. C1 dataset:
C1 uniform in [0, 100] nm with A1 = 0 (the paper's C1 runs "from small to large"; the model cannot
tell +C1 from -C1 anyway: the image of -chi is the point reflection of a point-symmetric disc);
A1 dataset: |A1| uniform in [0, 50] nm with a random angle, C1 = 0, the regressed value being |A1|
(the paper predicts one number per image). Training
follows the paper: MAE loss, Adam, StepLR (x 0.1 every 10 epochs); training and validation sets
are drawn with different seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from atomlens.nn import AlexNetRegressor, ResNet18Regressor, VAERegressor, vae_loss
from atomlens.physics import InterferenceSetup, interference_images
from atomlens.train import fit

RESULTS = Path(__file__).parent / "results"
PAPER = {  # Table 1 of paper 000: validation MAE (units not given in the paper)
    ("VAE", "C1", 10): 19.25,
    ("AlexNet", "C1", 10): 16.15,
    ("ResNet18", "C1", 10): 9.45,
    ("ResNet18", "C1", 20): 6.03,
    ("ResNet18", "C1", 50): 4.76,
    ("ResNet18", "A1", 50): 6.66,
}
C1_MAX_NM = 100.0
A1_MAX_NM = 50.0


@dataclass(frozen=True)
class Scale:
    size: int  # image size [px]
    train: int  # training images per dataset
    validation: int
    epochs: dict[str, int]  # per model; the paper's are 10 (VAE, AlexNet) and 50 (ResNet18)


SCALES = {
    "smoke": Scale(64, 64, 32, {"VAE": 1, "AlexNet": 1, "ResNet18": 1}),
    "cpu": Scale(96, 2000, 500, {"VAE": 10, "AlexNet": 10, "ResNet18": 10}),
    "gpu": Scale(512, 25050, 2500, {"VAE": 10, "AlexNet": 10, "ResNet18": 50}),
}


def make_dataset(task: str, count: int, size: int, seed: int) -> TensorDataset:
    """Interference images (N, 1, size, size), standardised, and targets (N, 1) [nm]."""
    rng = np.random.default_rng([seed, 0 if task == "C1" else 1])
    setup = InterferenceSetup(size=size, angular_sampling=0.05 * 512 / size)
    if task == "C1":
        target = rng.uniform(0, C1_MAX_NM, count)
        images = interference_images(setup, target * 10, None, seed=seed)
    else:
        target = rng.uniform(0, A1_MAX_NM, count)
        angle = rng.uniform(0, 2 * math.pi, count)
        images = interference_images(
            setup, np.zeros(count), target * 10 * np.exp(1j * angle), seed=seed
        )
    images = (images - images.mean(axis=(1, 2), keepdims=True)) / images.std(
        axis=(1, 2), keepdims=True
    )
    return TensorDataset(
        torch.from_numpy(images[:, None]).float(), torch.from_numpy(target[:, None]).float()
    )


def build(name: str, size: int) -> torch.nn.Module:
    if name == "VAE":
        return VAERegressor(size=size, latent=32)
    if name == "AlexNet":
        return AlexNetRegressor()
    return ResNet18Regressor()


def train_and_evaluate(name, task, scale, device, progress) -> dict:
    torch.manual_seed(0)
    train = make_dataset(task, scale.train, scale.size, seed=1)
    validation = make_dataset(task, scale.validation, scale.size, seed=2)
    model = build(name, scale.size).to(device)

    def step(model, batch):
        images, target = (t.to(device) for t in batch)
        if name == "VAE":
            output = model(images)
            return vae_loss(output, images, target), {"mae": F.l1_loss(output[0], target).item()}
        loss = F.l1_loss(model(images), target)
        return loss, {"mae": loss.item()}

    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=10, gamma=0.1)
    start = time.perf_counter()
    history = fit(
        model,
        step,
        DataLoader(train, batch_size=32, shuffle=True),
        epochs=scale.epochs[name],
        optimiser=optimiser,
        scheduler=scheduler,
        validation_batches=DataLoader(validation, batch_size=64),
        progress=progress,
    )
    return {
        "model": name,
        "task": task,
        "epochs": scale.epochs[name],
        "val_mae_nm": history.last("val_mae"),
        "minutes": (time.perf_counter() - start) / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scale = SCALES[args.scale]
    runs = [("VAE", "C1"), ("AlexNet", "C1"), ("ResNet18", "C1"), ("ResNet18", "A1")]
    rows = []
    for name, task in runs:
        rows.append(train_and_evaluate(name, task, scale, args.device, not args.no_progress))
        print(rows[-1])
    lines = [
        f"Scale `{args.scale}`: {scale.size} x {scale.size} px, {scale.train} training and "
        f"{scale.validation} validation images per task, device {args.device}. C1 in "
        f"[0, {C1_MAX_NM:.0f}] nm, |A1| in [0, {A1_MAX_NM:.0f}] nm (assumed; the paper gives "
        "none). Predicting the mean would give MAE 25 nm (C1) and 12.5 nm (A1).",
        "",
        "| model | task | epochs (ours) | MAE ours [nm] | paper MAE (epochs) | minutes |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        paper = [
            f"{v} ({e})" for (m, t, e), v in PAPER.items() if m == row["model"] and t == row["task"]
        ]
        lines.append(
            f"| {row['model']} | {row['task']} | {row['epochs']} | "
            f"{row['val_mae_nm']:.2f} | {', '.join(paper)} | {row['minutes']:.1f} |"
        )
    lines += [
        "",
        f"Command: `.venv/bin/python benchmarks/reproduce_paper000.py --scale {args.scale}`.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"paper000_reproduction_{args.scale}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"paper000_reproduction_{args.scale}.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
