"""Tracking on simulated series: MOTA and IDF1 of atomlens.track beside trackpy.

Held-out series of ``SeriesSampler`` (seeds from 3000000; 2-D materials with thermal jitter,
hops, vacancy migration, diffusing adatoms that appear and leave, slow drift; shot noise) are
tracked from three sets of detections:

- ``truth+noise``: the true columns (atoms stacked in one site are one column, named by the
  smallest particle id among them; adatoms as they are; atoms in view) with 0.3 px Gaussian
  localisation noise per axis and 2 % of the detections dropped at random;
- ``truth+noise+drift``: the same plus a uniform drift of (3, -1.5) px per frame added to every
  detection (and to the truth it is scored against);
- ``locate``: the columns ``atomlens.locate`` finds in the frames (``--locate-method``,
  classical by default; the pixel size and the modality, HAADF or ABF, the series was simulated
  with given); with ``--locate-on enhanced`` the HAADF series' candidates come from the
  enhanced frames (``atomlens.enhance``, ``locate(..., guide=)``; fitted on the counts), the
  ABF series are located as they are (there is no ABF enhancement model);
- ``locate+counts``: the same detections, tracked with the frames (``track(..., stack=)``): a
  lattice site that a frame's detections missed but where its counts show a column gets a
  detection before the linking (``atomlens.track.evidence``); trackpy links the same
  detections.

Each set is linked by ``atomlens.track`` (defaults) and by trackpy (``trackpy.link`` with the
same search range and memory = 3; trackpy is a benchmark-only peer, not a dependency). Scores
come from ``atomlens.metrics.tracking_scores`` with a matching radius of 0.4 times the true
columns' median nearest-neighbour distance; columns within that radius of the frame's edge are
left out of both sides (a column cut by the edge is neither a miss nor a false detection).
The lattice and adatom columns are also scored apart (identity switches).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/evaluate_track.py
(once before: ``.venv/bin/pip install trackpy==0.7``; the peer is in no extra of atomlens)
Writes benchmarks/results/track_eval.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from atomlens.data import SeriesSampler
from atomlens.metrics import tracking_scores
from atomlens.track import column_spacing, track

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 3000000
NOISE_PX = 0.3
MISSED = 0.02
DRIFT_PX = (3.0, -1.5)
MEMORY = 3


def truth_table(simulated) -> pd.DataFrame:
    """True columns per frame (module docstring), with an ``adatom`` flag."""
    tracks = simulated.tracks[simulated.tracks["in_view"]]
    sites = tracks[tracks["site"] >= 0].groupby(["frame", "site"], as_index=False)
    columns = sites.agg(particle=("particle", "min"), y=("y", "mean"), x=("x", "mean"))
    columns = columns.drop(columns="site").assign(adatom=False)
    adatoms = tracks.loc[tracks["site"] < 0, ["frame", "particle", "y", "x"]].assign(adatom=True)
    table = pd.concat([columns, adatoms], ignore_index=True)
    return table.sort_values(["frame", "particle"]).reset_index(drop=True)


def noisy(truth: pd.DataFrame, rng: np.random.Generator, drift: bool) -> tuple[pd.DataFrame, ...]:
    """Detections from the truth (module docstring) and the truth they are scored against."""
    truth = truth.copy()
    if drift:
        truth["y"] += DRIFT_PX[0] * truth["frame"]
        truth["x"] += DRIFT_PX[1] * truth["frame"]
    found = truth[["frame", "y", "x"]].copy()
    found[["y", "x"]] += rng.normal(0, NOISE_PX, (len(found), 2))
    return found[rng.random(len(found)) > MISSED].reset_index(drop=True), truth


def inside(table: pd.DataFrame, low: np.ndarray, high: np.ndarray) -> pd.DataFrame:
    """Rows whose (y, x) lie within [low, high] per frame (the scored region)."""
    frame = table["frame"].to_numpy()
    y, x = table["y"].to_numpy(), table["x"].to_numpy()
    keep = (y >= low[frame, 0]) & (y <= high[frame, 0])
    keep &= (x >= low[frame, 1]) & (x <= high[frame, 1])
    return table[keep]


def trackpy_link(found: pd.DataFrame, search_range: float) -> pd.DataFrame:
    import trackpy

    trackpy.quiet()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trackpy.link(found[["frame", "y", "x"]].copy(), search_range, memory=MEMORY)


def score(found, truth, radius, region) -> dict:
    """Overall scores, and the identity switches of lattice columns and adatoms apart."""
    found, truth = inside(found, *region), inside(truth, *region)
    result = tracking_scores(found, truth, radius)
    for kind, flag in (("lattice", False), ("adatom", True)):
        part = truth[truth["adatom"] == flag]
        if part.empty:
            result[f"idsw_{kind}"] = 0
            continue
        # the found detections nearest to this kind's columns, so FP do not count here
        kept = _near(found, part, radius)
        result[f"idsw_{kind}"] = tracking_scores(kept, part, radius)["idsw"]
    return result


def _near(found: pd.DataFrame, truth: pd.DataFrame, radius: float) -> pd.DataFrame:
    from scipy.spatial import cKDTree

    keep = np.zeros(len(found), dtype=bool)
    frames = found["frame"].to_numpy()
    for frame, rows in truth.groupby("frame"):
        mine = np.flatnonzero(frames == frame)
        if len(mine):
            distance, _ = cKDTree(rows[["y", "x"]].to_numpy()).query(
                found[["y", "x"]].to_numpy()[mine]
            )
            keep[mine[distance <= radius]] = True
    return found[keep]


def evaluate_series(
    index: int,
    sampler: SeriesSampler,
    method: str = "classical",
    locate_on: str = "raw",
    seed: int = SEED,
) -> list[dict]:
    simulated = sampler.sample(index, seed)
    truth = truth_table(simulated)
    frames = sampler.frames
    spacing = column_spacing([g[["y", "x"]].to_numpy() for _, g in truth.groupby("frame")])
    radius = 0.4 * spacing
    rng = np.random.default_rng([seed, index])
    size = np.array(simulated.frames.shape[1:], dtype=float)
    sets = {}
    for name, drift in (("truth+noise", False), ("truth+noise+drift", True)):
        found, scored = noisy(truth, rng, drift)
        shift = np.outer(np.arange(frames), DRIFT_PX) if drift else np.zeros((frames, 2))
        sets[name] = (found, scored, shift)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        modality = simulated.metadata["imaging"]["mode"].lower()  # haadf or abf
        guide = None
        if locate_on == "enhanced" and modality == "haadf":  # the shipped model is HAADF's
            guide = __import__("atomlens").enhance(simulated.frames, modality=modality)
        located = pd.DataFrame(
            __import__("atomlens").locate(
                simulated.frames, pixel_size=simulated.pixel_size, modality=modality,
                method=method, guide=guide,
            )
        )  # fmt: skip
        locate_s = time.perf_counter() - start
    sets["locate"] = (located, truth, np.zeros((frames, 2)))
    sets["locate+counts"] = (located, truth, np.zeros((frames, 2)))
    rows = []
    for name, (found, scored, shift) in sets.items():
        region = (shift + radius, shift + size - 1 - radius)
        start = time.perf_counter()
        counts = simulated.frames if name == "locate+counts" else None
        ours = track(found, pixel_size=simulated.pixel_size, stack=counts)
        ours_s = time.perf_counter() - start
        if counts is not None:  # trackpy links the same detections, those from the counts too
            found = ours[["frame", "y", "x"]]
        start = time.perf_counter()
        theirs = trackpy_link(found, ours.attrs["search_range"])
        theirs_s = time.perf_counter() - start
        for method, tracks, seconds in (("atomlens", ours, ours_s), ("trackpy", theirs, theirs_s)):
            result = score(tracks, scored, radius, region)
            rows.append(
                {
                    "series": index,
                    "material": simulated.metadata["material"],
                    "modality": simulated.metadata["imaging"]["mode"],
                    "pixel_size_A": simulated.pixel_size,
                    "detections": name,
                    "method": method,
                    "seconds": seconds,
                    "locate_seconds": locate_s if name == "locate" else None,
                    "drift_error_px": _drift_error(ours, shift) if method == "atomlens" else None,
                    **result,
                }
            )
    return rows


def _drift_error(tracks: pd.DataFrame, shift: np.ndarray) -> float:
    """Largest error of the estimated drift beyond the simulated sample drift [px]; only the
    added drift is known exactly, so this is the estimate minus the added drift."""
    estimate = np.asarray(tracks.attrs["drift"])
    return float(np.abs(estimate - shift[: len(estimate)]).max())


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Pooled scores per set of detections and method (counts summed over series)."""
    groups = table.groupby(["detections", "method"], sort=False)
    sums = groups[["gt", "found", "tp", "fn", "fp", "idsw", "idtp", "idsw_lattice",
                   "idsw_adatom"]].sum()  # fmt: skip
    sums["mota"] = 1 - (sums["fn"] + sums["fp"] + sums["idsw"]) / sums["gt"]
    sums["idf1"] = 2 * sums["idtp"] / (sums["gt"] + sums["found"])
    sums["seconds"] = groups["seconds"].sum()
    return sums.reset_index()


def markdown(pooled: pd.DataFrame, settings: dict) -> str:
    lines = [
        "# Tracking on simulated series (benchmarks/evaluate_track.py)",
        "",
        f"{settings['series']} held-out SeriesSampler series (seeds from {settings['seed']}), "
        f"{settings['frames']} frames of {settings['size']} x {settings['size']} px, "
        f"distortions={settings['distortions']!r}; matching radius 0.4 x the column spacing; "
        f"locate method {settings.get('locate_method', 'classical')} on the "
        f"{settings.get('locate_on', 'raw')} frames.",
        "",
        "| detections | method | MOTA | IDF1 | ID switches (lattice / adatoms) | FN | FP | "
        "GT | time [s] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in pooled.itertuples():
        lines.append(
            f"| {row.detections} | {row.method} | {row.mota:.4f} | {row.idf1:.4f} | "
            f"{row.idsw} ({row.idsw_lattice} / {row.idsw_adatom}) | {row.fn} | {row.fp} | "
            f"{row.gt} | {row.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _check_trackpy() -> None:
    """Exit with the install command before anything runs when the peer is missing (it used
    to fail after the first series had been located)."""
    try:
        import trackpy  # noqa: F401
    except ImportError:
        raise SystemExit(
            "evaluate_track.py links every set with trackpy too (a benchmark-only peer): "
            "install it first with `.venv/bin/pip install trackpy==0.7`."
        ) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--distortions", default="shot", choices=("shot", "realistic", "none"))
    parser.add_argument("--locate-method", default="classical", choices=("classical", "unet"))
    parser.add_argument(
        "--locate-on",
        default="raw",
        choices=("raw", "enhanced"),
        help="find the columns on the enhanced frames (HAADF series; guide=), fit on the counts",
    )
    parser.add_argument("--tag", default="", help="suffix of the result files (track_eval_TAG)")
    parser.add_argument(
        "--seed", type=int, default=SEED, help="series seed: tune on others, report the default"
    )
    args = parser.parse_args()
    _check_trackpy()
    sampler = SeriesSampler(frames=args.frames, size=args.size, distortions=args.distortions)
    start = time.perf_counter()
    rows = [
        row
        for index in range(args.series)
        for row in evaluate_series(index, sampler, args.locate_method, args.locate_on, args.seed)
    ]
    table = pd.DataFrame(rows)
    pooled = summary(table)
    settings = {**vars(args), "noise_px": NOISE_PX, "missed": MISSED,
                "drift_px_per_frame": DRIFT_PX, "memory": MEMORY,
                "seconds": time.perf_counter() - start}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    name = "track_eval" + (f"_{args.tag}" if args.tag else "")
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {"settings": settings, "pooled": pooled.to_dict("records"),
             "series": table.to_dict("records")},
            indent=1, default=float,
        ) + "\n"
    )  # fmt: skip
    (RESULTS / f"{name}.md").write_text(markdown(pooled, settings))
    print(markdown(pooled, settings))
    print(f"{settings['seconds']:.0f} s")


if __name__ == "__main__":
    main()
