"""Ronchigrams per second of ``atomlens simulate ronchigram --count N`` against the library call.

Run: ``.venv/bin/python benchmarks/cli_ronchigram_throughput.py [--count 1000] [--repeats 2]``.
Writes ``benchmarks/results/cli_ronchigram_throughput.md``.

The setting is the one of ``ronchigram_throughput.py``'s "amorphous C, 100 Å (5 slices)" row and
of the command's defaults: 200 kV, 30 mrad, 128 px at 0.5 mrad / px, C10 in [-50, 50] nm and C12
up to 20 nm (random angle), no detector noise, automatic oversampling. The library is timed in
this process after a warm-up batch (as ``ronchigram_throughput.py`` does); the command is timed
end to end in a fresh process, including interpreter start-up and imports, and once more with
that start-up (the wall time of ``atomlens --version``, which imports the same modules)
subtracted. Library and command runs alternate, and the best of ``--repeats`` is kept, because
other jobs share the machine. ``--before SRC`` also times the command of another source tree
(e.g. ``git archive COMMIT src | tar -x -C /tmp/before``, then ``--before /tmp/before/src``).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from atomlens.physics import AmorphousSpecimen, RonchigramSetup, simulate_ronchigrams
from atomlens.physics.optics.aberrations import random_aberrations

RANGES = {"C10": (-500.0, 500.0), "C12": (0.0, 200.0)}
RESULTS = Path(__file__).parent / "results"


def command(count: int, size: int, batch: int, output: Path) -> list[str]:
    ranges = [f"--range={name}={low:g}:{high:g}" for name, (low, high) in RANGES.items()]
    return [sys.executable, "-m", "atomlens.cli", "simulate", "ronchigram", "--count",
            str(count), "--size", str(size), *ranges, "--batch-size", str(batch),
            "--no-progress", "--overwrite", "-o", str(output)]  # fmt: skip


def wall(args: list[str], source: str | None = None) -> float:
    """Seconds a fresh process takes; ``source`` puts another atomlens first on the path."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = source
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def time_library(count: int, size: int, batch: int) -> float:
    """Ronchigrams per second of one simulate_ronchigrams call, after a warm-up batch."""
    setup = RonchigramSetup(energy=200e3, semiangle=30.0, angular_sampling=64.0 / size, size=size)
    specimen = AmorphousSpecimen(thickness=100, slice_thickness=20)
    # the command's own draws (seed 0), so both simulate the same probes and oversampling
    aberrations = random_aberrations(count, RANGES, np.random.default_rng([0, 2**31]))
    simulate_ronchigrams(setup, aberrations[:32], specimen, batch_size=32, seed=1)
    start = time.perf_counter()
    simulate_ronchigrams(setup, aberrations, specimen, batch_size=batch, seed=0)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="Ronchigrams per run (1000)")
    parser.add_argument("--size", type=int, default=128, help="detector size [px] (128)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs (2)")
    parser.add_argument("--before", help="src folder of another atomlens to time as well")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "set.h5"
        startup = min(wall([sys.executable, "-m", "atomlens.cli", "--version"]) for _ in range(3))
        for batch in args.batch_size:
            cli_args = command(args.count, args.size, batch, output)
            library, cli, before = [], [], []
            for _ in range(args.repeats):
                library.append(time_library(args.count, args.size, batch))
                cli.append(wall(cli_args))
                if args.before:
                    before.append(wall(cli_args, args.before))
            row = {
                "batch": batch,
                "library": max(library),
                "cli": args.count / min(cli),
                "cli_run": args.count / (min(cli) - startup),
                "before": args.count / min(before) if before else None,
            }
            rows.append(row)
            print(row, f"start-up {startup:.1f} s", flush=True)
    machine = (
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch "
        f"threads {torch.get_num_threads()}, shared with other jobs"
    )
    lines = [
        "| setting | library img/s | CLI img/s (end to end) | CLI img/s (without start-up) "
        "| ratio library / CLI (end to end) |" + (" CLI img/s before |" if args.before else ""),
        "|---|---|---|---|---|" + ("---|" if args.before else ""),
        *(
            f"| {args.size} px, amorphous C 100 Å (5 slices), batch {r['batch']}, "
            f"{args.count} images | {r['library']:.0f} | {r['cli']:.0f} | {r['cli_run']:.0f} | "
            f"{r['library'] / r['cli']:.2f} |" + (f" {r['before']:.0f} |" if r["before"] else "")
            for r in rows
        ),
        "",
        f"Machine: {machine}. Start-up (interpreter and imports, `atomlens --version`): "
        f"{startup:.1f} s. Best of {args.repeats} alternating runs. Command: "
        "`.venv/bin/python benchmarks/cli_ronchigram_throughput.py"
        + (" --before SRC" if args.before else "")
        + "`.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_ronchigram_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
