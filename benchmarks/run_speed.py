"""Wall time of the whole ``atomlens run`` on a simulated series (issue 12's speed target).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_speed.py [--repeats 3] [--frames 100]
[--size 512]``. Writes ``benchmarks/results/run_speed.json``; the table is in docs/track.md
(Scale-out, Measured).

The series is ``track_scaling.py``'s (one ``SeriesSampler`` series, seed 3000000: hBN at
0.2 Å/px, shot noise), written as a TIFF stack to a temporary folder; the command is run as a
user runs it (a fresh process each time, so its start-up counts)::

    atomlens run series.tif --pixel-size 0.2 --frame-time 1 --scheduler processes \\
        --workers 2 -o OUT

and timed from outside; the steps' own times come from its ``summary.json``. Issue 12's
target: under 2 minutes for 100 frames of 512 x 512 px on 2 CPU cores. The machine this runs
on may be shared: the load average before each run is recorded, and the time of a fixed
single-core loop just before and just after it (``reference_s``; a slower machine takes
longer for both).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from atomlens.data import SeriesSampler
from atomlens.io import write_tiff

RESULTS = Path(__file__).parent / "results"


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the command and its workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reference() -> float:
    """Seconds of a fixed single-core loop (10 million integer additions): the machine's own
    speed just then. The same loop took 2.8-4.7 s (30 million) minutes apart on the 2-core
    machine of docs/track.md, so a run's time is read beside it."""
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=3000000)
    parser.add_argument("--output", type=Path, default=RESULTS / "run_speed.json")
    args = parser.parse_args()

    series = SeriesSampler(frames=args.frames, size=args.size, distortions="shot").sample(
        0, seed=args.seed
    )
    command = [str(Path(sys.executable).with_name("atomlens")), "run"]
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        stack = write_tiff(Path(scratch) / "series.tif", series.frames.astype("float32"))
        for repeat in range(args.repeats):
            out = Path(scratch) / f"run{repeat}"
            call = [*command, str(stack), "--pixel-size", str(series.pixel_size),
                    "--frame-time", "1", "--scheduler", "processes", "--workers", "2",
                    "-o", str(out)]  # fmt: skip
            before = _reference()
            load, cpu, start = os.getloadavg()[0], _children_cpu(), time.perf_counter()
            subprocess.run(call, check=True, capture_output=True,
                           env=os.environ | {"OMP_NUM_THREADS": "1"})  # fmt: skip
            wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
            reference = (round(before, 2), round(_reference(), 2))
            summary = json.loads((out / "summary.json").read_text())
            steps = {name: round(seconds, 1) for name, seconds in summary["timings_s"].items()}
            runs.append({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "steps_s": steps,
                         "other_s": round(wall - sum(summary["timings_s"].values()), 1),
                         "columns": summary["columns"], "trajectories": summary["trajectories"],
                         "events": sum(summary["events"].values()),
                         "load_before": round(load, 2),
                         "reference_s": reference})  # fmt: skip
            print(f"run {repeat + 1}: {wall:.1f} s wall, {cpu:.1f} CPU s, steps {steps} "
                  f"(load {load:.2f}, reference loop {reference} s before, after)")  # fmt: skip
            shutil.rmtree(out)
    walls = [run["wall_s"] for run in runs]
    result = {
        "series": {"frames": args.frames, "size": args.size, "seed": args.seed,
                   "material": series.metadata["material"], "pixel_size": series.pixel_size},
        "runs": runs,
        "wall_s": {"min": min(walls), "max": max(walls)},
        "target_s": 120.0,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_speed.py "
        f"--repeats {args.repeats} --frames {args.frames} --size {args.size} --seed {args.seed}",
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(args.output)


if __name__ == "__main__":
    main()
