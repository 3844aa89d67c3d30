"""What fitting strongly overlapping columns jointly does for their position error.

``atomlens.locate.refine_columns`` fits every column in a window of about a spacing with its
neighbours' Gaussians subtracted, round after round (block iteration), and then fits columns
that overlap strongly (``atomlens.locate.coupled``) again jointly with their neighbours. This
compares the position RMSE against the Cramer-Rao bound (``cramer_rao_bound_columns``) with and
without that joint stage (``joint=False`` for the fits; ``locate`` has no such switch, so for
the scenes the stage is switched off by setting its round count to 0):

- exact Gaussian columns (4 px wide, on 0.05 counts per pixel) in Si [110]-like dumbbells 3.4,
  4 and 6.75 widths apart, at 50 and 1000 counts per column, 12 noise draws each, fitted from
  their true integer positions with the window and width bound ``locate`` uses for that
  spacing (``atomlens.locate.revise.fitted``);
- the HAADF Si [110] and MoS2 scenes of ``evaluate_locate.py``'s generator with indices 20 and
  21 (the tuning scenes: the evaluation uses 0 and 10-13), located by ``locate`` given the true
  spacing, at 50, 200 and 1000 e-/column.

    .venv/bin/python benchmarks/locate_coupled_check.py
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import atomlens.locate.refine as refine
from atomlens.locate import locate
from atomlens.locate.revise import fitted
from atomlens.metrics import cramer_rao_bound_columns
from evaluate_locate import column_bounds, make_scene, noisy, score
from results_io import write_results

WIDTH = 4.0  # [px]
SIZE = 256


def dumbbells(gap: float) -> np.ndarray:
    """(n, 2) column centres [px]: pairs ``gap`` px apart on a centred 54.3 x 38.4 px cell."""
    cells = []
    for i in range(-1, 7):
        for j in range(-1, 9):
            for oy, ox in ((0.0, 0.0), (27.15, 19.2)):
                cy, cx = 10 + i * 54.3 + oy, 10 + j * 38.4 + ox
                cells += [(cy - gap / 2, cx), (cy + gap / 2, cx)]
    centres = np.array(cells)
    return centres[np.all((centres >= 0) & (centres < SIZE), axis=1)]


def gaussian_ratio(gap: float, dose: float, draws: int, joint: bool) -> float:
    """RMSE / CRB of the columns at least 15 px from the edge (``joint``: the joint fits)."""
    centres = dumbbells(gap)
    height = dose / (2 * np.pi * WIDTH**2)
    yy, xx = np.indices((SIZE, SIZE))
    expected = np.full((SIZE, SIZE), 0.05)
    for y0, x0 in centres:
        expected += height * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * WIDTH**2))
    heights, widths = np.full(len(centres), height), np.full(len(centres), WIDTH)
    bound = cramer_rao_bound_columns(expected, centres, heights, widths)
    inner = (centres.min(axis=1) > 15) & (centres.max(axis=1) < SIZE - 15)
    crb = np.sqrt(np.mean(np.sum(bound[inner] ** 2, axis=1)))
    squares = []
    for seed in range(draws):
        image = np.random.default_rng(seed).poisson(expected).astype(float)
        table = fitted(image, np.rint(centres).astype(int), gap, 3, joint=joint)
        found = np.full(centres.shape, np.nan)
        found[table.index] = table[["y", "x"]].to_numpy()
        error = np.sum((found - centres) ** 2, axis=1)[inner]
        squares.append(error[np.isfinite(error)])
    return float(np.sqrt(np.mean(np.concatenate(squares))) / crb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path,
                        default=Path("benchmarks/results/locate_coupled_check.json"))  # fmt: skip
    parser.add_argument("--draws", type=int, default=12)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    joint_rounds = refine.COUPLED_ROUNDS
    rows = []
    for gap in (13.6, 16.0, 27.0):
        for dose in (50.0, 1000.0):
            row = {"images": "Gaussian dumbbells", "case": f"{gap / WIDTH:.2f} widths apart",
                   "dose": dose}  # fmt: skip
            for name in ("block", "joint"):
                row[name] = gaussian_ratio(gap, dose, args.draws, joint=name == "joint")
            rows.append(row)
    for material in ("Si", "MoS2"):
        for index in (20, 21):
            scene = make_scene("haadf", material, index, 256, (0.1, 0.2)[index % 2])
            for dose in (50.0, 200.0, 1000.0):
                image, _, scale = noisy(scene, dose, 0)
                bounds = column_bounds(scene, scale)
                row = {"images": f"{material} scene {index}",
                       "case": f"{scene.pixel_size} Å/px", "dose": dose}  # fmt: skip
                for name, rounds in (("block", 0), ("joint", joint_rounds)):
                    refine.COUPLED_ROUNDS = rounds
                    table = locate(image, pixel_size=scene.pixel_size,
                                   spacing=scene.spacing * scene.pixel_size)  # fmt: skip
                    scores = score(scene, table[["y", "x"]].to_numpy(float), bounds)
                    row[name] = scores["rmse_over_crb"]
                    row[f"{name}_f1"] = scores["f1"]
                rows.append(row)
    refine.COUPLED_ROUNDS = joint_rounds
    lines = ["| images | case | e-/column | RMSE / CRB, block iteration | RMSE / CRB, joint "
             "| F1 block / joint |", "|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        f1 = f"{row['block_f1']:.3f} / {row['joint_f1']:.3f}" if "block_f1" in row else ""
        lines.append(f"| {row['images']} | {row['case']} | {row['dose']:.0f} | "
                     f"{row['block']:.3f} | {row['joint']:.3f} | {f1} |")  # fmt: skip
    settings = {"draws": args.draws, "width_px": WIDTH, "joint_rounds": joint_rounds}
    write_results(args.output, settings, rows, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
