"""How far the Gaussian-column Cramer-Rao bound of the locate benchmarks is from a model-free one.

``evaluate_locate.py`` and ``locate_abtem.py`` score position errors against
``atomlens.metrics.cramer_rao_bound_columns``: each column's Gaussian (fitted on the clean
image) in the expected counts, fitted jointly with the columns that overlap it. A real column
is not a Gaussian (a probe has tails, abTEM's columns are sharper at the core), so this checks
the bound, computed for each column alone (its neighbours known), against one that assumes no
column shape and also takes the neighbours as known: the Fisher information of a rigid shift
of the clean image itself,
``F_yy = sum (d lambda / dy)^2 / lambda`` with the gradient of the expected counts by central
differences, summed over the pixels nearer to the column than to any other (its Voronoi cell;
the tails it casts into its neighbours' cells are left out, which raises this bound a little,
and central differences on a coarse grid lower the gradient, which raises it too).

Scenes: the HAADF scenes of ``evaluate_locate.py`` (256 px, four materials) and the cached
abTEM HAADF images of ``locate_abtem.py`` (``--abtem-cache``; skipped when absent). Printed:
the radial bound (RMS over the columns) of the Gaussian alone, of the Gaussian joint with its
overlapping neighbours (what the benchmarks use), and of the model-free kind, and the ratio of
the model-free to the Gaussian-alone bound; the dose cancels.

    .venv/bin/python benchmarks/locate_bound_check.py --abtem-cache /work/abtem_cache
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))

from atomlens.locate import locate
from atomlens.metrics import cramer_rao_bound_columns
from evaluate_locate import column_bounds, make_scene

SCENES = (("SrTiO3", 0.1), ("GaN", 0.2), ("MoS2", 0.1), ("Au", 0.2), ("Si", 0.1))


def cell_bounds(expected: np.ndarray, columns: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(n, 2) model-free bound [px] of the ``targets`` among all ``columns`` (y, x) [px]."""
    grad_y, grad_x = np.gradient(expected)
    counts = np.clip(expected, 1e-12, None)
    pixels = np.indices(expected.shape).reshape(2, -1).T
    tree = cKDTree(columns)
    owner = tree.query(pixels)[1]
    target = tree.query(targets)[1]
    fisher = [np.bincount(owner, (g**2 / counts).ravel(), minlength=len(columns))
              for g in (grad_y, grad_x)]  # fmt: skip
    return np.stack([1 / np.sqrt(f[target]) for f in fisher], axis=1)


def alone(expected: np.ndarray, columns: np.ndarray, heights: np.ndarray,
          widths: np.ndarray) -> np.ndarray:  # fmt: skip
    """(n, 2) Gaussian bound [px] of each column with its neighbours known."""
    return np.vstack([cramer_rao_bound_columns(expected, columns[i : i + 1], heights[i : i + 1],
                                               widths[i : i + 1])
                      for i in range(len(columns))])  # fmt: skip


def radial(bounds: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean(np.sum(bounds**2, axis=1))))


def fitted_columns(clean: np.ndarray, pixel_size: float):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return locate(clean, pixel_size=pixel_size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--abtem-cache", type=Path, default=None)
    args = parser.parse_args(argv)
    print("| images | material | Gaussian, alone [px] | Gaussian, joint [px] | model-free [px] "
          "| model-free / alone |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for material, pixel_size in SCENES:
        scene = make_scene("haadf", material, 0, 256, pixel_size)
        scale = 1.0 / np.clip(scene.clean, 0, None).mean()
        expected = np.clip(scene.clean, 0, None) * scale
        joint = column_bounds(scene, scale)
        known = np.isfinite(scene.shape).all(axis=1)
        single = alone(expected, scene.truth[known], scene.shape[known, 0] * scale,
                       scene.shape[known, 1])  # fmt: skip
        everything = fitted_columns(scene.clean, pixel_size)[["y", "x"]].to_numpy(float)
        free = cell_bounds(expected, everything, scene.truth[known])
        print(f"| atomlens | {material} | {radial(single):.3f} | {radial(joint):.3f} | "
              f"{radial(free):.3f} | {radial(free) / radial(single):.2f} |")  # fmt: skip
    for path in sorted(args.abtem_cache.glob("*.npy")) if args.abtem_cache else []:
        clean = np.load(path)
        pixel_size = float(path.stem.split("_")[2])
        table = fitted_columns(clean, pixel_size)
        columns = table[["y", "x"]].to_numpy(float)
        widths = table["width"].to_numpy(float)
        heights = np.abs(table["intensity"].to_numpy(float)) / (2 * np.pi * widths**2)
        scale = 1.0 / clean.mean()
        inner = ((columns > 6) & (columns < np.array(clean.shape) - 7)).all(axis=1)
        joint = cramer_rao_bound_columns(clean * scale, columns, heights * scale, widths)
        single = alone(clean * scale, columns, heights * scale, widths)
        free = cell_bounds(clean * scale, columns, columns)
        ours, theirs = radial(single[inner]), radial(free[inner])
        print(f"| abTEM | {path.stem.split('_')[0]} | {ours:.3f} | {radial(joint[inner]):.3f} | "
              f"{theirs:.3f} | {theirs / ours:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
