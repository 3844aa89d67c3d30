"""Locate the columns of every real image of ../shared/data/real, beside Atomap.

For each image: ``atomlens.locate`` with the file's calibration (the PNG gets 0.089 Å), an
overlay PNG (the full image and a 160 px zoom) in docs/images/locate/, and where no truth
exists, what a microscopist checks:

- how many columns, the spacing used and where it came from, the median position standard
  error [pm] the fits report, and the share of columns in each class;
- agreement with Atomap (peer, own environment, ``benchmarks/peers/atomap_peer.py``; its
  separation 0.45 x the spacing atomlens used, ``dark=True`` for ABF): columns matched one to
  one within a quarter spacing, the share of each tool's columns the other also found, and the
  RMS distance of the matched pairs [pm] against the RMS of the fits' radial standard errors
  (agreement within the uncertainty when the first is not much larger);
- time per image for both;
- with ``--methods classical,unet,structure``: the same for the segmentation networks
  (``structure`` given the material of :data:`STRUCTURES`), and how each agrees with the
  classical path (one-to-one within a quarter spacing).

    .venv/bin/python benchmarks/locate_real.py --data ../shared/data/real \\
        -o benchmarks/results/locate_real.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from atomlens.io import read
from atomlens.locate import locate
from atomlens.metrics import detection_scores
from atomlens.report.figures import plot_overlay, save_figure
from real_images import IMAGES  # benchmarks/real_images.py, beside this script

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images" / "locate"
#: What each image shows, for ``method="structure"`` (None: unknown, the network is told so).
STRUCTURES = {
    "hrstem_example.ser": (None, None),
    "example_Se_implanted_MoS2.dm3": ("MoS2", (0, 0, 1)),
    "SrTiO3_ADF_cropped.hdf5": ("SrTiO3", (0, 0, 1)),
    "SrTiO3_ABF_cropped.hdf5": ("SrTiO3", (0, 0, 1)),
    "Si110_HAADF.png": ("Si", (1, 1, 0)),
}
ZOOM = 160  # [px]


def atomap_runner():
    sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
    try:
        from atomap_peer import PeerUnavailable, locate_with_atomap  # type: ignore
    except ImportError:
        return None
    try:
        locate_with_atomap(np.ones((1, 32, 32)), 4)
    except PeerUnavailable:
        return None
    except Exception:  # a flat image may fail inside Atomap; the peer exists
        pass
    return locate_with_atomap


def overlay(path: Path, image: np.ndarray, table, pixel_size: float, title: str) -> None:
    fig = Figure(figsize=(13, 6.4))
    full, zoom = fig.subplots(1, 2)
    columns = table.rename(columns={"class": "species"})
    plot_overlay(full, image, columns, pixel_size, title=title, marker_size=6)
    rows, cols = image.shape
    top, left = (rows - ZOOM) // 2, (cols - ZOOM) // 2
    part = columns[columns["y"].between(top, top + ZOOM - 1)
                   & columns["x"].between(left, left + ZOOM - 1)]  # fmt: skip
    part = part.assign(y=part["y"] - top, x=part["x"] - left)
    plot_overlay(zoom, image[top : top + ZOOM, left : left + ZOOM], part, pixel_size,
                 title=f"centre {ZOOM} px", marker_size=30)  # fmt: skip
    zoom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def agreement(ours: np.ndarray, theirs: np.ndarray, spacing: float, pixel_size: float) -> dict:
    """Columns matched one to one within a quarter spacing, and their RMS distance [pm]."""
    scores = detection_scores(ours, theirs, 0.25 * spacing)
    return {
        "share_of_ours_found_by_them": round(scores["precision"], 4),
        "share_of_theirs_found_by_us": round(scores["recall"], 4),
        "rms_distance_matched_pm": round(scores["rmse"] * pixel_size * 100, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--methods", default="classical", help="classical,unet,structure")
    parser.add_argument("--no-atomap", action="store_true", help="skip the Atomap peer")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    FIGURES.mkdir(parents=True, exist_ok=True)
    atomap = None if args.no_atomap else atomap_runner()
    methods = args.methods.split(",")
    results = {}
    for name, (modality, fallback, what) in IMAGES.items():
        path = args.data / name
        if not path.exists():
            print(f"skipped {name}: not found")
            continue
        image = read(path)
        data = np.asarray(image.data, dtype=np.float64)
        pixel_size = fallback if image.pixel_size is None else float(np.mean(image.pixel_size))
        found_atomap = None
        for method in methods:
            record, table = run_method(data, pixel_size, modality, method, name)
            record["what"] = what
            spacing = table.attrs["spacing_px"]
            if atomap is not None and found_atomap is None:
                separation = max(2, int(0.45 * spacing))
                positions, times = atomap(data[None], separation, dark=modality == "abf")
                found_atomap = (positions[0], separation, float(times[0]))
            if found_atomap is not None:
                record["atomap"] = compare_atomap(table, data.shape, pixel_size, *found_atomap)
            if method != "classical" and "classical" in results.get(name, {}):
                reference = results[name]["classical"]["positions"]
                record["against_classical"] = agreement(
                    table[["y", "x"]].to_numpy(), np.asarray(reference), spacing, pixel_size
                )
            suffix = "" if method == "classical" else f"_{method}"
            title = f"{name} ({method}): {len(table)} columns, spacing {spacing:.1f} px"
            overlay(FIGURES / f"{Path(name).stem}{suffix}.png", data, table, pixel_size, title)
            results.setdefault(name, {})[method] = record
            print(json.dumps({name: {method: record | {"positions": "..."}}}), flush=True)
    for per_image in results.values():
        for record in per_image.values():
            record.pop("positions")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))


def run_method(
    data: np.ndarray, pixel_size: float, modality: str, method: str, name: str
) -> tuple[dict, object]:
    options: dict = {"method": method}
    if method == "structure":
        material, zone = STRUCTURES.get(name, (None, None))
        options.update(structure=material, zone_axis=zone)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = locate(data, pixel_size=pixel_size, modality=modality, **options)
    seconds = time.perf_counter() - start
    spacing = table.attrs["spacing_px"]
    sigma = np.hypot(table["sigma_y"], table["sigma_x"])
    record = {
        "modality": modality,
        "shape": list(data.shape),
        "pixel_size_A": pixel_size,
        "columns": len(table),
        "spacing_px": round(spacing, 2),
        "spacing_source": table.attrs["spacing_source"],
        "median_radial_error_pm": round(float(np.median(sigma)) * pixel_size * 100, 2),
        "classes": table["class"].value_counts().to_dict(),
        "seconds": round(seconds, 2),
        "positions": table[["y", "x"]].to_numpy().tolist(),
    }
    return record, table


def compare_atomap(
    table,
    shape: tuple[int, ...],
    pixel_size: float,
    found: np.ndarray,
    separation: int,
    seconds: float,
) -> dict:
    """Agreement of the table with Atomap's columns, away from the edge strip it cannot reach."""
    spacing = table.attrs["spacing_px"]
    margin = separation + 1  # Atomap never finds columns nearer the edge
    ours = table[["y", "x"]].to_numpy()
    keep = (ours >= margin).all(1) & (ours < np.array(shape) - margin).all(1)
    scores = detection_scores(ours[keep], found, 0.25 * spacing)
    sigma = np.hypot(table["sigma_y"], table["sigma_x"]).to_numpy()
    return {
        "columns": len(found),
        "seconds": round(seconds, 2),
        "share_of_atomlens_found_by_atomap": round(scores["precision"], 4),
        "share_of_atomap_found_by_atomlens": round(scores["recall"], 4),
        "rms_distance_matched_pm": round(scores["rmse"] * pixel_size * 100, 2),
        "rms_radial_error_of_fits_pm": round(
            float(np.sqrt(np.mean(sigma[keep] ** 2))) * pixel_size * 100, 2
        ),
    }


if __name__ == "__main__":
    main()
