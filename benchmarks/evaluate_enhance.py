"""Evaluate unpaired enhancement (issue 14) on held-out simulated pairs and on real images.

Simulated images, never trained on:

- image quality: ``--count`` HAADF images of ``ImageSampler(modality="haadf", size=256,
  pixel_size=(0.12, 0.45), realism=True)`` (the realistic detector and scan chain) from seed
  2000000 (the enhancement bank used seeds 0-59 and 500000-500001). Each method's output is
  scored against the expected counts of the undistorted image
  (``atomlens.restore.expected_counts``) by PSNR and SSIM after the output's least-squares
  affine map onto the target (enhancement returns the contrast of clean simulations, not
  calibrated counts, so every method gets the same fit);
- column positions: the HAADF scenes of ``evaluate_locate.py`` (SrTiO3, GaN, MoS2, Au, Si at
  0.1 / 0.2 Å/px, 3 % vacancies, scene 0 of its seed 2000000) with shot noise at ``--doses``
  electrons per column. ``atomlens.locate`` (classical) runs on each output, and ``guided``:
  the candidates from the output, the fit on the raw counts (``locate(raw, guide=output)``,
  what ``atomlens locate --enhance`` does). Scores as ``evaluate_locate.py``: F1 within 0.35
  spacings, position RMSE over the radial Cramer-Rao bound.

- on abTEM images (``--abtem-cache``, an independent multislice simulator): the noise-free HAADF
  scenes of ``locate_abtem.py`` (SrTiO3, MoS2, Au, 80 x 80 probe positions at 0.3 Å), shot
  noise at ``--doses``, scored as there.

Methods: ``raw`` (the distorted image), ``gaussian`` (restore's classical baseline),
``restore`` (the supervised CGRDN, ``restore-compact``), ``enhance`` (the unpaired generator).

Real images (``--real-dir``, skipped when absent): each file's held-out or training role is
printed (the shipped model's config lists its training files). Per method:

- KID (kernel inception distance: the unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3) between 64 px canonical-scale patches of the output and clean
  simulated patches (``enhance.training.make_chunk`` seeds 2100000-2100003, never trained on).
  Features: the shipped column segmentor ``locate-unet`` (a network trained here on canonical
  8 px-spacing images): the mean and standard deviation of each of its four encoder levels
  (480 numbers per patch). Lower is closer to clean simulations; ``raw`` is the starting point.
- columns: ``locate`` on the raw image (the Poisson-weighted Gaussian fit with its position
  uncertainties) against ``locate`` on the output, matched within 0.35 of the spacing:
  matched, invented (found only on the output) and lost (found only on the raw image), the
  median radial shift [px] and the share of matched columns whose shift is within 2 standard
  errors of the raw fit (radial: sqrt(sigma_y^2 + sigma_x^2)).
Real images are scored on their central 512 x 512 px (the larger ones are 1024 px).

- panels: a 192 px crop of raw | restore | enhance, written to ``--panels``.

    .venv/bin/python benchmarks/evaluate_enhance.py --count 16 \\
        -o benchmarks/results/enhance_eval.json --panels docs/images/enhance \\
        --abtem-cache /tmp/abtem_haadf
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "2")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from atomlens.data import ImageSampler  # noqa: E402
from atomlens.enhance import enhance, load_enhancer  # noqa: E402
from atomlens.enhance.preprocess import PATCH  # noqa: E402
from atomlens.enhance.training import PIXEL_SIZE, _canonical_normalised, make_chunk  # noqa: E402
from atomlens.io import read  # noqa: E402
from atomlens.locate import estimate_spacing, locate  # noqa: E402
from atomlens.metrics import match_positions, ssim  # noqa: E402
from atomlens.restore import expected_counts, restore  # noqa: E402

SEED = 2_000_000
KID_SEEDS = range(2_100_000, 2_100_004)
METHODS = ("raw", "gaussian", "restore", "enhance")
CROP = 512  # [px] real images are scored on their central crop of this size
EDGE = 6.0  # [px] columns nearer the border are left out of every score


def run_method(method: str, image: np.ndarray, model: str) -> np.ndarray:
    if method == "raw":
        return image.astype(np.float32)
    if method == "gaussian":
        return restore(image, method="gaussian")
    if method == "restore":
        return restore(image, method="net", check_lattice=False)
    return enhance(image, model=model, check_lattice=False)


def affine(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    design = np.stack([output.ravel(), np.ones(output.size)], 1).astype(np.float64)
    coefficients = np.linalg.lstsq(design, target.ravel().astype(np.float64), rcond=None)[0]
    return (design @ coefficients).reshape(output.shape)


def inside(points: np.ndarray, shape: tuple[int, ...], margin: float = EDGE) -> np.ndarray:
    return np.all((points >= margin) & (points <= np.array(shape[-2:]) - 1 - margin), axis=1)


def located(image: np.ndarray, pixel_size: float, **options) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = locate(image, pixel_size=pixel_size, **options)
    points = table[["y", "x"]].to_numpy(float)
    sigma = np.hypot(table["sigma_y"].to_numpy(), table["sigma_x"].to_numpy())
    keep = inside(points, image.shape)
    return points[keep], sigma[keep]


def simulated(args: argparse.Namespace) -> list[dict]:
    """Image quality on realistic images: PSNR and SSIM against the expected counts."""
    sampler = ImageSampler(modality="haadf", size=args.size, pixel_size=PIXEL_SIZE, realism=True)
    records = []
    for index in range(args.count):
        sample = sampler.sample(index, SEED)
        target = expected_counts(sample.image, sample.clean)
        for method in METHODS:
            start = time.perf_counter()
            try:
                output = run_method(method, sample.image, args.model)
            except ValueError as error:  # no lattice to set the scale from, ...
                records.append({"index": index, "method": method, "refused": str(error)[:80]})
                continue
            fitted = affine(output, target)
            mse = float(np.mean((fitted - target) ** 2))
            records.append({
                "index": index, "method": method, "pixel_size": sample.pixel_size,
                "seconds": time.perf_counter() - start,
                "psnr": 10 * np.log10(np.ptp(target) ** 2 / max(mse, 1e-30)),
                "ssim": ssim(fitted, target),
            })  # fmt: skip
        print(f"realistic image {index + 1}/{args.count}", flush=True)
    return records


def scenes(args: argparse.Namespace) -> list[dict]:
    """Column positions on evaluate_locate's HAADF scenes (five materials, shot noise)."""
    from evaluate_locate import MATERIALS, make_scene, noisy, score

    records = []
    for index, material in enumerate(MATERIALS):
        pixel_size = (0.1, 0.2)[index % 2]
        scene = make_scene("haadf", material, 0, args.size, pixel_size)
        for d, dose in enumerate(args.doses):
            image, _ = noisy(scene, dose, d)
            for method in METHODS:
                try:
                    output = run_method(method, image, args.model)
                except ValueError as error:
                    records.append({"material": material, "dose_column": dose,
                                    "method": method, "refused": str(error)[:80]})  # fmt: skip
                    continue
                found, _ = located(output, pixel_size)
                guided, _ = located(image, pixel_size, guide=output)
                plain, steered = score(scene, found, dose), score(scene, guided, dose)
                records.append({
                    "material": material, "dose_column": dose, "method": method,
                    "f1": plain["f1"], "rmse_pm": plain["rmse_pm"],
                    "rmse_over_crb": plain["rmse_over_crb"], "guided_f1": steered["f1"],
                    "guided_rmse_over_crb": steered["rmse_over_crb"],
                })  # fmt: skip
        print(f"scene {material} done", flush=True)
    return records


def abtem_scenes(args: argparse.Namespace) -> list[dict]:
    """Column positions on HAADF images simulated by abTEM (``locate_abtem.py``'s cached
    noise-free scenes: SrTiO3, MoS2, Au at 0.3 Å/px), shot noise at ``--doses``."""
    from atomlens.metrics import cramer_rao_bound_pm, detection_scores
    from atomlens.physics.detectors import ShotNoise
    from locate_abtem import SCENES, truth

    records = []
    for m, material in enumerate(SCENES):
        cached = args.abtem_cache / f"{material}_80_0.3_1.npy"
        if not cached.exists():
            print(f"{cached} is absent: run locate_abtem.py --simulate-only first")
            continue
        clean = np.load(cached)
        true = truth(material, 80, 0.3)
        spacing = float(np.median(cKDTree(true).query(true, k=2)[0][:, 1]))
        margin = max(4.0, spacing)  # abTEM wraps the box

        def inner(points: np.ndarray) -> np.ndarray:
            return points[((points >= margin) & (points <= 79 - margin)).all(1)]  # noqa: B023

        true = inner(true)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            width = float(locate(clean, pixel_size=0.3)["width"].median()) * 0.3
        for d, dose in enumerate(args.doses):
            dose_pixel = dose * len(true) / (80 - 2 * margin) ** 2
            image, _ = ShotNoise(dose_per_pixel=dose_pixel).apply(
                clean, np.random.default_rng([SEED, m, d])
            )
            crb = np.sqrt(2) * cramer_rao_bound_pm(dose, width, 0.3)
            for method in METHODS:
                output = run_method(method, image, args.model)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    found = locate(output, pixel_size=0.3)[["y", "x"]].to_numpy(float)
                    guided = locate(image, pixel_size=0.3, guide=output)[["y", "x"]].to_numpy()
                plain = detection_scores(inner(found), true, 0.35 * spacing)
                steered = detection_scores(inner(guided), true, 0.35 * spacing)
                records.append({
                    "material": material, "dose_column": dose, "method": method,
                    "f1": plain["f1"], "rmse_over_crb": plain["rmse"] * 30 / crb,
                    "guided_f1": steered["f1"],
                    "guided_rmse_over_crb": steered["rmse"] * 30 / crb,
                })  # fmt: skip
        print(f"abTEM {material} done", flush=True)
    return records


class Features:
    """Pooled encoder features of the shipped column segmentor (locate-unet)."""

    def __init__(self):
        from atomlens.zoo import load_model

        self.network, _ = load_model("locate-unet")
        self.network.eval()

    @torch.no_grad()
    def __call__(self, patches: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(patches, np.float32))[:, None]
        pooled = []
        for level, block in enumerate(self.network.down):
            x = block(x if level == 0 else torch.nn.functional.max_pool2d(x, 2))
            pooled += [x.mean((2, 3)), x.std((2, 3))]
        return torch.cat(pooled, 1).numpy().astype(np.float64)


def kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the kernel (x.y / d + 1)^3 (Binkowski et al. 2018)."""
    d = a.shape[1]
    kaa, kbb, kab = ((x @ y.T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m, n = len(a), len(b)
    return float(
        (kaa.sum() - np.trace(kaa)) / (m * (m - 1))
        + (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
        - 2 * kab.mean()
    )


def patches_of(image: np.ndarray, spacing: float, stride: int = 32) -> np.ndarray:
    canonical = _canonical_normalised(image, spacing)
    rows, cols = canonical.shape
    return np.stack([
        canonical[y : y + PATCH, x : x + PATCH]
        for y in range(0, rows - PATCH + 1, stride)
        for x in range(0, cols - PATCH + 1, stride)
    ])  # fmt: skip


def column_agreement(raw: np.ndarray, output: np.ndarray, pixel_size: float) -> dict:
    reference, sigma = located(raw, pixel_size)
    found, _ = located(output, pixel_size)
    spacing = float(np.median(cKDTree(reference).query(reference, k=2)[0][:, 1]))
    found_index, reference_index = match_positions(found, reference, 0.35 * spacing)
    shift = np.hypot(*(found[found_index] - reference[reference_index]).T)
    within = shift <= 2 * sigma[reference_index]
    matched = len(found_index)
    return {
        "columns_raw": len(reference), "matched": matched,
        "invented": len(found) - matched, "lost": len(reference) - matched,
        "median_shift_px": float(np.median(shift)) if len(shift) else float("nan"),
        "within_2_sigma": float(within.mean()) if len(within) else float("nan"),
        "median_sigma_px": float(np.median(sigma)),
    }  # fmt: skip


def real(args: argparse.Namespace, trained_on: list[str]) -> list[dict]:
    folder = Path(args.real_dir)
    if not folder.is_dir():
        print(f"{folder} is absent: real images skipped")
        return []
    features = Features()
    clean = np.concatenate([make_chunk(seed, chunk_size=64)["clean"] for seed in KID_SEEDS])
    clean_features = features(clean[:, 0].astype(np.float32))
    records = []
    for name in args.real:
        data = read(folder / name)
        image = np.asarray(data.data, np.float32)
        rows, cols = image.shape
        y, x = max(0, (rows - CROP) // 2), max(0, (cols - CROP) // 2)
        image = image[y : y + CROP, x : x + CROP]  # the centre: columns matched in memory
        pixel_size = float(data.pixel_size[0]) if data.pixel_size else 0.1
        spacing = estimate_spacing(image)
        role = "training" if name in trained_on else "held out"
        outputs = {}
        for method in ("raw", "restore", "enhance"):
            outputs[method] = run_method(method, image, args.model)
            record = {
                "file": name,
                "role": role,
                "method": method,
                "kid": kid(features(patches_of(outputs[method], spacing)), clean_features),
            }
            if method != "raw":
                record |= column_agreement(image, outputs[method], pixel_size)
            records.append(record)  # fmt: skip
            print(json.dumps(record), flush=True)
        if args.panels:
            panels(args.panels, name, image, outputs, data.pixel_size)
    return records


def panels(folder: Path, name: str, image: np.ndarray, outputs: dict, pixel_size) -> None:
    from atomlens.report import save_panels

    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = image.shape
    size = min(192, rows, cols)
    y, x = (rows - size) // 2, (cols - size) // 2
    crop = (slice(y, y + size), slice(x, x + size))
    save_panels(
        folder / f"{Path(name).stem}.png",
        [outputs[m][crop] for m in ("raw", "restore", "enhance")],
        ["raw", "restore (supervised)", "enhance (unpaired)"],
        None if pixel_size is None else float(pixel_size[0]),
        panel_size=2.4,
    )


def summary(records: list[dict], keys: list[str]) -> str:
    import pandas as pd

    table = pd.DataFrame([r for r in records if "refused" not in r])
    return table.groupby("method", sort=False)[keys].median().round(3).to_markdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="enhance-haadf")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--doses", type=float, nargs="+", default=[50.0, 200.0, 1000.0],
                        help="electrons per column of the column scenes")  # fmt: skip
    parser.add_argument("--real-dir", default=str(Path(__file__).parents[2] / "shared/data/real"))
    parser.add_argument(
        "--real",
        nargs="+",
        default=["SrTiO3_ADF_cropped.hdf5", "Si110_HAADF.png", "hrstem_example.ser",
                 "example_Se_implanted_MoS2.dm3"],
    )  # fmt: skip
    parser.add_argument("--panels", type=Path)
    parser.add_argument(
        "--abtem-cache",
        type=Path,
        help="folder of locate_abtem.py's noise-free abTEM scenes (its --simulate-only)",
    )
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    config = load_enhancer(args.model).config
    start = time.perf_counter()
    sim = simulated(args)
    columns = scenes(args)
    abtem = abtem_scenes(args) if args.abtem_cache else []
    reals = real(args, config.get("real_training_files", []))
    result = {
        "command": "benchmarks/evaluate_enhance.py " + " ".join(argv or []),
        "model": args.model,
        "trained_on": config.get("real_training_files"),
        "minutes": (time.perf_counter() - start) / 60,
        "simulated": sim,
        "columns": columns,
        "abtem": abtem,
        "real": reals,
    }
    args.output.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(summary(sim, ["psnr", "ssim", "seconds"]))
    import pandas as pd

    keys = ["f1", "rmse_over_crb", "guided_f1", "guided_rmse_over_crb"]
    for records in (columns, abtem):
        table = pd.DataFrame([r for r in records if "refused" not in r])
        if len(table):
            print(table.groupby(["dose_column", "method"], sort=False)[keys].median().round(3)
                  .to_markdown())  # fmt: skip
    if reals:
        print(pd.DataFrame(reals).round(4).to_markdown(index=False))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
