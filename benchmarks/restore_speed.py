"""Speed of the restoration network on a 1024 x 1024 image: size, precision and threads.

Measures wall time of ``atomlens.restore.restore`` (tiling, scaling, the Wiener step and the
lattice check included; and without the Wiener step) and of the bare network for the
``compact`` and ``full`` CGRDN, in float32 and bfloat16, with 1 and 2 threads, and the
output difference bfloat16 makes. Weights are random for the ``full`` size (speed does not
depend on them); ``compact`` uses the shipped model when it is installed.

    .venv/bin/python benchmarks/restore_speed.py -o benchmarks/results/restore_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from atomlens.restore import restore
from atomlens.restore.network import build_network, predict_normalised


def _best(function, *arguments, repeats: int = 3, **options) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*arguments, **options)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument(
        "--networks",
        default="compact,full",
        help="bare network sizes to time",
    )
    parser.add_argument(
        "--precisions",
        default="float32,bfloat16",
        help="arithmetic to time (bfloat16 took minutes per 256 px tile of the full network on "
        "the machine of 2026-12-01)",
    )
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    rng = np.random.default_rng(0)
    image = rng.poisson(50, size=(args.size, args.size)).astype(np.float32)
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for size in args.networks.split(","):
            net = build_network(size).eval()
            torch.nn.init.normal_(net.tail.weight, std=0.01)
            for precision in precisions:
                dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
                tiles = image[None] / 50.0
                predict_normalised(net, tiles[:, :256, :256], dtype=dtype)  # warm-up
                repeats = 1 if size == "full" else 3
                seconds = _best(predict_normalised, net, tiles, dtype=dtype, repeats=repeats)
                rows.append({"network": size, "precision": precision, "threads": threads,
                             "what": "bare network", "seconds": round(seconds, 3)})  # fmt: skip
        for precision in precisions:
            for step in (True, False):
                seconds = _best(restore, image, precision=precision, wiener_step=step)
                what = "atomlens.restore" + ("" if step else " (wiener_step=False)")
                rows.append({"network": "compact (shipped)", "precision": precision,
                             "threads": threads, "what": what, "seconds":
                             round(seconds, 3)})  # fmt: skip
    difference = None
    if "bfloat16" in precisions:
        fp32 = restore(image, precision="float32")
        bf16 = restore(image, precision="bfloat16")
        spread = float(np.percentile(fp32, 99.5) - np.percentile(fp32, 0.5))
        difference = round(float(np.abs(bf16 - fp32).max()) / spread, 5)
    result = {
        "image": f"{args.size} x {args.size}",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "load_average": os.getloadavg(),
        "rows": rows,
        "bfloat16_vs_float32_max_abs_difference_relative_to_range": difference,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print("| network | precision | threads | what | seconds |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['network']} | {row['precision']} | {row['threads']} | {row['what']} | "
              f"{row['seconds']} |")  # fmt: skip
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))


if __name__ == "__main__":
    main()
