"""How far are sampled training images from real ones? Before and after ``realism=True``.

Run: ``.venv/bin/python benchmarks/sampler_realism.py [--data ../shared/data/real] [--quick]
[--ablation]`` (about 7 min on one core, 7 more with ``--ablation``). Writes
``benchmarks/results/sampler_realism.{json,md}`` and the figures
``docs/images/restore/realism_*.png``.

Real images: the five files of ../shared/data/real (HAADF / ADF / ABF STEM). For each, three
sampled sets of ``ImageSampler`` images with the real image's STEM detector (HAADF or ABF):

- ``old``: the sampler as it was, ``realism=False`` and pixel sizes 0.10 - 0.25 Å;
- ``plain``: ``realism=False`` at the real image's pixel size;
- ``realistic``: ``realism=True`` at the real image's pixel size;
- ``plain_material``, ``realistic_material``: the same two with the real image's own material and
  zone axis in place of ``random_structure`` (not for the .ser, whose specimen is undocumented),
  so that the classifier compares imaging rather than material.

Measured: (a) panels real | plain | realistic at matched pixel size; (b) noise variance against
local mean (residual of a Gaussian smoothing, binned by the smoothed intensity); (c) radially
averaged power spectra of standardised 128 px crops, and their mean absolute log10 distance from
the real spectrum; (d) a two-sample classifier test: a small CNN learns to tell standardised
64 x 64 real patches from sampled ones; real patches come from the left 60 % of each image for
training and from the right part (a 32 px gap apart) for testing; the held-out accuracy is 0.5
when the two cannot be told apart.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import ndimage

from atomlens.data import ImageSampler
from atomlens.data.realism import CHANCES
from atomlens.data.samplers import random_stem_imaging, simulate_realistic_image
from atomlens.io import read
from atomlens.physics import SimulatedImage, field, realistic_stem, simulate_image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "images" / "restore"
SIZE = 128  # sampled image size [px]
PATCH = 64  # classifier patch size [px]
CONDITIONS = ("old", "plain", "realistic")
#: Conditions with the real image's own material and zone axis (images whose material is known).
MATERIAL_CONDITIONS = ("plain_material", "realistic_material")
ALL_CONDITIONS = CONDITIONS + MATERIAL_CONDITIONS
#: Material and zone axis of the real images where known (the .ser specimen is not documented).
MATERIAL = {
    "example_Se_implanted_MoS2.dm3": ("MoS2", (0, 0, 1)),
    "SrTiO3_ADF_cropped.hdf5": ("SrTiO3", (0, 0, 1)),
    "SrTiO3_ABF_cropped.hdf5": ("SrTiO3", (0, 0, 1)),
    "Si110_HAADF.png": ("Si", (1, 1, 0)),
}
#: Short names of the realism effects for panel titles.
SHORT = {
    "amorphous_layer": "a-C layer",
    "amorphize_regions": "amorphous regions",
    "thickness_gradient": "wedge",
    "smooth_background": "background",
    "probe_tail": "probe tail",
    "mistilt_blur": "mistilt",
}
#: Si {111} plane spacing [Å], which calibrates the PNG (its strongest Fourier peaks).
SI_111 = 3.1355


@dataclass
class Real:
    name: str
    label: str
    modality: str  # "haadf" or "abf"
    image: np.ndarray  # float64
    pixel_size: float  # [Å]
    source: str  # where the pixel size comes from


def si_pixel_size(image: np.ndarray) -> float:
    """Pixel size [Å] of a Si [110] image from its strongest Fourier peak, taken as {111}."""
    rows, cols = image.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))
    power = np.abs(np.fft.fftshift(np.fft.fft2((image - image.mean()) * window))) ** 2
    y, x = np.mgrid[:rows, :cols]
    q = np.hypot((y - rows // 2) / rows, (x - cols // 2) / cols)
    power[(q < 1 / 60) | (q > 1 / 10)] = 0
    peak = np.unravel_index(np.argmax(power), power.shape)
    near = (np.abs(y - peak[0]) <= 1) & (np.abs(x - peak[1]) <= 1)
    qy = (power[near] * (y[near] - rows // 2)).sum() / power[near].sum() / rows
    qx = (power[near] * (x[near] - cols // 2)).sum() / power[near].sum() / cols
    return SI_111 * math.hypot(qy, qx)


def load_real(folder: Path) -> list[Real]:
    """The real images, as float64, with their pixel size and detector."""
    table = [
        ("hrstem_example.ser", "HRSTEM .ser (HAADF)", "haadf"),
        ("example_Se_implanted_MoS2.dm3", "MoS2 DM3 (ADF, 60 kV)", "haadf"),
        ("SrTiO3_ADF_cropped.hdf5", "SrTiO3 ADF", "haadf"),
        ("SrTiO3_ABF_cropped.hdf5", "SrTiO3 ABF", "abf"),
        ("Si110_HAADF.png", "Si [110] HAADF PNG", "haadf"),
    ]
    found = []
    for name, label, modality in table:
        path = folder / name
        if not path.is_file():
            print(f"skipping {path}: not found")
            continue
        data = read(path)
        image = np.asarray(data.data, np.float64)
        if data.pixel_size is not None:
            pixel, source = float(data.pixel_size[0]), "file"
        else:
            pixel, source = si_pixel_size(image), "Si {111} Fourier peak"
        found.append(Real(name, label, modality, image, pixel, source))
    return found


def sampler(real: Real, condition: str) -> ImageSampler:
    """The sampler of one condition for one real image."""
    if condition == "old":
        return ImageSampler(modality=real.modality, size=SIZE, pixel_size=(0.1, 0.25))
    matched = (real.pixel_size, real.pixel_size)
    return ImageSampler(
        modality=real.modality,
        size=SIZE,
        pixel_size=matched,
        realism=condition == "realistic",
    )


def conditions_of(real: Real) -> tuple[str, ...]:
    return ALL_CONDITIONS if real.name in MATERIAL else CONDITIONS


def material_sample(
    real: Real, condition: str, index: int, seed: int, chances: dict | None = None
) -> SimulatedImage:
    """A sampled image of the real image's own material and zone axis at its pixel size.

    The same steps as ``ImageSampler(modality=..., realism=...)``, with ``random_structure``
    replaced by a crystal of that material (random rotation and position, 10 - 60 Å thick, one
    layer for MoS2) and no defects: the classifier then compares imaging, not material.
    """
    rng = np.random.default_rng([seed, index])
    name, zone = MATERIAL[real.name]
    size = {"thickness": float(rng.uniform(10, 60))} if name != "MoS2" else {"cells": 1}
    atoms = field(
        name,
        (SIZE, SIZE),
        real.pixel_size,
        zone_axis=zone,
        rotation="random",
        shift="random",
        rng=rng,
        **size,
    )
    imaging = random_stem_imaging(rng, real.modality.upper())
    if condition == "realistic_material":
        return simulate_realistic_image(atoms, real.pixel_size, imaging, rng, chances=chances)
    chain = realistic_stem(rng)
    return simulate_image(atoms, real.pixel_size, imaging, distortions=chain, rng=rng)


def draw(real: Real, condition: str, index: int, seed: int) -> SimulatedImage:
    if condition in MATERIAL_CONDITIONS:
        return material_sample(real, condition, index, seed)
    return sampler(real, condition).sample(index, seed=seed)


def standardise(patch: np.ndarray) -> np.ndarray:
    return (patch - patch.mean()) / max(patch.std(), 1e-12)


def quadrants(image: np.ndarray) -> list[np.ndarray]:
    """The four non-overlapping PATCH x PATCH quadrants of a SIZE image."""
    return [image[i : i + PATCH, j : j + PATCH] for i in (0, PATCH) for j in (0, PATCH)]


def real_patches(
    image: np.ndarray, count: int, part: str, rng: np.random.Generator, size: int = PATCH
) -> list[np.ndarray]:
    """Random size x size patches of the left 60 % ("train") or the right part ("test"),
    with 32 px between the two so no test patch overlaps a training one; or anywhere ("any")."""
    rows, cols = image.shape
    split = int(0.6 * cols)
    if part == "train":
        low, high = 0, split - size
    elif part == "any":
        low, high = 0, cols - size
    else:
        low, high = split + 32, cols - size
    if high < low:
        raise ValueError(f"image of {cols} px is too narrow for {size} px {part} patches")
    ys = rng.integers(0, rows - size + 1, count)
    xs = rng.integers(low, high + 1, count)
    return [image[y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)]


# ------------------------------------------------------------------------------------------------
# (b) noise variance against mean, (c) power spectra


def noise_curve(image: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Binned local mean and residual variance of the standardised image.

    The image is standardised (minus its median, over its standard deviation), so detector gain
    and offset drop out; the local mean is a Gaussian smoothing (sigma 1.5 px) and the residual,
    image minus local mean, holds the noise (and some lattice signal when columns are only a few
    pixels apart). Bins are quantiles of the local mean.
    """
    image = np.asarray(image, float)
    z = (image - np.median(image)) / max(image.std(), 1e-12)
    local = ndimage.gaussian_filter(z, 1.5)
    residual = z - local
    edges = np.quantile(local, np.linspace(0.02, 0.98, bins + 1))
    which = np.digitize(local, edges) - 1
    centres, variances = [], []
    for k in range(bins):
        chosen = which == k
        if chosen.sum() > 50:
            centres.append(local[chosen].mean())
            variances.append(residual[chosen].var())
    return np.array(centres), np.array(variances)


def noise_numbers(curves: list[tuple[np.ndarray, np.ndarray]], images: list[np.ndarray]) -> dict:
    """Median over images of the residual (noise) fraction of the variance and of the slope of
    residual variance against local mean (both in standardised units)."""
    fractions, slopes = [], []
    for (centres, variances), image in zip(curves, images, strict=True):
        z = (image - np.median(image)) / max(np.std(image), 1e-12)
        fractions.append(float((z - ndimage.gaussian_filter(z, 1.5)).var()))
        if len(centres) >= 3:
            slopes.append(float(np.polyfit(centres, variances, 1)[0]))
    return {
        "noise_fraction": float(np.median(fractions)),
        "variance_slope": float(np.median(slopes)) if slopes else float("nan"),
    }


def radial_spectrum(image: np.ndarray, pixel_size: float, q: np.ndarray) -> np.ndarray:
    """Radially averaged power of the standardised, Hann-windowed image at frequencies q [1/Å];
    normalised to unit sum over q; NaN beyond the image's Nyquist frequency."""
    image = standardise(np.asarray(image, float))
    rows, cols = image.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))
    power = np.abs(np.fft.fft2(image * window)) ** 2
    ky = np.fft.fftfreq(rows, pixel_size)[:, None]
    kx = np.fft.fftfreq(cols, pixel_size)[None, :]
    radius = np.hypot(ky, kx).ravel()
    step = 1 / (min(rows, cols) * pixel_size)
    index = np.floor(radius / step).astype(int)
    sums = np.bincount(index, power.ravel())
    counts = np.bincount(index)
    profile = sums[1:] / np.maximum(counts[1:], 1)
    centres = (np.arange(1, len(sums)) + 0.5) * step
    nyquist = 1 / (2 * pixel_size)
    inside = centres <= nyquist
    out = np.interp(q, centres[inside], profile[inside], left=np.nan, right=np.nan)
    return out / np.nansum(out)


def spectral_distance(real: np.ndarray, sampled: np.ndarray) -> float:
    """Mean |log10 real - log10 sampled| over the frequencies both cover [decades]."""
    ok = np.isfinite(real) & np.isfinite(sampled) & (real > 0) & (sampled > 0)
    # renormalise over the common range so a narrower band is compared fairly
    r, s = real[ok] / real[ok].sum(), sampled[ok] / sampled[ok].sum()
    return float(np.mean(np.abs(np.log10(r) - np.log10(s))))


# ------------------------------------------------------------------------------------------------
# (d) classifier two-sample test


class PatchClassifier(torch.nn.Module):
    """Three conv layers, global average pooling, one logit (real vs sampled)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(32, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and quarter turns (the lattice orientation is no clue)."""
    k = int(torch.randint(4, (1,), generator=generator))
    batch = torch.rot90(batch, k, (2, 3))
    if torch.rand(1, generator=generator) < 0.5:
        batch = torch.flip(batch, (3,))
    return batch


def classifier_test(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    seed: int,
) -> tuple[float, np.ndarray]:
    """Train on (patches, labels) with 1 = real and return held-out accuracy and predictions."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(train[0]).float()[:, None]
    y = torch.from_numpy(train[1]).float()
    model = PatchClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            chosen = order[start : start + 64]
            logits = model(augment(x[chosen], generator))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[chosen])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        predicted = (model(torch.from_numpy(test[0]).float()[:, None]) > 0).numpy()
    return float((predicted == (test[1] > 0.5)).mean()), predicted


def two_sample_test(
    pooled: list[Real],
    items: dict[str, list],
    real_train: dict[str, list],
    real_test: dict[str, list],
    n_train: int,
    epochs: int,
    repeats: int,
) -> dict:
    """Held-out accuracy of the patch classifier, real images ``pooled`` against their sampled
    ``items`` (the first ``n_train`` items train, the rest are held out)."""

    def pool(part: str) -> tuple[np.ndarray, ...]:
        patches, labels, owner = [], [], []
        for k, r in enumerate(pooled):
            reals_ = real_train[r.name] if part == "train" else real_test[r.name]
            chosen = items[r.name][:n_train] if part == "train" else items[r.name][n_train:]
            fakes = [p for item in chosen for p in quadrants(item.image)]
            patches += [standardise(p) for p in reals_] + [standardise(p) for p in fakes]
            labels += [1] * len(reals_) + [0] * len(fakes)
            owner += [k] * (len(reals_) + len(fakes))
        return np.array(patches, np.float32), np.array(labels, np.float32), np.array(owner)

    train, test = pool("train"), pool("test")
    accuracies, per_image, per_class = [], [], []
    is_real = test[1] > 0.5
    for repeat in range(repeats):
        accuracy, predicted = classifier_test(train[:2], test[:2], epochs=epochs, seed=repeat)
        accuracies.append(accuracy)
        correct = predicted == is_real
        per_class.append([float(correct[is_real].mean()), float(correct[~is_real].mean())])
        per_image.append(
            [
                [float(correct[(test[2] == k) & c].mean()) for c in (is_real, ~is_real)]
                for k in range(len(pooled))
            ]
        )
    return {
        "accuracy_mean": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "accuracies": accuracies,
        # how often a held-out real patch is called real, a sampled one sampled
        "real_patches_called_real": float(np.mean([row[0] for row in per_class])),
        "sampled_patches_called_sampled": float(np.mean([row[1] for row in per_class])),
        "per_image": {
            r.name: float(np.mean([np.mean(row[k]) for row in per_image]))
            for k, r in enumerate(pooled)
        },
        "per_image_real_called_real": {
            r.name: float(np.mean([row[k][0] for row in per_image])) for k, r in enumerate(pooled)
        },
        "per_image_sampled_called_sampled": {
            r.name: float(np.mean([row[k][1] for row in per_image])) for k, r in enumerate(pooled)
        },
        "train_patches": len(train[1]),
        "test_patches": len(test[1]),
    }


# ------------------------------------------------------------------------------------------------
# figures


def show(ax, image: np.ndarray, title: str) -> None:
    low, high = np.percentile(image, [0.5, 99.5])
    ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def panel_figure(real: Real, crop: np.ndarray, samples: dict[str, list], path: Path) -> None:
    """real | plain | realistic | realistic (| realistic, own material), SIZE px at the real
    pixel size."""
    own = "realistic_material" in samples
    fig = Figure(figsize=(10.5 if own else 8.4, 2.4), layout="constrained")
    axes = fig.subplots(1, 5 if own else 4)
    show(axes[0], crop, f"real: {real.label}")
    show(axes[1], samples["plain"][0].image, "sampled, realism=False")
    shown = samples["realistic"][:2] + (samples["realistic_material"][:1] if own else [])
    for k, (ax, item) in enumerate(zip(axes[2:], shown, strict=True)):
        on = [SHORT[name] for name, v in item.metadata["realism"].items() if v]
        title = ("own material, " if k == 2 else "") + "realism=True: "
        show(ax, item.image, textwrap.fill(title + (", ".join(on) or "no effect drawn"), 42))
        ax.title.set_fontsize(6)
    fig.suptitle(f"{SIZE} px at {real.pixel_size:.3f} Å/px", fontsize=8)
    fig.savefig(path, dpi=80)


def curves_figure(reals, noise, spectra, q_axes, path_noise: Path, path_spectra: Path) -> None:
    colours = {
        "real": "k",
        "old": "#1f77b4",
        "plain": "#ff7f0e",
        "realistic": "#2ca02c",
        "realistic_material": "#d62728",
    }
    fig = Figure(figsize=(3 * len(reals), 2.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(reals)))
    for ax, real in zip(axes, reals, strict=True):
        for key in ("real", "plain", "realistic"):
            for k, (c, v) in enumerate(noise[real.name][key]):
                ax.plot(
                    c,
                    v,
                    "o-" if key == "real" else ".-",
                    color=colours[key],
                    ms=3,
                    lw=1,
                    alpha=1 if key == "real" else 0.5,
                    label=key if k == 0 else None,
                )
        ax.set_title(real.label, fontsize=8)
        ax.set_xlabel("local mean (standardised)", fontsize=7)
        ax.set_ylabel("residual variance (standardised)", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    fig.savefig(path_noise, dpi=80)
    fig = Figure(figsize=(3 * len(reals), 2.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(reals)))
    for ax, real in zip(axes, reals, strict=True):
        q = q_axes[real.name]
        for key in ("real", *CONDITIONS, "realistic_material"):
            if key not in spectra[real.name]:
                continue
            ax.semilogy(
                q,
                spectra[real.name][key],
                color=colours[key],
                lw=1.5 if key == "real" else 1,
                label=key,
            )
        ax.set_title(real.label, fontsize=8)
        ax.set_xlabel("spatial frequency [1/Å]", fontsize=7)
        ax.set_ylabel("normalised power", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[-1].legend(fontsize=6)
    fig.savefig(path_spectra, dpi=80)


# ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument(
        "--quick", action="store_true", help="few images, a smoke test; writes to the temp folder"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also the classifier with each realism effect off in turn (about 7 min more)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    reals = load_real(args.data)
    if not reals:
        print(f"no real images in {args.data}; nothing to compare.")
        return
    n_train, n_test = (6, 2) if args.quick else (32, 12)  # sampled images per real image
    epochs, repeats = (2, 1) if args.quick else (8, 2)
    rng = np.random.default_rng(args.seed)
    # a quick run writes into a temporary folder, never over the documented results
    images = Path(tempfile.gettempdir()) / "sampler_realism_quick" if args.quick else IMAGES
    results_dir = images if args.quick else RESULTS
    images.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)

    samples: dict[str, dict[str, list]] = {}
    timing: dict[str, list[float]] = {c: [] for c in ALL_CONDITIONS}
    for k, real in enumerate(reals):
        samples[real.name] = {}
        for condition in conditions_of(real):
            items = []
            for index in range(n_train + n_test):
                start = time.perf_counter()
                # a stream per real image (the old sets would otherwise repeat for every HAADF)
                items.append(draw(real, condition, index, 1000 * args.seed + k))
                timing[condition].append(time.perf_counter() - start)
            samples[real.name][condition] = items
        print(f"sampled for {real.name}", flush=True)

    results: dict = {"real": {}, "timing_s_per_image": {}, "classifier": {}}
    for condition in ALL_CONDITIONS:
        results["timing_s_per_image"][condition] = {
            "mean": float(np.mean(timing[condition])),
            "max": float(np.max(timing[condition])),
        }
    noise, spectra, q_axes = {}, {}, {}
    for real in reals:
        crop_rng = np.random.default_rng(1)
        crops = real_patches(real.image, 16, "any", crop_rng, SIZE)
        panel_figure(
            real, crops[0], samples[real.name], images / f"realism_{Path(real.name).stem}.png"
        )
        q = np.linspace(0, 0.97 / (2 * real.pixel_size), 40)[1:]
        q_axes[real.name] = q
        spectra[real.name] = {
            "real": np.nanmean([radial_spectrum(c, real.pixel_size, q) for c in crops], 0)
        }
        noise[real.name] = {"real": [noise_curve(real.image)]}
        record = {
            "pixel_size_A": real.pixel_size,
            "pixel_size_source": real.source,
            "modality": real.modality,
            "shape": list(real.image.shape),
            "noise": {"real": noise_numbers(noise[real.name]["real"], [real.image])},
            "spectral_distance_decades": {},
        }
        for condition in conditions_of(real):
            items = samples[real.name][condition]
            curves = [noise_curve(item.image) for item in items[:8]]
            noise[real.name][condition] = curves
            record["noise"][condition] = noise_numbers(curves, [i.image for i in items[:8]])
            profiles = [radial_spectrum(item.image, item.pixel_size, q) for item in items]
            spectra[real.name][condition] = np.nanmean(profiles, 0)
            record["spectral_distance_decades"][condition] = spectral_distance(
                spectra[real.name]["real"], spectra[real.name][condition]
            )
        results["real"][real.name] = record
    curves_figure(
        reals, noise, spectra, q_axes, images / "realism_noise.png", images / "realism_spectra.png"
    )

    # (d) classifier: real patches (train: left 60 %, test: right part) against each condition
    per_train, per_test = 4 * n_train, 4 * n_test  # real patches per image, as many as sampled
    real_train = {r.name: real_patches(r.image, per_train, "train", rng) for r in reals}
    real_test = {r.name: real_patches(r.image, per_test, "test", rng) for r in reals}
    for condition in ALL_CONDITIONS:
        # material conditions: only the images whose material is known
        pooled = [r for r in reals if condition in conditions_of(r)]
        items = {r.name: samples[r.name][condition] for r in pooled}
        record = two_sample_test(pooled, items, real_train, real_test, n_train, epochs, repeats)
        results["classifier"][condition] = record
        print(
            f"classifier {condition}: {record['accuracy_mean']:.3f} "
            f"+- {record['accuracy_std']:.3f}",
            flush=True,
        )
    if args.ablation:
        # realistic_material with one effect switched off at a time
        pooled = [r for r in reals if r.name in MATERIAL]
        results["ablation"] = {"all effects": results["classifier"]["realistic_material"]}
        for effect in CHANCES:
            items = {
                r.name: [
                    material_sample(
                        r, "realistic_material", index, 1000 * args.seed + k, {effect: 0.0}
                    )
                    for index in range(n_train + n_test)
                ]
                for k, r in enumerate(reals)
                if r.name in MATERIAL
            }
            record = two_sample_test(pooled, items, real_train, real_test, n_train, epochs, repeats)
            results["ablation"][f"without {effect}"] = record
            print(f"ablation without {effect}: {record['accuracy_mean']:.3f}", flush=True)

    results["settings"] = {
        "size_px": SIZE,
        "patch_px": PATCH,
        "sampled_images_per_real": {"train": n_train, "test": n_test},
        "epochs": epochs,
        "repeats": repeats,
        "seed": args.seed,
        "quick": args.quick,
        "ablation": args.ablation,
    }
    name = "sampler_realism"
    (results_dir / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (results_dir / f"{name}.md").write_text(markdown(results, reals))
    print(markdown(results, reals))


def markdown(results: dict, reals: list[Real]) -> str:
    c = results["classifier"]
    header = "| real image | pixel size [Å] | " + " | ".join(ALL_CONDITIONS) + " |"
    rule = "|---|---|" + "---|" * len(ALL_CONDITIONS)

    def cell(table: dict, name: str, text) -> str:
        return text(table[name]) if name in table else "-"

    lines = [
        "Sampled against real images at 128 px; old = ImageSampler(realism=False), 0.10-0.25 Å/px; "
        "plain = realism=False at the real pixel size; realistic = realism=True at the real pixel "
        "size; *_material = the same with the real image's own material and zone axis instead of "
        "random_structure (not for the .ser, whose specimen is not documented).",
        "",
        "Classifier held-out accuracy (0.5 = indistinguishable), mean ± std over "
        f"{results['settings']['repeats']} trainings; per image: real patches called real / "
        "sampled patches called sampled (balanced accuracy is their mean):",
        "",
        header,
        rule,
    ]
    for r in reals:
        rec = results["real"][r.name]
        row = " | ".join(
            cell(
                c[k]["per_image_real_called_real"],
                r.name,
                lambda v, k=k, r=r: (
                    f"{v:.2f} / {c[k]['per_image_sampled_called_sampled'][r.name]:.2f}"
                ),
            )
            for k in ALL_CONDITIONS
        )
        lines.append(f"| {r.label} | {rec['pixel_size_A']:.3f} | {row} |")
    row = " | ".join(
        f"{c[k]['real_patches_called_real']:.2f} / {c[k]['sampled_patches_called_sampled']:.2f}"
        for k in ALL_CONDITIONS
    )
    lines.append(f"| pooled, per class | | {row} |")
    row = " | ".join(
        f"**{c[k]['accuracy_mean']:.3f} ± {c[k]['accuracy_std']:.3f}**" for k in ALL_CONDITIONS
    )
    lines += [f"| pooled, accuracy | | {row} |", ""]
    lines += [
        "Power-spectrum distance (mean |Δ log10 power| over the shared frequencies, decades):",
        "",
        header,
        rule,
    ]
    for r in reals:
        rec = results["real"][r.name]
        d = rec["spectral_distance_decades"]
        row = " | ".join(cell(d, k, lambda v: f"{v:.2f}") for k in ALL_CONDITIONS)
        lines.append(f"| {r.label} | {rec['pixel_size_A']:.3f} | {row} |")
    lines += [
        "",
        "Noise: fraction of the standardised image's variance left in the residual of a "
        "sigma 1.5 px smoothing / slope of residual variance against local mean "
        "(sampled: median over 8 images):",
        "",
        "| real image | real | " + " | ".join(ALL_CONDITIONS) + " |",
        "|---|---|" + "---|" * len(ALL_CONDITIONS),
    ]
    for r in reals:
        n = results["real"][r.name]["noise"]
        cells = " | ".join(
            cell(n, k, lambda v: f"{v['noise_fraction']:.2f} / {v['variance_slope']:+.2f}")
            for k in ("real", *ALL_CONDITIONS)
        )
        lines.append(f"| {r.label} | {cells} |")
    if "ablation" in results:
        lines += [
            "",
            "Ablation (own material, realism=True with one effect off; pooled over the four "
            "images of known material): held-out accuracy, real called real / sampled called "
            "sampled:",
            "",
            "| effects | accuracy | per class |",
            "|---|---|---|",
        ]
        for name, rec in results["ablation"].items():
            lines.append(
                f"| {name} | {rec['accuracy_mean']:.3f} ± {rec['accuracy_std']:.3f} | "
                f"{rec['real_patches_called_real']:.2f} / "
                f"{rec['sampled_patches_called_sampled']:.2f} |"
            )
    t = results["timing_s_per_image"]
    lines += [
        "",
        f"Time per sampled image at {SIZE} px, one thread [s, mean / max]: "
        + ", ".join(f"{k} {t[k]['mean']:.3f} / {t[k]['max']:.3f}" for k in ALL_CONDITIONS),
        "",
        "Command: `.venv/bin/python benchmarks/sampler_realism.py"
        + (" --ablation" if "ablation" in results else "")
        + "`.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
