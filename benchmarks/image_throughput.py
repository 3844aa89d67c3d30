"""Simulated images per second (256 x 256, realistic distortions), with abTEM as a baseline.

Run: ``.venv/bin/python benchmarks/image_throughput.py [--count 40] [--threads 2]``.
Writes ``benchmarks/results/image_throughput.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from atomlens.data import ImageSampler
from atomlens.physics import HRTEMImaging, STEMImaging, field, simulate_image
from atomlens.physics.detectors import realistic_stem, realistic_tem

RESULTS = Path(__file__).parent / "results"
SIZE = 256
CASES = [  # material, zone axis, pixel size [Å], thickness [Å]
    ("SrTiO3", (0, 0, 1), 0.15, 40.0),
    ("Si", (1, 1, 0), 0.1, 40.0),
    ("Au", (0, 0, 1), 0.12, 40.0),
    ("MoS2", (0, 0, 1), 0.12, None),
]


def _rate(make, count: int) -> float:
    make(0)  # warm-up
    start = time.perf_counter()
    for index in range(1, count + 1):
        make(index)
    return count / (time.perf_counter() - start)


def time_atomlens(modality: str, case, count: int) -> float:
    material, zone, pixel, thickness = case
    atoms = field(material, (SIZE, SIZE), pixel, zone_axis=zone, thickness=thickness)
    imaging = STEMImaging() if modality == "STEM" else HRTEMImaging()  # HRTEM: 2 Å slices
    preset = realistic_stem if modality == "STEM" else realistic_tem

    def make(index: int):
        rng = np.random.default_rng(index)
        return simulate_image(atoms, pixel, imaging, distortions=preset(rng), rng=rng)

    return _rate(make, count)


def time_sampler(modality: str, count: int) -> float:
    sampler = ImageSampler(modality=modality.lower(), size=SIZE)
    return _rate(lambda index: sampler.sample(index), count)


def time_abtem(modality: str, count: int) -> tuple[float, str] | None:
    """abTEM on SrTiO3 [001], 40 Å: HRTEM of the 256 x 256 field, or HAADF of a 16 x 16 scan."""
    try:
        import abtem
    except ImportError:
        return None
    material, zone, pixel, thickness = CASES[0]
    atoms = field(material, (SIZE, SIZE), pixel, zone_axis=zone, thickness=thickness)
    abtem.config.set({"device": "cpu", "fft": "fftw"})
    if modality == "HRTEM":
        potential = abtem.Potential(atoms, gpts=(SIZE, SIZE), slice_thickness=2.0)
        ctf = abtem.CTF(energy=300e3, C10=80.0, C30=-1.5e5)

        def make(index: int):
            wave = abtem.PlaneWave(energy=300e3).multislice(potential)
            return wave.apply_ctf(ctf).intensity().compute(progress_bar=False)

        return _rate(make, count), "256 x 256 field"
    potential = abtem.Potential(atoms, sampling=0.05, slice_thickness=2.0)
    probe = abtem.Probe(energy=200e3, semiangle_cutoff=25)
    extent = 16 * pixel
    scan = abtem.GridScan(start=(0, 0), end=(extent, extent), gpts=(16, 16))
    detector = abtem.AnnularDetector(inner=70, outer=200)

    def make_stem(index: int):
        return probe.scan(potential, scan=scan, detectors=detector).compute(progress_bar=False)

    return _rate(make_stem, count), "16 x 16 probe positions (1/256 of the field)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="images per atomlens case")
    parser.add_argument("--abtem-count", type=int, default=1, help="images per abTEM case")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 = CI machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for modality in ("STEM", "HRTEM"):
        for case in CASES:
            rate = time_atomlens(modality, case, args.count)
            zone = "".join(str(i) for i in case[1])
            rows.append(
                {
                    "code": "atomlens",
                    "modality": modality,
                    "case": f"{case[0]} [{zone}], {case[2]} Å/px, "
                    f"{'monolayer' if case[3] is None else f'{case[3]:.0f} Å'}",
                    "per_second": rate,
                }
            )
            print(rows[-1])
        rate = time_sampler(modality, args.count)
        rows.append(
            {
                "code": "atomlens",
                "modality": modality,
                "case": "ImageSampler: random structure, microscope and distortions"
                + (" (4 Å slices)" if modality == "HRTEM" else ""),
                "per_second": rate,
            }
        )
        print(rows[-1])
        baseline = time_abtem(modality, args.abtem_count)
        if baseline is not None:
            import abtem

            rows.append(
                {
                    "code": f"abTEM {abtem.__version__}",
                    "modality": modality,
                    "case": f"SrTiO3 [001], 40 Å, {baseline[1]}, no distortions",
                    "per_second": baseline[0],
                }
            )
            print(rows[-1])
    machine = f"{platform.machine()}, torch threads {args.threads}"
    lines = [
        "| code | modality | case (256 x 256 px, realistic distortions) | images / s |",
        "|---|---|---|---|",
        *(f"| {r['code']} | {r['modality']} | {r['case']} | {r['per_second']:.3g} |" for r in rows),
        "",
        f"Machine: {machine}. Command: `.venv/bin/python benchmarks/image_throughput.py`.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image_throughput.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "image_throughput.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
