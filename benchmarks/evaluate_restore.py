"""Evaluate image restoration (issue 10, part 4) on held-out simulated sets.

Sets: ``--count`` clean images per modality (HAADF, ABF, HRTEM) from
``atomlens.data.ImageSampler(modality, size, distortions="none")`` with seeds from 1000000 (the
held-out streams; training never uses them). Each clean image is distorted at every dose and
under every condition, with its own noise stream ``default_rng([seed, index, dose, condition])``:

- ``shot``: Poisson shot noise alone;
- ``+jitter``: scan jitter (0.3 px along x, 0.1 px along y, row correlation 0.5), then shot noise;
- ``+flyback``: fly-back (1.5 px at the line start, decaying over 10 px), then shot noise;
- ``+lag``: shot noise, then detector lag (time constant 1 px);
- ``realistic``: the modality's whole random chain (``realistic_stem`` / ``realistic_tem``) at
  that dose: drift, jitter, fly-back, scan speed, PMT gain noise, lag, line jumps, read-out
  noise, black pixels and zingers (STEM); MTF, gain, dark current, read-out noise, X-ray spikes,
  dead and hot pixels, quantisation (TEM).

HRTEM has no scan: ``shot`` and ``realistic`` only.

Dose: electrons per column = mean electrons per pixel x pixels per column (image area over the
number of columns in the image); ``--doses`` lists them. The target of every method is the
undistorted image in the units of the distorted one: exactly ``scale * clean`` for the shot,
jitter, fly-back and lag conditions, a least-squares line of the clean image with outliers
clipped for the realistic chains (see :func:`target_of`; ``expected_counts`` of the restore
package fails below about 1 e-/px).

Per method and set: PSNR and SSIM against the target (data range of the target); the columns
found by one simple finder (``atomlens.locate.classical.locate_columns``) matched one to one to
the true columns: radial position RMSE [pm] against the Cramer-Rao bound (radial, sqrt(2) x the
per-axis bound, with the dose per column and the median Gaussian width fitted on the clean
image), recall, and the error of the intensity integrated in a disc around every true column.
True columns are those the finder locates on the clean image (light columns invisible in HAADF
are left out); the finder's result on the target itself is the row ``truth`` (its floor).
Column contrast: dark for ABF, bright for HAADF, for HRTEM dark where the clean image is below
its median at the true columns. Finder spacing: the 10th percentile of the true columns'
nearest-neighbour distances (0.8-4 Å).

Methods run through ``atomlens.restore.restore``; ``net`` is the verb's default (the network,
then the Wiener filter it pilots), ``net-alone`` the network's output alone
(``wiener_step=False``); a method that raises (``net`` before weights
ship, ``bm3d`` without the package) is skipped and the reason printed. ``bm3d*`` is BM3D with
its noise level tuned on the truth: the factor of the estimated noise (0.7, 1, 1.4, 2, 2.8, 4)
with the best PSNR on the first image of each set, applied to every image of the set (an upper
bound of BM3D). ``tk_r_em`` is the peer of paper 001 in its own environment
(``benchmarks/peers/tk_r_em_peer.py``), skipped when that environment is missing. ``input``
is the distorted image itself.

Speed: seconds per 1024 x 1024 image (a noisy HAADF image tiled), each method once after one
warm-up on a small image, on one CPU core (process affinity and every thread pool set to one
thread, so methods that would use more threads are compared fairly).

    .venv/bin/python benchmarks/evaluate_restore.py --methods gaussian,wiener,nlm,bm3d,net \\
        --count 4 --size 128 -o benchmarks/results/restore_eval.json
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from atomlens.data import ImageSampler  # noqa: E402
from atomlens.locate.classical import locate_columns  # noqa: E402
from atomlens.locate.metrics import column_errors  # noqa: E402
from atomlens.metrics import cramer_rao_bound_pm, match_positions, psnr, ssim  # noqa: E402
from atomlens.physics.detectors import (  # noqa: E402
    Compose,
    DetectorLag,
    FlyBack,
    ScanJitter,
    ShotNoise,
    realistic_stem,
    realistic_tem,
)
from atomlens.restore import classical  # noqa: E402

SEED = 1_000_000
#: A model name or folder for ``net`` instead of the shipped one (``--model``).
NET_MODEL: str | None = None
RESULTS = Path(__file__).parent / "results"
PEERS = Path(__file__).parent / "peers"
STEM_CONDITIONS = ("shot", "+jitter", "+flyback", "+lag", "realistic")
TEM_CONDITIONS = ("shot", "realistic")
BM3D_FACTORS = (0.7, 1.0, 1.4, 2.0, 2.8, 4.0)
WORKED: set[str] = set()  # methods that restored at least one image


# --------------------------------------------------------------------------------------------
# Sets
# --------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """One clean held-out image and what the column metrics need from it."""

    modality: str
    index: int
    clean: np.ndarray
    pixel_size: float
    columns: pd.DataFrame  # the visible columns where the finder puts them on the clean image [px]
    n_columns: int  # all true columns inside the image
    spacing: float  # finder spacing [Å]
    width: float  # median fitted column width on the clean image [Å]
    dark: bool
    bias_pm: float  # RMSE of the finder on the clean image against the atom positions [pm]
    structure: str = ""


@dataclass
class Item:
    """A distorted image of a scene with its target."""

    scene: Scene
    condition: str
    dose_column: float  # [e- per column]
    dose_pixel: float  # [e-/px]
    image: np.ndarray
    target: np.ndarray
    crb_pm: float  # radial Cramer-Rao bound [pm]
    restored: dict = field(default_factory=dict)


def make_scene(
    modality: str,
    index: int,
    size: int,
    pixel_range: tuple[float, float],
    realism: bool = False,
) -> Scene:
    """Draw a clean image and find its visible columns (the finder on the clean image).

    With ``realism`` the clean image carries the specimen and optics effects of real images
    (amorphous layers, wedge, mistilt, probe tails, background; ``ImageSampler(realism=True)``).
    """
    sampler = ImageSampler(
        modality=modality, size=size, distortions="none", pixel_size=pixel_range, realism=realism
    )
    sample = sampler.sample(index, seed=SEED)
    clean, px = sample.clean.astype(np.float64), float(sample.pixel_size)
    table = sample.atoms
    inside = table[(table.y >= 0) & (table.y <= size - 1) & (table.x >= 0) & (table.x <= size - 1)]
    positions = inside[["y", "x"]].to_numpy(float)
    if len(positions) > 1:
        nn = cKDTree(positions).query(positions, k=2)[0][:, 1] * px
        spacing = float(np.clip(np.percentile(nn, 10), 0.8, 4.0))
    else:
        spacing = 2.0
    at_columns = clean[np.rint(positions[:, 0]).astype(int), np.rint(positions[:, 1]).astype(int)]
    dark = modality == "abf" or (
        modality == "hrtem" and len(positions) > 0 and np.mean(at_columns) < np.median(clean)
    )
    width = min(0.4, spacing / 3)
    found = locate_columns(clean, px, spacing=spacing, width=width, dark=dark)
    fi, ti = match_positions(found[["y", "x"]].to_numpy(), positions, 0.5 * spacing / px)
    visible = found.iloc[fi][["y", "x"]].reset_index(drop=True)
    fitted = found.iloc[fi]["sigma"].to_numpy()
    offsets = visible.to_numpy() - positions[ti]
    bias = float(np.sqrt(np.mean(np.sum(offsets**2, axis=1))) * px * 100) if len(fi) else math.nan
    return Scene(
        modality=modality,
        index=index,
        clean=clean,
        pixel_size=px,
        columns=visible,
        n_columns=max(len(positions), 1),
        spacing=spacing,
        width=float(np.median(fitted)) if len(fitted) else width,
        dark=bool(dark),
        bias_pm=bias,
        structure=str(sample.metadata.get("structure", {}).get("kind", "")),
    )


def chain(modality: str, condition: str, dose: float, rng: np.random.Generator) -> Compose:
    """The distortion chain of a condition at a dose [e-/px]."""
    shot = ShotNoise(dose_per_pixel=dose)
    if condition == "shot":
        return Compose([shot])
    if condition == "+jitter":
        return Compose([ScanJitter(sigma_x=0.3, sigma_y=0.1, correlation=0.5), shot])
    if condition == "+flyback":
        return Compose([FlyBack(amplitude=1.5, decay=10.0), shot])
    if condition == "+lag":
        return Compose([shot, DetectorLag(tau=1.0)])
    if condition == "realistic" and modality == "hrtem":
        return realistic_tem(rng, dose_per_pixel_range=(dose, dose))
    if condition == "realistic":
        return realistic_stem(rng, dose_per_pixel_range=(dose, dose))
    raise ValueError(f"unknown condition {condition!r}")


def target_of(image: np.ndarray, clean: np.ndarray, records: list, condition: str) -> np.ndarray:
    """The restoration target: the undistorted image in the units of the distorted one.

    For the conditions with shot noise and scan or lag distortions only, the expected counts are
    exactly ``scale * clean`` (``ShotNoise``'s record; jitter, fly-back and lag keep the mean).
    For the realistic chains the target is ``a * clean + b`` fitted by least squares twice, the
    second time without the pixels more than 5 standard deviations of the first fit's residual
    away (zingers, X-ray spikes, hot and dead pixels). ``expected_counts`` fits the same line
    but measures the spread by the median absolute deviation, which is 0 or nearly so when most
    pixels count 0 electrons: below about 1 e-/px its line is far off, so it is not used here.
    """
    if condition != "realistic":
        scale = dict(records)["ShotNoise"]["scale"]
        return scale * clean
    x, y = clean.ravel(), image.ravel()
    keep = np.ones(x.size, dtype=bool)
    for _ in range(2):
        design = np.stack([x[keep], np.ones(int(keep.sum()))], axis=1)
        (slope, offset), *_ = np.linalg.lstsq(design, y[keep], rcond=None)
        residual = y - (slope * x + offset)
        keep = np.abs(residual) <= 5.0 * max(float(residual[keep].std()), 1e-12)
    return slope * clean + offset


def make_item(scene: Scene, condition: str, dose_column: float, d: int, c: int) -> Item:
    size = scene.clean.shape[0] * scene.clean.shape[1]
    dose_pixel = dose_column * scene.n_columns / size
    rng = np.random.default_rng([SEED, scene.index, d, c])
    image, records = chain(scene.modality, condition, dose_pixel, rng).apply(scene.clean, rng)
    image = image.astype(np.float64)
    target = target_of(image, scene.clean, records, condition)
    crb = math.sqrt(2) * cramer_rao_bound_pm(dose_column, scene.width, scene.pixel_size)
    return Item(scene, condition, dose_column, dose_pixel, image, target, crb)


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


def restore_one(method: str, item: Item) -> np.ndarray:
    if method == "input":
        return item.image
    if importlib.util.find_spec("atomlens.restore.restore") is not None:
        from atomlens.restore import restore

        network = method in ("net", "net-alone")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return restore(
                item.image,
                modality=item.scene.modality,
                method="net" if network else method,
                pixel_size=item.scene.pixel_size,
                model=NET_MODEL if network else None,
                wiener_step=method != "net-alone",
            )
    return classical.CLASSICAL[method](item.image)


def run_bm3d_best(items: list[Item]) -> float:
    """BM3D with the noise factor that maximises PSNR on the first item; returns the factor."""
    first = items[0]
    scores = {}
    for factor in BM3D_FACTORS:
        restored = (
            first.restored["bm3d"] if factor == 1.0 and "bm3d" in first.restored
            else classical.bm3d(first.image, sigma=factor)
        )  # fmt: skip
        scores[factor] = (psnr(restored, first.target), restored)
    best = max(scores, key=lambda f: scores[f][0])
    for k, item in enumerate(items):
        if k == 0:
            item.restored["bm3d*"] = scores[best][1]
        elif best == 1.0 and "bm3d" in item.restored:
            item.restored["bm3d*"] = item.restored["bm3d"]
        else:
            item.restored["bm3d*"] = classical.bm3d(item.image, sigma=best)
    return best


def run_peer(items: list[Item], skipped: dict) -> None:
    """tk_r_em on the set's images, as one stack per image size."""
    if "tk_r_em" in skipped:
        return
    try:
        spec = importlib.util.spec_from_file_location("tk_r_em_peer", PEERS / "tk_r_em_peer.py")
        if spec is None or spec.loader is None:
            raise ImportError("benchmarks/peers/tk_r_em_peer.py not found")
        peer = importlib.util.module_from_spec(spec)
        sys.modules.setdefault("tk_r_em_peer", peer)
        spec.loader.exec_module(peer)
        stack = np.stack([item.image for item in items]).astype(np.float32)
        restored, _ = peer.restore_with_tk_r_em(stack, items[0].scene.modality)
    except Exception as error:
        skipped["tk_r_em"] = f"{type(error).__name__}: {str(error)[:300]}"
        return
    for item, out in zip(items, restored, strict=True):
        item.restored["tk_r_em"] = np.asarray(out, dtype=np.float64)


def run_methods(items: list[Item], methods: list[str], skipped: dict, failed: dict) -> dict:
    """Restore every item with every method; returns the tuned BM3D factor if any.

    A method that raises on the first image it ever sees is unavailable (``skipped``, with the
    reason); a later error counts in ``failed`` (method -> [count, last reason]) and leaves that
    image out of the method's scores.
    """
    info = {}
    for method in methods:
        if method in skipped or method in ("bm3d*", "tk_r_em"):
            continue
        for item in items:
            try:
                item.restored[method] = np.asarray(restore_one(method, item), dtype=np.float64)
                WORKED.add(method)
            except Exception as error:
                reason = f"{type(error).__name__}: {str(error)[:300]}"
                if method not in WORKED:
                    skipped[method] = reason
                    break
                count = failed.get(method, [0, ""])[0] + 1
                failed[method] = [count, reason]
    if "bm3d*" in methods and "bm3d" not in skipped:
        info["bm3d_factor"] = run_bm3d_best(items)
    if "tk_r_em" in methods:
        run_peer(items, skipped)
    return info


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def score(item: Item, restored: np.ndarray) -> dict:
    """Every metric of one restoration; NaN for an output that is not finite."""
    scene = item.scene
    names = ("psnr", "ssim", "rmse_pm", "recall", "precision", "intensity_error")
    if not np.all(np.isfinite(restored)):
        return dict.fromkeys(names, math.nan)
    result = {"psnr": psnr(restored, item.target), "ssim": ssim(restored, item.target)}
    errors = column_errors(
        restored,
        scene.columns,
        scene.pixel_size,
        dark=scene.dark,
        truth=item.target,
        spacing=scene.spacing,
        width=min(0.4, scene.spacing / 3),
    )
    result.update({name: errors[name] for name in names[2:]})
    return result


def summarise(records: list[dict]) -> list[dict]:
    frame = pd.DataFrame(records)
    keys = ["modality", "condition", "dose_column", "method"]
    rows = []
    for key, group in frame.groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        row["images"] = len(group)
        for name in ("psnr", "ssim", "recall", "precision", "intensity_error"):
            values = group[name].replace([np.inf], np.nan)
            row[name] = float(values.mean()) if values.notna().any() else math.nan
        row["rmse_pm"] = float(group["rmse_pm"].median()) if group["rmse_pm"].notna().any() else (
            math.nan
        )  # fmt: skip
        row["crb_pm"] = float(group["crb_pm"].median())
        row["bias_pm"] = float(group["bias_pm"].median())
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------


def single_core() -> str:
    """Pin the process to one core and one thread per pool; returns what was done."""
    done = []
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        done.append(f"affinity core {core}")
    except (AttributeError, OSError):
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        done.append("threadpools 1")
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
        done.append("torch 1 thread")
    except ImportError:
        pass
    return ", ".join(done)


def measure_speed(methods: list[str], image: np.ndarray, skipped: dict) -> dict:
    """Seconds per image of the given size for each method (one warm-up on a 64 px crop)."""
    speed = {}
    dummy = Item(
        Scene("haadf", 0, image, 0.15, pd.DataFrame({"y": [], "x": []}), 1, 1.0, 0.4, False, 0.0),
        "shot", 0.0, 0.0, image, image, math.nan,
    )  # fmt: skip
    small = Item(dummy.scene, "shot", 0.0, 0.0, image[:64, :64], image[:64, :64], math.nan)
    for method in methods:
        if method in skipped or method in ("input", "bm3d*"):
            continue
        if method == "tk_r_em":
            try:
                spec = importlib.util.spec_from_file_location(
                    "tk_r_em_peer", PEERS / "tk_r_em_peer.py"
                )
                peer = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(peer)
                _, seconds = peer.restore_with_tk_r_em(image.astype(np.float32), "haadf", threads=1)
                speed[method] = float(np.mean(seconds))
            except Exception as error:
                skipped.setdefault("tk_r_em", f"{type(error).__name__}: {str(error)[:300]}")
            continue
        try:
            restore_one(method, small)
            start = time.perf_counter()
            restore_one(method, dummy)
            speed[method] = time.perf_counter() - start
        except Exception as error:
            skipped.setdefault(method, f"{type(error).__name__}: {str(error)[:300]}")
    return speed


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _cell(value: float, digits: int) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def markdown(rows: list[dict], methods: list[str], speed: dict, settings: dict, notes: list) -> str:
    frame = pd.DataFrame(rows)
    shown = [m for m in ["input", *methods] if m in set(frame.method)]
    lines = [
        "# Restoration on held-out simulated sets",
        "",
        f"Command: `{settings['command']}`",
        "",
        f"{settings['count']} image(s) per modality, {settings['size']} px, pixel sizes "
        f"{settings['pixel_size'][0]}-{settings['pixel_size'][1]} Å, seed {SEED}; "
        f"elapsed {settings['elapsed_s']:.0f} s.",
        "",
        *notes,
        "",
    ]
    tables = [
        ("PSNR [dB] against the undistorted image (higher is better)", "psnr", 2, False),
        ("SSIM (higher is better)", "ssim", 3, False),
        ("Column position RMSE [pm], radial, median over images, against the finder's positions on "
         "the undistorted image; CRB: the radial Cramer-Rao bound; bias: the finder on the "
         "undistorted image against the atoms", "rmse_pm", 1, True),
        ("Column recall (share of visible true columns found within half a spacing)",
         "recall", 2, False),
        ("Column-intensity error (RMS of disc sums against the truth's, relative)",
         "intensity_error", 3, False),
    ]  # fmt: skip
    keys = ["modality", "condition", "dose_column"]
    for title, metric, digits, with_crb in tables:
        columns = shown
        header = ["modality", "condition", "e-/column", *columns]
        header += ["CRB", "bias"] if with_crb else []
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---"] * len(header)) + "|")
        for key, group in frame.groupby(keys, sort=False):
            by = group.set_index("method")
            cells = [str(key[0]), str(key[1]), f"{key[2]:g}"]
            cells += [_cell(by[metric].get(m, math.nan), digits) for m in columns]
            if with_crb:
                cells.append(_cell(float(group["crb_pm"].iloc[0]), 2))
                cells.append(_cell(float(group["bias_pm"].iloc[0]), 1))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    average = frame.groupby("method", sort=False)[["psnr", "ssim"]].mean()
    lines += ["## Mean over all sets", "", "| method | PSNR [dB] | SSIM | s per 1024² image |"]
    lines.append("|---|---|---|---|")
    for method in [m for m in shown if m in average.index]:
        seconds = speed.get(method.rstrip("*"), math.nan) if method != "input" else math.nan
        lines.append(
            f"| {method} | {_cell(average.loc[method, 'psnr'], 2)} | "
            f"{_cell(average.loc[method, 'ssim'], 3)} | {_cell(seconds, 2)} |"
        )
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="gaussian,wiener,nlm,bm3d,net",
                        help="comma list of gaussian, wiener, nlm, bm3d, net, tk_r_em; bm3d "
                             "adds bm3d* (tuned on the truth) unless --no-bm3d-best")  # fmt: skip
    parser.add_argument("--count", type=int, default=4, help="clean images per modality")
    parser.add_argument("--size", type=int, default=256, help="image size [px]")
    parser.add_argument("--modalities", default="haadf,abf,hrtem")
    parser.add_argument("--doses", default="5,50,500,5000", help="electrons per column")
    parser.add_argument("--model", help="model name or folder for net (default: the shipped one)")
    parser.add_argument("--conditions", default=",".join(STEM_CONDITIONS))
    parser.add_argument("--pixel-size", type=float, nargs=2, default=None,
                        help="pixel size range [Å]; the sampler default if absent")  # fmt: skip
    parser.add_argument("--no-bm3d-best", action="store_true")
    parser.add_argument("--realism", action="store_true",
                        help="clean images with real-specimen effects (realism=True)")  # fmt: skip
    parser.add_argument("--speed-size", type=int, default=1024,
                        help="image size of the speed test [px]; 0 skips it")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "restore_eval.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    global NET_MODEL
    NET_MODEL = args.model
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if "bm3d" in methods and not args.no_bm3d_best:
        methods.insert(methods.index("bm3d") + 1, "bm3d*")
    doses = [float(d) for d in args.doses.split(",")]
    conditions = [c.strip() for c in args.conditions.split(",")]
    pixel_range = tuple(args.pixel_size) if args.pixel_size else ImageSampler().pixel_size
    skipped: dict[str, str] = {}
    failed: dict[str, list] = {}
    records, factors = [], []
    for modality in args.modalities.split(","):
        scenes = [
            make_scene(modality, i, args.size, pixel_range, args.realism) for i in range(args.count)
        ]
        allowed = TEM_CONDITIONS if modality == "hrtem" else STEM_CONDITIONS
        for c, condition in enumerate(allowed):
            if condition not in conditions:
                continue
            for d, dose in enumerate(doses):
                items = [make_item(s, condition, dose, d, c) for s in scenes]
                info = run_methods(items, ["input", *methods], skipped, failed)
                if "bm3d_factor" in info:
                    factors.append([modality, condition, dose, info["bm3d_factor"]])
                for item in items:
                    base = {"modality": modality, "condition": condition, "dose_column": dose,
                            "image": item.scene.index, "crb_pm": item.crb_pm,
                            "bias_pm": item.scene.bias_pm}  # fmt: skip
                    for method, restored in item.restored.items():
                        records.append({**base, "method": method, **score(item, restored)})
                done = time.perf_counter() - started
                print(f"{modality} {condition} {dose:g} e-/column: {done:.0f} s", flush=True)
    speed, threads = {}, ""
    if args.speed_size:
        scene = make_scene("haadf", 0, min(args.size, 256), pixel_range)
        noisy = make_item(scene, "shot", 100.0, 0, 0).image
        reps = math.ceil(args.speed_size / noisy.shape[0])
        large = np.tile(noisy, (reps, reps))[: args.speed_size, : args.speed_size]
        threads = single_core()
        speed = measure_speed(methods, large, skipped)
    elapsed = time.perf_counter() - started
    rows = summarise(records)
    command = "python benchmarks/evaluate_restore.py " + " ".join(sys.argv[1:] if argv is None
                                                                   else argv)  # fmt: skip
    settings = {
        "command": command, "count": args.count, "size": args.size,
        "modalities": args.modalities.split(","), "doses_e_per_column": doses,
        "conditions": conditions, "pixel_size": list(pixel_range), "seed": SEED,
        "realism": args.realism,
        "elapsed_s": elapsed, "speed_size": args.speed_size, "speed_threads": threads,
    }  # fmt: skip
    notes = [f"- skipped `{m}`: {reason}" for m, reason in skipped.items()]
    notes += [f"- `{m}` failed on {n} image(s), left out of its scores: {reason}"
              for m, (n, reason) in failed.items()]  # fmt: skip
    if factors:
        notes.append("- bm3d* noise factors (modality, condition, e-/column, factor): " + "; ".join(
            f"{m} {c} {d:g}: {f}" for m, c, d, f in factors))  # fmt: skip
    if speed:
        notes.append(f"- speed: {args.speed_size}² px, {threads}: " + ", ".join(
            f"{m} {s:.2f} s" for m, s in speed.items()))  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {"settings": settings, "skipped": skipped, "failed": failed, "bm3d_factors": factors,
              "speed_s_per_image": speed, "rows": rows}  # fmt: skip
    args.output.write_text(json.dumps(result, indent=1, default=float))
    text = markdown(rows, [m for m in methods if m not in skipped], speed, settings, notes)
    args.output.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
