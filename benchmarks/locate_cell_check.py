"""What the averaged unit cell and the width bound of locate do on the tracking series.

For each of the held-out ``SeriesSampler`` series of ``evaluate_track.py`` (20 frames of
128 x 128, shot noise, seeds from 3000000): the autocorrelation's spacing, the number of
columns of the averaged unit cell (5 frames registered, ``atomlens.locate.motif``) and the
spacing it gives, against the true nearest-neighbour distance of the columns. Then, on the
first frame of ``--fit-series`` (an hBN series whose probe is about as wide as its columns are
apart), the candidates of the classical path refined with free widths and with the bound
(``atomlens.locate.revise.WIDEST``): how many converge, and how many within 1 px of the truth.

Run: ``python benchmarks/locate_cell_check.py`` (about 20 s on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atomlens.data import SeriesSampler
from atomlens.locate.refine import refine_columns
from atomlens.locate.revise import WIDEST, window
from evaluate_track import SEED, truth_table

located = importlib.import_module("atomlens.locate.locate")


def cell_rows(sampler: SeriesSampler, count: int) -> list[str]:
    rows = []
    for index in range(count):
        series = sampler.sample(index, SEED)
        truth = truth_table(series)
        first = truth[truth["frame"] == 0][["y", "x"]].to_numpy()
        true = float(np.median(cKDTree(first).query(first, k=2)[0][:, 1]))
        modality = series.metadata["imaging"]["mode"].lower()
        frames = series.frames.astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spacing, source, cell = located._spacing_px(frames, None, None, modality, 4.0)
            estimate = located.estimate_cell(frames.mean(axis=0))[0]
        columns = 0 if cell is None else len(cell.columns)
        rows.append(
            f"| {index} | {series.metadata['material']} | {modality} | "
            f"{series.pixel_size:.3f} | {true:.1f} | {estimate:.1f} | {columns} | "
            f"{spacing:.1f} | {spacing / true:.2f} | {source} |"
        )
    return rows


def fit_rows(sampler: SeriesSampler, index: int) -> list[str]:
    series = sampler.sample(index, SEED)
    truth = truth_table(series)
    first = truth[truth["frame"] == 0][["y", "x"]].to_numpy()
    frames = series.frames.astype(np.float64)
    spacing, _, _ = located._spacing_px(frames, None, None, "haadf", 4.0)
    flat = located.subtract_background(frames[0], spacing)
    peaks = located._find_peaks(flat, spacing, 4.0)
    half, width = window(spacing)
    rows = []
    for name, widest in (("free (window side)", None), (f"{WIDEST} spacings", WIDEST * spacing)):
        fit = refine_columns(flat, peaks, half=half, width=width, rounds=3, widest=widest)
        ok = fit.columns["converged"]
        found = np.column_stack([fit.columns["y"][ok], fit.columns["x"][ok]])
        near = cKDTree(first).query(found)[0] < 1.0
        rows.append(f"| {name} | {len(peaks)} | {int(ok.sum())} | {int(near.sum())} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--fit-series", type=int, default=0)
    args = parser.parse_args()
    sampler = SeriesSampler(frames=20, size=128, distortions="shot")
    print("| series | material | modality | Å/px | true spacing [px] | autocorrelation [px] "
          "| cell columns | spacing [px] | spacing / true | source |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(cell_rows(sampler, args.series)))
    print(f"\nFit of the candidates of series {args.fit_series}, frame 0:\n")
    print("| width bound | candidates | converged | within 1 px of a true column |")
    print("|---|---|---|---|")
    print("\n".join(fit_rows(sampler, args.fit_series)))


if __name__ == "__main__":
    main()
