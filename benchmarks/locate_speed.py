"""Seconds to locate and refine about 2000 columns of a 1024 x 1024 HAADF image, against Atomap.

The issue's speed target: 1024 x 1024 with about 2000 columns located and refined in at most
2 s on 2 CPU cores, at least 20 x faster than Atomap on the same image at equal or better
precision.

Images: the scenes of ``evaluate_locate.py`` (atomlens's HAADF simulator, 3 % column vacancies,
a random in-plane rotation, Poisson noise) at 1024 x 1024 px, with the pixel size of each
material chosen so that about 2000 columns are scored, at 200 electrons per column. atomlens
runs ``locate(image, pixel_size=...)`` (everything else, the spacing included, estimated from
the image), timed as the median of ``--repeats`` runs in this process after one warm-up run,
alternated with as many runs with ``site_search=False`` (the lattice-site search's cost) and
with ``precise=True`` (the wider refit's cost and gain);
Atomap (benchmark-only, its own environment: ``benchmarks/peers/atomap/setup.sh``) runs once,
with the separation 0.45 x the true spacing, timed inside its process (start-up excluded).
Both are scored against the truth like ``evaluate_locate.py`` (F1, radial RMSE, and the RMSE
over the columns' Cramer-Rao bound).

Run::

    .venv/bin/python benchmarks/locate_speed.py -o benchmarks/results/locate_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from atomlens.locate import locate
from evaluate_locate import atomap_runner, column_bounds, make_scene, noisy, score
from results_io import write_results

#: Materials and pixel sizes [Å] that give about 2000 scored columns in 1024 x 1024 px.
CASES = (("SrTiO3", 0.125), ("GaN", 0.095), ("MoS2", 0.094))
DOSE = 200.0  # electrons per column


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-atomap", action="store_true", help="atomlens only")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON (and .md beside)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    atomap, why = (None, "--no-atomap") if args.no_atomap else atomap_runner()
    rows = []
    for index, (material, pixel_size) in enumerate(CASES):
        scene = make_scene("haadf", material, index, args.size, pixel_size)
        image, _, scale = noisy(scene, DOSE, 0)
        bounds = column_bounds(scene, scale)
        times, plain_times, precise_times = [], [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            locate(image, pixel_size=pixel_size)  # warm-up: imports, allocations
            for _ in range(args.repeats):  # alternated: a slower spell hits both alike
                start = time.perf_counter()
                table = locate(image, pixel_size=pixel_size)
                times.append(time.perf_counter() - start)
                start = time.perf_counter()
                plain = locate(image, pixel_size=pixel_size, site_search=False)
                plain_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                fine = locate(image, pixel_size=pixel_size, precise=True)
                precise_times.append(time.perf_counter() - start)
        found = table[["y", "x"]].to_numpy(float)
        row = {"material": material, "pixel_size": pixel_size, "columns": len(scene.truth),
               "found": len(table), "spacing_px": scene.spacing,
               "atomlens_s": float(np.median(times)), "atomlens_s_all": times,
               "atomlens": score(scene, found, bounds),
               "no_sites_s": float(np.median(plain_times)), "no_sites_s_all": plain_times,
               "no_sites": score(scene, plain[["y", "x"]].to_numpy(float), bounds),
               "precise_s": float(np.median(precise_times)), "precise_s_all": precise_times,
               "precise": score(scene, fine[["y", "x"]].to_numpy(float), bounds)}  # fmt: skip
        if atomap is not None:
            separation = max(2, int(0.45 * scene.spacing))
            positions, seconds = atomap(image[None], separation, dark=False)
            row["atomap_s"] = float(seconds[0])
            row["atomap"] = score(scene, positions[0], bounds)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not k.endswith("_all")},
                         default=float), flush=True)  # fmt: skip
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    settings = {"command": "python benchmarks/locate_speed.py " + " ".join(
        sys.argv[1:] if argv is None else argv), "size": args.size, "dose_column": DOSE,
        "cores": cores, "atomap": "ran" if atomap is not None else f"skipped: {why}"}  # fmt: skip
    write_results(args.output, settings, rows, markdown(rows, settings))


def markdown(rows: list[dict], settings: dict) -> str:
    lines = [
        "# Locating about 2000 columns of a 1024 x 1024 HAADF image",
        "",
        f"Command: `{settings['command']}`; {settings['cores']} CPU cores; "
        f"{settings['dose_column']:g} e-/column; Atomap {settings['atomap']}.",
        "",
        "| material | Å/px | columns | atomlens s | atomlens F1 | RMSE [pm] | RMSE / CRB "
        "| no site search: s | F1 | RMSE / CRB | precise: s | F1 | RMSE / CRB "
        "| Atomap s | Atomap F1 | RMSE [pm] | RMSE / CRB | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours, plain = row["atomlens"], row.get("no_sites")
        cells = [row["material"], f"{row['pixel_size']:g}", str(row["columns"]),
                 f"{row['atomlens_s']:.2f}", f"{ours['f1']:.3f}", f"{ours['rmse_pm']:.1f}",
                 f"{ours['rmse_over_crb']:.2f}"]  # fmt: skip
        cells += ([f"{row['no_sites_s']:.2f}", f"{plain['f1']:.3f}",
                   f"{plain['rmse_over_crb']:.2f}"] if plain else ["-"] * 3)  # fmt: skip
        fine = row.get("precise")
        cells += ([f"{row['precise_s']:.2f}", f"{fine['f1']:.3f}",
                   f"{fine['rmse_over_crb']:.2f}"] if fine else ["-"] * 3)  # fmt: skip
        if "atomap" in row:
            peer = row["atomap"]
            cells += [f"{row['atomap_s']:.1f}", f"{peer['f1']:.3f}", f"{peer['rmse_pm']:.1f}",
                      f"{peer['rmse_over_crb']:.2f}",
                      f"{row['atomap_s'] / row['atomlens_s']:.0f} x"]  # fmt: skip
        else:
            cells += ["-"] * 5
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
