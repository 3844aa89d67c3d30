"""Behaviour recognition on simulated series: event precision and recall of atomlens.track.events.

``SeriesSampler``'s fields have no vacancies, so its series have no hops or vacancy migrations;
this benchmark builds its own: graphene, hBN and MoS2 fields (128 x 128 px, 0.10-0.15 Å/px,
random rotation) with 6 vacancies (MoS2: Mo vacancies, whose columns hold one atom), moved by
``simulate_series`` (thermal jitter 0.05 Å, hop rate 0.01, vacancy migration 0.2 per frame,
adatoms appearing 0.3 per frame, diffusing 0.3 Å^2 per frame and leaving 0.05 per frame,
slow drift; 30 frames) and imaged with shot noise (``simulate_image_series``, a random
corrected HAADF STEM, 200-2000 e-/px). Events are recognised on two sets of detections:

- ``truth+noise``: the true columns (as in ``evaluate_track.py``) with 0.3 px Gaussian noise
  per axis and 2 % of the detections dropped at random;
- ``locate``: the columns ``atomlens.locate`` finds in the frames;
- ``locate+counts``: the same detections, tracked and read with the frames' counts
  (``track(..., stack=)``, ``events(..., frames=)``): a site that no detection of a frame
  holds but where the frame's counts show a column gets a detection before the linking, and
  is occupied for the events (``atomlens.track.evidence``).

Both are tracked by ``atomlens.track`` (defaults) and read by ``atomlens.track.events``
(defaults). Matching rule: a found and a true event match when their frames differ by at most
1 and their places are within 0.5 column spacings (the true columns' median nearest-neighbour
distance); for moves both ends (the old and the new site) must be within 0.5 spacings. Matches
are one-to-one (Hungarian, cost = place distance + frame difference). In projection a hop and a
vacancy migration are the same motion (an atom into an empty neighbouring site), so they are
scored as one class, "moves" (true hop and vacancy_migration events against found hop and
vacancy_migration events), and the recall of each true kind is given apart. Adatom arrivals and
departures are scored against the simulator's appear and leave events. Only events at least
0.5 spacings inside the field of view on both sides are scored. The simulator creates no
vacancies, so every found vacancy_creation is a false alarm.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/evaluate_events.py
Writes benchmarks/results/track_events.json and .md. ``--seed`` draws other series: tune and
explore on other seeds (e.g. ``--seed 4100000 --series 18``), and keep the default 4000000 for
the reported numbers; ``--detections truth+noise`` skips locate; ``--output DIR`` writes the
results elsewhere.
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
from scipy.optimize import linear_sum_assignment

import atomlens
from atomlens.data.samplers import random_stem_imaging
from atomlens.physics.dynamics import DynamicsModel, simulate_series
from atomlens.physics.imaging.series import simulate_image_series
from atomlens.physics.structures import vacancies
from atomlens.physics.structures.lattice import field
from atomlens.track import column_spacing, events, track
from evaluate_track import noisy, truth_table

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 4000000
MATERIALS = (("graphene", None), ("hBN", None), ("MoS2", "Mo"))
VACANCIES = 6
MOVES = ("hop", "vacancy_migration")
DETECTIONS = ("truth+noise", "locate", "locate+counts")


def simulate(index: int, frames: int, size: int, seed: int = SEED):
    """One series with vacancies (module docstring)."""
    rng = np.random.default_rng([seed, index])
    material, element = MATERIALS[index % len(MATERIALS)]
    pixel_size = float(rng.uniform(0.10, 0.15))
    atoms = field(material, (size, size), pixel_size, rotation="random", shift="random", rng=rng)
    atoms, removed = vacancies(atoms, count=VACANCIES, element=element, rng=rng)
    missing = Atoms(
        symbols=removed["symbol"].tolist(),
        positions=removed[["x_A", "y_A", "z_A"]].to_numpy(),
        cell=atoms.cell,
    )
    model = DynamicsModel(
        thermal_sigma=0.05,
        hop_rate=0.01,
        vacancy_migration=0.2,
        adatom_diffusion=0.3,
        appear_rate=0.3,
        leave_rate=0.05,
        drift=(rng.normal(0, 0.05), rng.normal(0, 0.05)),
    )
    series = simulate_series(atoms, frames, model, rng, vacancies=missing)
    imaging = random_stem_imaging(rng, mode="HAADF")
    dose = float(np.exp(rng.uniform(np.log(200), np.log(2000))))
    simulated = simulate_image_series(series, pixel_size, imaging, dose_per_pixel=dose, rng=rng)
    simulated.metadata["material"] = material
    return simulated


def _inside(y, x, size, margin):
    return (y >= margin) & (y <= size - 1 - margin) & (x >= margin) & (x <= size - 1 - margin)


def match(found: pd.DataFrame, true: pd.DataFrame, radius: float, ends: bool) -> np.ndarray:
    """One-to-one matches (found row, true row) under the module's rule."""
    if found.empty or true.empty:
        return np.zeros((0, 2), dtype=int)
    df = np.abs(found["frame"].to_numpy()[:, None] - true["frame"].to_numpy()[None, :])
    if ends:
        parts = [("y_from", "x_from"), ("y_to", "x_to")]
    else:
        parts = [("y", "x")]
    distance = np.zeros(df.shape)
    for ycol, xcol in parts:
        fy, fx = found[ycol].to_numpy()[:, None], found[xcol].to_numpy()[:, None]
        ty, tx = true[ycol].to_numpy()[None, :], true[xcol].to_numpy()[None, :]
        distance = np.maximum(distance, np.hypot(fy - ty, fx - tx))
    ok = (df <= 1) & (distance <= radius)
    cost = np.where(ok, distance / radius + df, 1e6)
    rows, cols = linear_sum_assignment(cost)
    keep = ok[rows, cols]
    return np.column_stack([rows[keep], cols[keep]])


def true_events(simulated, size: int, margin: float) -> pd.DataFrame:
    """The simulator's events with a place: moves (both ends), appear (to), leave (from)."""
    table = simulated.events.copy()
    appear = table["kind"] == "appear"
    table["y"] = np.where(appear, table["y_to"], table["y_from"])
    table["x"] = np.where(appear, table["x_to"], table["x_from"])
    keep = _inside(table["y"], table["x"], size, margin)
    moves = table["kind"].isin(MOVES)
    keep &= ~moves | _inside(table["y_to"], table["x_to"], size, margin)
    return table[keep].reset_index(drop=True)


def score(found: pd.DataFrame, true: pd.DataFrame, radius: float, size: int) -> dict:
    found = found[_inside(found["y"], found["x"], size, radius)]
    moves = found["kind"].isin(MOVES)
    found = found[~moves | _inside(found["y_from"], found["x_from"], size, radius)]
    result = {}
    classes = {
        "moves": (list(MOVES), list(MOVES), True),
        "arrive": (["adatom_arrive"], ["appear"], False),
        "leave": (["adatom_leave"], ["leave"], False),
    }
    for name, (mine, theirs, ends) in classes.items():
        f = found[found["kind"].isin(mine)].reset_index(drop=True)
        t = true[true["kind"].isin(theirs)].reset_index(drop=True)
        pairs = match(f, t, radius, ends)
        result[f"{name}_found"], result[f"{name}_true"], result[f"{name}_tp"] = (
            len(f),
            len(t),
            len(pairs),
        )
        if name == "moves":
            for kind in MOVES:
                result[f"{kind}_true"] = int((t["kind"] == kind).sum())
                result[f"{kind}_tp"] = int((t["kind"].to_numpy()[pairs[:, 1]] == kind).sum())
    result["vacancy_creation_found"] = int((found["kind"] == "vacancy_creation").sum())
    return result


def evaluate_series(
    index: int, frames: int, size: int, seed: int = SEED, kinds: tuple[str, ...] = DETECTIONS
) -> list[dict]:
    simulated = simulate(index, frames, size, seed)
    truth = truth_table(simulated)
    spacing = column_spacing([g[["y", "x"]].to_numpy() for _, g in truth.groupby("frame")])
    radius = 0.5 * spacing
    true = true_events(simulated, size, radius)
    rng = np.random.default_rng([seed, index, 1])
    found_noisy, _ = noisy(truth, rng, drift=False)
    rows, located = [], None
    for name in kinds:
        if name == "truth+noise":
            detections = found_noisy
        else:
            if located is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    located = pd.DataFrame(
                        atomlens.locate(simulated.frames, pixel_size=simulated.pixel_size)
                    )
            detections = located
        start = time.perf_counter()
        counts = simulated.frames if name == "locate+counts" else None
        tracks = track(detections, pixel_size=simulated.pixel_size, stack=counts)
        found = events(tracks, frames=counts)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "series": index,
                "material": simulated.metadata["material"],
                "pixel_size_A": simulated.pixel_size,
                "detections": name,
                "seconds": seconds,
                "sites": found.attrs["sites"],
                **score(found, true, radius, size),
            }
        )
    return rows


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    sums = table.groupby("detections", sort=False).sum(numeric_only=True)
    out = pd.DataFrame(index=sums.index)
    for name in ("moves", "arrive", "leave"):
        out[f"{name}_precision"] = [
            _ratio(r[f"{name}_tp"], r[f"{name}_found"]) for _, r in sums.iterrows()
        ]
        out[f"{name}_recall"] = [
            _ratio(r[f"{name}_tp"], r[f"{name}_true"]) for _, r in sums.iterrows()
        ]
    for kind in MOVES:
        out[f"{kind}_recall"] = [
            _ratio(r[f"{kind}_tp"], r[f"{kind}_true"]) for _, r in sums.iterrows()
        ]
    columns = [c for c in sums.columns if c.endswith(("_found", "_true", "_tp"))] + ["seconds"]
    return pd.concat([out, sums[columns]], axis=1).reset_index()


def markdown(pooled: pd.DataFrame, settings: dict) -> str:
    lines = [
        "# Events on simulated series (benchmarks/evaluate_events.py)",
        "",
        f"{settings['series']} series (seeds from {settings['seed']}; graphene, hBN, MoS2 in turn, "
        f"{VACANCIES} vacancies each), {settings['frames']} frames of {settings['size']} x "
        f"{settings['size']} px, shot noise. Match: frame within +-1, place (both ends of a "
        "move) within 0.5 column spacings, one-to-one.",
        "",
        "| detections | moves P | moves R | hop R | vacancy_migration R | arrive P | arrive R | "
        "leave P | leave R | vacancy_creation (false) | true moves (hop / vm) | time [s] |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in pooled.itertuples():
        lines.append(
            f"| {r.detections} | {r.moves_precision:.3f} | {r.moves_recall:.3f} | "
            f"{r.hop_recall:.3f} | {r.vacancy_migration_recall:.3f} | {r.arrive_precision:.3f} | "
            f"{r.arrive_recall:.3f} | {r.leave_precision:.3f} | {r.leave_recall:.3f} | "
            f"{r.vacancy_creation_found} | {r.moves_true} ({r.hop_true} / "
            f"{r.vacancy_migration_true}) | {r.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=9)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument(
        "--seed", type=int, default=SEED, help="first seed of the series (explore on others)"
    )
    parser.add_argument(
        "--detections",
        nargs="+",
        choices=DETECTIONS,
        default=list(DETECTIONS),
        help="which detections to recognise events on",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="folder for track_events.json and .md (use another one when exploring)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    rows = [
        row
        for index in range(args.series)
        for row in evaluate_series(index, args.frames, args.size, args.seed, tuple(args.detections))
    ]
    table = pd.DataFrame(rows)
    pooled = summary(table)
    settings = {**vars(args), "seconds": time.perf_counter() - start}
    settings.pop("output")  # where the files went is no result (and no absolute path is kept)
    args.output.mkdir(exist_ok=True, parents=True)
    (args.output / "track_events.json").write_text(
        json.dumps(
            {"settings": settings, "pooled": pooled.to_dict("records"),
             "series": table.to_dict("records")},
            indent=1, default=float,
        ) + "\n"
    )  # fmt: skip
    (args.output / "track_events.md").write_text(markdown(pooled, settings))
    print(markdown(pooled, settings))
    print(f"{settings['seconds']:.0f} s")


if __name__ == "__main__":
    main()
