"""Evaluate column localisation (issue 11, part 5) on held-out simulated images.

Scenes: crystals from ``atomlens.physics.field`` (SrTiO3 [001], GaN [0001], MoS2 monolayer, Au
[001], Si [110]; random in-plane rotation; 40 Å thick) with 3 % of the projected columns removed
(``vacancies(whole_columns=True)``), ``--size`` px square, pixel sizes ``--pixel-sizes``, imaged as
HAADF and ABF STEM (``STEMImaging``) and HRTEM (``HRTEMImaging``, defaults), noise-free; each
clean image then gets Poisson noise at every dose with its own stream. Seeds start at 2000000:
no training stream uses them.

Truth: the projected columns of the atom table inside the image, at least half a
nearest-neighbour distance (and 4 px) from its edge; found columns nearer the edge are left out
too (Atomap never finds columns within its separation of the edge, atomlens fits them on their
visible part). In HAADF
a column counts as visible when its summed atomic number is at least a quarter of the
largest (the Z^1.7 contrast leaves O beside Sr and Ti-O at under 7 % of their height); in ABF
and HRTEM every column counts. Fainter HAADF columns with at least a tenth of the largest
summed Z (O in SrTiO3, a fifth of Sr) are matched but not scored, like the columns at the
edge: at 5000 e-/column they stand 48 standard errors above noise in the image averaged over
its unit cells, and finding them is neither a miss nor a false column. (Before 2026-11-30
they were false columns; nothing found them then.)

Dose: electrons per column = mean electrons per pixel x pixels per visible column (the image
area over the number of visible columns), as ``evaluate_restore.py`` counts it.

Per method and set: one-to-one matching within 0.35 x the median nearest-neighbour distance of
the true columns (``atomlens.metrics.match_positions``; columns within half a spacing of the
edge are matched but not scored, so a column found just across that margin is neither missed
nor false; until 2026-11-30 both sides were cut at the margin before matching, which counted
such a column twice): precision, recall, F1, Jaccard, chamfer
distance [pm] (mean of both directions' mean nearest-neighbour distances), and the radial
position RMSE of the matched columns [pm] against their radial Cramer-Rao bound: each true
column's Gaussian (fitted on the clean image) in the expected counts of the image, background
and neighbours included (``atomlens.metrics.cramer_rao_bound_columns``), the root of the mean
squared bound of the matched columns. (Until 2026-11-30 the bound was that of an isolated
column with no background carrying the whole dose per column, about 1.4 x lower.)

Methods:

- ``classical``: ``atomlens.locate(image, pixel_size, modality)``, everything else estimated
  from the image;
- ``classical+spacing``: the same given ``spacing=`` the true median nearest-neighbour distance
  (what a microscopist who knows the material can pass), which separates detection from the
  spacing estimate;
- ``unet``: ``method="unet"``, the U-Net segmentor's candidates (AtomAI's Segmentor
  architecture, trained here by ``atomlens train locate``), refined like the classical path;
- ``structure``: ``method="structure"``, the structure-conditioned network (paper 002) given
  the scene's material and zone axis;
- ``unet+spacing``, ``structure+spacing``: the same given the true spacing;
- ``+precise`` after any of them (``classical+precise``): ``precise=True``, every HAADF
  column fitted again in a wider window once found (not in the default ``--methods``; its
  own run and table in docs/locate.md);
- ``atomap``: Atomap's standard workflow (peer, its own environment,
  ``benchmarks/peers/atomap_peer.py``), given the separation 0.45 x the true nearest-neighbour
  distance (information ``classical`` does not get) and, for ABF and dark HRTEM, the image
  inverted (max - image, the peer's ``dark=True``); skipped when its environment is missing.
  Atomap needs 10-20 s per 256 px image on one core, so it runs on the modalities and doses
  ``--atomap-modalities`` and ``--atomap-doses`` name (HAADF at 50 and 1000 e-/column by
  default).

    .venv/bin/python benchmarks/evaluate_locate.py --count 1 -o benchmarks/results/locate_eval.json
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from atomlens.locate import locate  # noqa: E402
from atomlens.metrics import (  # noqa: E402
    cramer_rao_bound_columns,
    detection_scores,
    match_positions,
)
from atomlens.physics import HRTEMImaging, STEMImaging, field, simulate_image  # noqa: E402
from atomlens.physics.detectors import ShotNoise  # noqa: E402
from atomlens.physics.structures.defects import vacancies  # noqa: E402

SEED = 2_000_000
MATERIALS = ("SrTiO3", "GaN", "MoS2", "Au", "Si")
ZONES = {"SrTiO3": (0, 0, 1), "GaN": (0, 0, 0, 1), "MoS2": (0, 0, 1), "Au": (0, 0, 1),
         "Si": (1, 1, 0)}  # fmt: skip
MODALITIES = ("haadf", "abf", "hrtem")
EDGE = 4.0  # [px]
#: HAADF columns with this share of the largest summed Z, but under a quarter, are faint:
#: matched but not scored.
FAINT = 0.1


@dataclass
class Scene:
    modality: str
    material: str
    index: int
    pixel_size: float  # [Å]
    clean: np.ndarray
    truth: np.ndarray  # (n, 2) visible columns (y, x) [px]
    spacing: float  # median nearest-neighbour distance of the truth [px]
    width: float  # median Gaussian width fitted on the clean image [Å]
    shape: np.ndarray  # (n, 2) Gaussian amplitude [clean units] and width [px] of each truth
    dark: bool
    bias_pm: float  # radial RMSE of the columns located on the clean image [pm]
    margin: float  # columns nearer the edge are left out of the scores [px]
    outer: np.ndarray  # (m, 2) visible columns within the margin, matched but not scored [px]


def inside(points: np.ndarray, shape: tuple[int, int], margin: float = EDGE) -> np.ndarray:
    return (
        (points[:, 0] >= margin)
        & (points[:, 0] <= shape[0] - 1 - margin)
        & (points[:, 1] >= margin)
        & (points[:, 1] <= shape[1] - 1 - margin)
    )


def make_scene(modality: str, material: str, index: int, size: int, pixel_size: float) -> Scene:
    rng = np.random.default_rng([SEED, MODALITIES.index(modality), MATERIALS.index(material),
                                 index])  # fmt: skip
    atoms = field(material, (size, size), pixel_size, zone_axis=ZONES[material], thickness=40.0,
                  rotation=float(rng.uniform(0, 90)))  # fmt: skip
    atoms, _ = vacancies(atoms, fraction=0.03, whole_columns=True, rng=rng)
    imaging = HRTEMImaging() if modality == "hrtem" else STEMImaging(mode=modality.upper())
    result = simulate_image(atoms, pixel_size, imaging, rng=rng)
    table = result.atoms
    faint = np.zeros((0, 2))
    if modality == "haadf":
        share = table["Z_sum"] / table["Z_sum"].max()
        faint = table.loc[(share >= FAINT) & (share < 0.25), ["y", "x"]].to_numpy(float)
        table = table[share >= 0.25]
    truth = table[["y", "x"]].to_numpy(float)
    truth = truth[inside(truth, result.clean.shape)]
    spacing = float(np.median(cKDTree(truth).query(truth, k=2)[0][:, 1]))
    margin = max(EDGE, 0.5 * spacing)  # Atomap never finds columns within its separation
    scored = inside(truth, result.clean.shape, margin)
    truth, outer = truth[scored], np.vstack([truth[~scored], faint])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = locate(result.clean, pixel_size=pixel_size, modality=modality)
    width = float(fitted["width"].median() * pixel_size)
    clean = result.clean.astype(np.float64)
    found = fitted[["y", "x"]].to_numpy(float)
    found = found[inside(found, clean.shape, margin)]
    bias = detection_scores(found, truth, 0.35 * spacing)["rmse"]
    shape = column_shapes(fitted, truth, 0.35 * spacing)
    return Scene(modality, material, index, pixel_size, clean, truth, spacing, width, shape,
                 bool(fitted.attrs["dark"]), bias * pixel_size * 100, margin, outer)  # fmt: skip


def noisy(scene: Scene, dose_column: float, d: int) -> tuple[np.ndarray, float, float]:
    """The scene at a dose [e- per column]; returns the image, the dose per pixel and the
    scale [e- per unit of the clean image]."""
    rows, cols = scene.clean.shape
    area = (rows - 2 * scene.margin) * (cols - 2 * scene.margin)
    dose_pixel = dose_column * len(scene.truth) / area
    rng = np.random.default_rng([SEED, MODALITIES.index(scene.modality),
                                 MATERIALS.index(scene.material), scene.index, d, 1])  # fmt: skip
    image, record = ShotNoise(dose_per_pixel=dose_pixel).apply(np.clip(scene.clean, 0, None), rng)
    return image, dose_pixel, float(record["scale"])


def run_locate(
    scene: Scene, image: np.ndarray, method: str, models: dict[str, str]
) -> tuple[np.ndarray, float]:
    """atomlens.locate with a method name of this benchmark (``+spacing``: the true spacing
    given; ``+precise``: ``precise=True``; ``structure``: the scene's material and zone axis
    given)."""
    name, *given = method.split("+")
    unknown = set(given) - {"spacing", "precise"}
    if unknown:
        raise ValueError(f"unknown method modifier(s) {sorted(unknown)} in {method!r}")
    options: dict = {"method": name, "precise": "precise" in given}
    if "spacing" in given:
        options["spacing"] = scene.spacing * scene.pixel_size
    if name in models:
        options["model"] = models[name]
    if name == "structure":
        options.update(structure=scene.material, zone_axis=ZONES[scene.material])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = locate(image, pixel_size=scene.pixel_size, modality=scene.modality, **options)
    return table[["y", "x"]].to_numpy(float), time.perf_counter() - start


def atomap_runner():
    """``locate_with_atomap`` when the peer's environment exists, else None and why."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
    try:
        from atomap_peer import PeerUnavailable, locate_with_atomap  # type: ignore
    except ImportError as error:
        return None, f"atomap_peer not importable: {error}"
    try:
        locate_with_atomap(np.ones((1, 32, 32)), 4)
    except PeerUnavailable as error:
        return None, str(error)
    except Exception:
        pass
    return locate_with_atomap, ""


def column_shapes(fitted: pd.DataFrame, truth: np.ndarray, radius: float) -> np.ndarray:
    """(n, 2) Gaussian amplitude [image units] and width [px] of each true column, for its
    Cramer-Rao bound: the fit on the clean image nearest to it (NaN where none lies within
    ``radius`` px)."""
    widths = fitted["width"].to_numpy(float)
    amplitudes = np.abs(fitted["intensity"].to_numpy(float)) / (2 * np.pi * widths**2)
    distance, nearest = cKDTree(fitted[["y", "x"]].to_numpy(float)).query(truth)
    shape = np.stack([amplitudes[nearest], widths[nearest]], axis=1)
    shape[distance > radius] = np.nan
    return shape


def truth_bounds(
    clean: np.ndarray, truth: np.ndarray, shape: np.ndarray, scale: float
) -> np.ndarray:
    """(n, 2) Cramer-Rao bound [px] of every true column's y and x at a dose ``scale`` [e- per
    unit of the clean image]: its Gaussian (``shape``: :func:`column_shapes`) in the expected
    counts, which hold the background and the neighbours
    (:func:`atomlens.metrics.cramer_rao_bound_columns`); NaN where the shape is unknown."""
    bounds = np.full((len(truth), 2), np.nan)
    known = np.isfinite(shape).all(axis=1)
    if known.any():
        expected = np.clip(clean, 0, None) * scale
        bounds[known] = cramer_rao_bound_columns(expected, truth[known], shape[known, 0] * scale,
                                                 shape[known, 1])  # fmt: skip
    return bounds


def column_bounds(scene: Scene, scale: float) -> np.ndarray:
    """:func:`truth_bounds` of a scene's true columns."""
    return truth_bounds(scene.clean, scene.truth, scene.shape, scale)


def matched_bound(found: np.ndarray, truth: np.ndarray, bounds: np.ndarray,
                  radius: float) -> float:  # fmt: skip
    """Radial Cramer-Rao bound [px] of the RMSE of the true columns matched within ``radius``
    (the root of their mean squared radial bounds); NaN when none is matched."""
    _, true_index = match_positions(found, truth, radius)
    radial = np.sum(bounds[true_index] ** 2, axis=1)
    radial = radial[np.isfinite(radial)]
    return math.sqrt(np.mean(radial)) if len(radial) else math.nan


def score(scene: Scene, found: np.ndarray, bounds: np.ndarray) -> dict:
    """Detection scores, and the RMSE against the Cramer-Rao bound of the matched columns
    (``bounds``: :func:`column_bounds`).

    The true columns within the margin are matched too, so that a column near the margin's
    edge found just across it is neither missed nor false: a true column is scored when it
    lies inside the margin, and a found one is false when it lies inside the margin and
    matches no true column.
    """
    found = np.asarray(found, dtype=float).reshape(-1, 2)
    radius = 0.35 * scene.spacing
    everything = np.vstack([scene.truth, scene.outer.reshape(-1, 2)])
    found_index, true_index = match_positions(found, everything, radius)
    scored = true_index < len(scene.truth)
    tp = int(scored.sum())
    unmatched = np.ones(len(found), dtype=bool)
    unmatched[found_index] = False
    fp = int((unmatched & inside(found, scene.clean.shape, scene.margin)).sum())
    fn = len(scene.truth) - tp
    errors = found[found_index[scored]] - scene.truth[true_index[scored]]
    rmse = float(np.sqrt(np.mean(np.sum(errors**2, axis=1)))) if tp else math.nan
    radial = np.sum(bounds[true_index[scored]] ** 2, axis=1)
    radial = radial[np.isfinite(radial)]
    px_pm = scene.pixel_size * 100
    crb = math.sqrt(np.mean(radial)) * px_pm if len(radial) else math.nan
    within = found[inside(found, scene.clean.shape, scene.margin)] if len(found) else found
    chamfer = detection_scores(within, scene.truth, radius)["chamfer"] if len(within) else math.nan
    return {
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
        "jaccard": tp / (tp + fp + fn) if tp + fp + fn else 1.0,
        "chamfer_pm": chamfer * px_pm,
        "rmse_pm": rmse * px_pm,
        "crb_pm": crb,
        "rmse_over_crb": rmse * px_pm / crb,
        "bias_pm": scene.bias_pm,
    }


def summarise(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    keys = ["modality", "dose_column", "method"]
    numbers = ["f1", "jaccard", "precision", "recall", "chamfer_pm", "rmse_pm", "crb_pm",
               "rmse_over_crb", "bias_pm", "seconds"]  # fmt: skip
    table = frame.groupby(keys)[numbers].median().reset_index()
    table["images"] = frame.groupby(keys).size().to_numpy()
    return table


def markdown(table: pd.DataFrame, settings: dict, notes: list[str]) -> str:
    lines = [
        "# Column localisation on held-out simulated images",
        "",
        f"Command: `{settings['command']}`",
        "",
        f"{settings['scenes']} scenes ({', '.join(settings['materials'])}; 3 % column vacancies) "
        f"per modality, {settings['size']} px, pixel sizes {settings['pixel_sizes']} Å; Poisson "
        f"noise; elapsed {settings['elapsed_s']:.0f} s on 2 CPU cores. Medians over images.",
        "",
        *[f"- {note}" for note in notes],
        "",
        "| modality | e-/column | method | F1 | Jaccard | chamfer [pm] | RMSE [pm] | CRB [pm] "
        "| RMSE / CRB | noise-free RMSE [pm] | s / image |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.modality} | {row.dose_column:g} | {row.method} | {row.f1:.3f} | "
            f"{row.jaccard:.3f} | {row.chamfer_pm:.1f} | {row.rmse_pm:.1f} | {row.crb_pm:.1f} | "
            f"{row.rmse_over_crb:.2f} | {row.bias_pm:.1f} | {row.seconds:.2f} |"
        )
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1, help="scenes per material and modality")
    parser.add_argument(
        "--first", type=int, default=0, help="first scene index (reported: 0; tune on others)"
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--pixel-sizes", default="0.1,0.2", help="Å, cycled over the scenes")
    parser.add_argument("--doses", default="20,50,200,1000,5000", help="electrons per column")
    parser.add_argument("--modalities", default=",".join(MODALITIES))
    parser.add_argument("--materials", default=",".join(MATERIALS))
    parser.add_argument(
        "--methods",
        default="classical,classical+spacing,unet,unet+spacing,structure,structure+spacing,atomap",
        help="atomlens methods (classical, unet, structure; +spacing gives the true spacing) "
        "and atomap",
    )
    parser.add_argument(
        "--models",
        default="",
        help="model folders to use instead of the shipped ones: unet=PATH,structure=PATH",
    )
    parser.add_argument("--atomap-doses", default="50,1000", help="doses Atomap runs at")
    parser.add_argument("--atomap-modalities", default="haadf", help="modalities Atomap runs on")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON (and .md beside)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    start = time.perf_counter()
    doses = [float(d) for d in args.doses.split(",")]
    pixel_sizes = [float(p) for p in args.pixel_sizes.split(",")]
    methods = [m.strip() for m in args.methods.split(",")]
    materials = [m.strip() for m in args.materials.split(",")]
    atomap_doses = {float(d) for d in args.atomap_doses.split(",")}
    models = dict(item.split("=", 1) for item in args.models.split(",") if item)
    notes = []
    atomap = None
    if "atomap" in methods:
        atomap, why = atomap_runner()
        if atomap is None:
            methods.remove("atomap")
            notes.append(f"atomap skipped: {why}")
    records = []
    scenes = 0
    for modality in args.modalities.split(","):
        for material in materials:
            for index in range(args.first, args.first + args.count):
                px = pixel_sizes[(index + materials.index(material)) % len(pixel_sizes)]
                scene = make_scene(modality, material, index, args.size, px)
                scenes += modality == args.modalities.split(",")[0]
                for d, dose in enumerate(doses):
                    image, dose_pixel, scale = noisy(scene, dose, d)
                    bounds = column_bounds(scene, scale)
                    base = {"modality": modality, "material": material, "index": index,
                            "pixel_size": px, "dose_column": dose,
                            "dose_pixel": dose_pixel}  # fmt: skip
                    for method in methods:
                        if method == "atomap":
                            continue
                        found, seconds = run_locate(scene, image, method, models)
                        records.append(base | {"method": method, "seconds": seconds}
                                       | score(scene, found, bounds))  # fmt: skip
                    if (
                        atomap is not None
                        and dose in atomap_doses
                        and modality in args.atomap_modalities.split(",")
                    ):
                        separation = max(2, int(0.45 * scene.spacing))
                        positions, times = atomap(image[None], separation, dark=scene.dark)
                        records.append(base | {"method": "atomap", "seconds": float(times[0])}
                                       | score(scene, positions[0], bounds))  # fmt: skip
                print(f"{modality} {material} #{index} ({px} Å/px): "
                      f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    table = summarise(records)
    settings = {
        "command": "python benchmarks/evaluate_locate.py " + " ".join(sys.argv[1:] if argv is None
                                                                      else argv),
        "scenes": scenes, "materials": materials, "size": args.size,
        "pixel_sizes": args.pixel_sizes, "elapsed_s": time.perf_counter() - start,
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"settings": settings, "notes": notes,
                                       "records": records}, indent=1, default=float))  # fmt: skip
    args.output.with_suffix(".md").write_text(markdown(table, settings, notes))
    print(markdown(table, settings, notes))


if __name__ == "__main__":
    main()
