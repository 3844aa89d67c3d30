"""Diffusion coefficients from tracked image series against the simulated ones (issue 12).

Scenes: a graphene sheet (``--size`` px at ``--pixel-size`` Å/px, thermal jitter 0.02 Å) with
``--adatoms`` W adatoms placed at random 2 Å above it, moving by 2-D Brownian steps of the
simulated diffusion coefficient D (``DynamicsModel(adatom_diffusion=D)``, Å^2 per frame; no
hops, no drift, adatoms that meet merge into a slower cluster as the model says), ``--frames``
frames, HAADF STEM with shot noise at ``--dose`` e-/px, seeds from 3100000.

Three estimates of D per scene, each the pooled ``atomlens.track.ensemble_diffusion`` (MSD
over lags 1-4 with the exact covariance, localisation noise fitted) of the adatom
trajectories:

- ``truth``: the simulated adatom positions themselves (what the finite walks allow);
- ``tracked``: ``atomlens.locate`` on the frames, ``atomlens.track``, the trajectories that
  follow a true adatom (within 1 Å in at least 80 % of their frames);

and the relative error of each against the simulated D. Clusters formed by merging diffuse
more slowly, so only adatoms that never merged are pooled in ``truth`` (and ``tracked``
follows those).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/evaluate_diffusion.py \\
        -o benchmarks/results/track_diffusion.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from scipy.spatial import cKDTree

from atomlens.locate import locate
from atomlens.physics import STEMImaging, field
from atomlens.physics.dynamics import DynamicsModel, simulate_series
from atomlens.physics.imaging.series import simulate_image_series
from atomlens.track import ensemble_diffusion, track

SEED = 3_100_000


def scene(d: float, index: int, args: argparse.Namespace):
    rng = np.random.default_rng([SEED, index])
    sheet = field("graphene", (args.size, args.size), args.pixel_size)
    box = sheet.cell.lengths()
    top = sheet.positions[:, 2].max() + 2.0
    spots = rng.uniform(0.1, 0.9, (args.adatoms, 2)) * box[:2]
    adatoms = Atoms("W" * args.adatoms, positions=[[x, y, top] for x, y in spots])
    atoms = sheet + adatoms
    atoms.set_cell(sheet.cell)
    flag = np.r_[np.zeros(len(sheet), bool), np.ones(args.adatoms, bool)]
    model = DynamicsModel(thermal_sigma=0.02, adatom_diffusion=d)
    series = simulate_series(atoms, args.frames, model, rng, adatom=flag, mobile=flag)
    return simulate_image_series(series, args.pixel_size, STEMImaging(),
                                 dose_per_pixel=args.dose, rng=rng)  # fmt: skip


def single_adatoms(simulated) -> pd.DataFrame:
    """Truth positions [px] of the adatoms that stay single and in view in every frame."""
    tracks = simulated.tracks
    adatoms = tracks[tracks["adatom"].astype(bool)].copy()
    adatoms["members"] = adatoms.groupby(["frame", "cluster"])["particle"].transform("size")
    frames = simulated.frames.shape[0]
    keep = [
        particle
        for particle, rows in adatoms.groupby("particle")
        if rows["frame"].nunique() == frames and rows["in_view"].all()
        and (rows["members"] == 1).all()
    ]  # fmt: skip
    table = adatoms[adatoms["particle"].isin(keep)]
    return table[["frame", "particle", "y", "x"]].reset_index(drop=True)


def following(tracks: pd.DataFrame, truth: pd.DataFrame, radius: float) -> list[int]:
    """Tracked particles within ``radius`` px of one true adatom in >= 80 % of their frames."""
    chosen = []
    by_frame = {f: rows for f, rows in truth.groupby("frame")}
    for particle, rows in tracks.groupby("particle"):
        owners = []
        for frame, y, x in rows[["frame", "y", "x"]].itertuples(index=False):
            near = by_frame.get(frame)
            if near is None:
                owners.append(-1)
                continue
            distance, which = cKDTree(near[["y", "x"]].to_numpy()).query([y, x])
            owners.append(int(near["particle"].iloc[which]) if distance <= radius else -1)
        values, counts = np.unique(owners, return_counts=True)
        best = counts.argmax()
        if values[best] >= 0 and counts[best] >= 0.8 * len(rows) and len(rows) >= 5:
            chosen.append(int(particle))
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--diffusion", type=float, nargs="+", default=[0.05, 0.2, 0.5])
    parser.add_argument("--scenes", type=int, default=3, help="scenes per D")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--pixel-size", type=float, default=0.15)
    parser.add_argument("--adatoms", type=int, default=8)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--dose", type=float, default=200.0, help="e-/px")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    records = []
    start = time.perf_counter()
    for d in args.diffusion:
        for index in range(args.scenes):
            simulated = scene(d, len(records), args)
            truth = single_adatoms(simulated)
            if truth["particle"].nunique() == 0:
                continue
            true_tracks = truth.copy()
            true_tracks.attrs.update(pixel_size=args.pixel_size, frame_time=None, drift=[])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = locate(simulated.frames, pixel_size=args.pixel_size)
                tracks = track(found, pixel_size=args.pixel_size)
            chosen = following(tracks, truth, 1.0 / args.pixel_size)
            row = {"D": d, "scene": index, "adatoms": int(truth["particle"].nunique())}
            for name, table, particles in (("truth", true_tracks, None),
                                           ("tracked", tracks, chosen)):  # fmt: skip
                try:
                    estimate = ensemble_diffusion(table, particles=particles)
                except ValueError:
                    continue
                row[f"{name}_D"] = estimate["D"]
                row[f"{name}_D_err"] = estimate["D_err"]
                row[f"{name}_trajectories"] = estimate["trajectories"]
                row[f"{name}_error"] = estimate["D"] / d - 1
            records.append(row)
            print(json.dumps(row), flush=True)
    table = pd.DataFrame(records)
    pooled = table.groupby("D")[["truth_error", "tracked_error"]].agg(["mean", "std"])
    print(pooled.round(3).to_markdown())
    args.output.write_text(json.dumps({
        "command": "benchmarks/evaluate_diffusion.py " + " ".join(argv or []),
        "minutes": (time.perf_counter() - start) / 60, "records": records,
    }, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
