"""Time of locate + track on a simulated series, serially and with 1 and 2 Dask workers.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/track_scaling.py [--frames 100]
[--size 512]``.
Writes ``benchmarks/results/track_scaling.json``; the table is in docs/track.md (Scale-out).

The locate step runs frame-parallel (``atomlens.locate(stack, scheduler=..., workers=...)``);
every Dask table is checked to equal the serial one row for row. The tracking step proper
(drift and linking, ``atomlens.track`` on the detections) is serial and timed once. Issue 12's
target: the whole run on a 100-frame 512 x 512 series under 2 minutes on 2 CPU cores, with a
near-linear speed-up up to the core count. The machine this ran on is shared with other
jobs, so its times, and above all the speed-ups, are depressed: the load average before each
run is recorded, and the CPU seconds each run used (``cores_used``: CPU seconds per second,
about the number of workers when each had a core to itself).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import atomlens
from atomlens.data import SeriesSampler

RESULTS = Path(__file__).parent / "results"
#: (label, scheduler, workers) of the locate runs; None, None is the serial loop.
RUNS = [
    ("serial", None, None),
    ("threads, 1 worker", "threads", 1),
    ("threads, 2 workers", "threads", 2),
    ("processes, 1 worker", "processes", 1),
    ("processes, 2 workers", "processes", 2),
]


def _timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def _cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its finished child processes [s]."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=3000000)
    parser.add_argument("--output", type=Path, default=RESULTS / "track_scaling.json")
    args = parser.parse_args()

    sampler = SeriesSampler(frames=args.frames, size=args.size, distortions="shot")
    series, simulate_s = _timed(lambda: sampler.sample(0, seed=args.seed))
    print(f"simulated {series.frames.shape} in {simulate_s:.1f} s "
          f"({series.metadata['material']}, {series.pixel_size} Å/px)")  # fmt: skip
    runs, serial = [], None
    for label, scheduler, workers in RUNS:
        load, cpu = os.getloadavg()[0], _cpu_seconds()
        table, seconds = _timed(
            lambda s=scheduler, w=workers: atomlens.locate(
                series.frames, pixel_size=series.pixel_size, scheduler=s, workers=w
            )
        )
        if serial is None:
            serial = table
        identical = bool(table.equals(serial))  # the same rows, values and order
        cpu = _cpu_seconds() - cpu  # the pool's processes have ended: counted
        runs.append({"run": label, "scheduler": scheduler, "workers": workers,
                     "locate_s": round(seconds, 2), "cpu_s": round(cpu, 1),
                     "cores_used": round(cpu / seconds, 2), "identical": identical,
                     "load_before": round(load, 2)})  # fmt: skip
        print(f"locate, {label}: {seconds:.1f} s, {cpu:.1f} CPU s (load {load:.2f} before), "
              f"{'identical to' if identical else 'DIFFERENT from'} the serial table")  # fmt: skip
    tracks, track_s = _timed(lambda: atomlens.track(serial))
    print(f"track (drift + linking, serial): {track_s:.1f} s, {tracks['particle'].nunique()} "
          "trajectories")  # fmt: skip
    base = runs[0]["locate_s"]
    for run in runs:
        run["speedup"] = round(base / run["locate_s"], 2)
        run["total_s"] = round(run["locate_s"] + track_s, 1)
    result = {
        "series": {
            "frames": args.frames,
            "size": args.size,
            "seed": args.seed,
            "material": series.metadata["material"],
            "pixel_size": series.pixel_size,
            "columns": len(serial),
            "simulate_s": round(simulate_s, 1),
        },
        "runs": runs,
        "track_s": round(track_s, 1),
        "tables_identical": all(run["identical"] for run in runs),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_after": round(os.getloadavg()[0], 2),
            "note": "a load above about 1 before a run means other jobs shared the cores: "
            "its times are then upper bounds and its speed-up a lower bound",
        },
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/track_scaling.py "
        f"--frames {args.frames} --size {args.size} --seed {args.seed}",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(args.output)


if __name__ == "__main__":
    main()
