"""Ronchigrams per second of the atomlens simulator, with abTEM as a baseline in the same run.

Run: ``.venv/bin/python benchmarks/ronchigram_throughput.py [--count 256] [--threads 2]``.
Writes ``benchmarks/results/ronchigram_throughput.{md,json}``.

Aberrations are drawn uniformly with C10 in [-50, 50] nm and |C12| up to 20 nm (random angle),
200 kV, 30 mrad; the detector spans +-32 mrad (0.5 mrad / px at 128 px, 0.25 at 256 px).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from atomlens.physics import (
    AmorphousSpecimen,
    Compose,
    CrystalSpecimen,
    PhaseGrating,
    RonchigramSetup,
    ronchigram_camera,
    simulate_ronchigrams,
)
from atomlens.physics.optics.aberrations import random_aberrations

RANGES = {"C10": (-500.0, 500.0), "C12": (0.0, 200.0)}
RESULTS = Path(__file__).parent / "results"


def _specimens() -> dict:
    from ase.build import bulk

    return {
        "thin amorphous C, 20 Å (1 slice)": AmorphousSpecimen(thickness=20, slice_thickness=20),
        "white-noise phase grating": PhaseGrating(phase_std=0.5),
        "amorphous C, 100 Å (5 slices)": AmorphousSpecimen(thickness=100, slice_thickness=20),
        "Si [001] crystal, 2 cells (1 slice)": CrystalSpecimen(
            atoms=bulk("Si", "diamond", a=5.431, cubic=True), repeats_z=2, slice_thickness=20
        ),
    }


def _setup(size: int) -> RonchigramSetup:
    return RonchigramSetup(energy=200e3, semiangle=30.0, angular_sampling=64.0 / size, size=size)


def time_atomlens(size: int, specimen, count: int, detector: Compose | None) -> float:
    """Ronchigrams per second, after a warm-up batch."""
    setup = _setup(size)
    aberrations = random_aberrations(count, RANGES, np.random.default_rng(0))
    simulate_ronchigrams(setup, aberrations[:32], specimen, detector=detector, batch_size=32)
    start = time.perf_counter()
    simulate_ronchigrams(setup, aberrations, specimen, detector=detector, batch_size=32, seed=1)
    return count / (time.perf_counter() - start)


def time_abtem(size: int, count: int) -> float | None:
    """abTEM on the thin amorphous case: a fresh random carbon film per Ronchigram."""
    try:
        import abtem
        from ase import Atoms
    except ImportError:
        return None
    setup = _setup(size)
    extent = setup.extent[0]
    rng = np.random.default_rng(0)
    aberrations = random_aberrations(count + 1, RANGES, rng)
    abtem.config.set({"device": "cpu", "fft": "fftw", "num_threads": torch.get_num_threads()})
    start = None
    for index, aberration in enumerate(aberrations):
        if index == 1:
            start = time.perf_counter()
        n_atoms = rng.poisson(0.1 * extent**2 * 20)
        atoms = Atoms(
            "C" * n_atoms,
            positions=rng.uniform(0, 1, (n_atoms, 3)) * [extent, extent, 20],
            cell=[extent, extent, 20],
        )
        potential = abtem.Potential(atoms, gpts=setup.size, slice_thickness=20)
        probe = abtem.Probe(
            energy=setup.energy, semiangle_cutoff=setup.semiangle, **aberration.to_abtem()
        )
        waves = probe.multislice(potential, scan=(extent / 2, extent / 2))
        waves.diffraction_patterns(max_angle=None).compute(progress_bar=False)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=256, help="Ronchigrams per case")
    parser.add_argument("--abtem-count", type=int, default=8, help="Ronchigrams for abTEM")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 = CI machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    noisy = ronchigram_camera(1e6, readout_noise=2.0, psf_sigma=0.7)
    rows = []
    for size in (128, 256):
        for name, specimen in _specimens().items():
            for label, detector in (("none", None), ("dose 1e6 e-, PSF, read-out", noisy)):
                if detector is not None and not name.startswith("thin"):
                    continue
                rate = time_atomlens(size, specimen, args.count, detector)
                rows.append(
                    {
                        "code": "atomlens",
                        "size": size,
                        "specimen": name,
                        "detector": label,
                        "per_second": rate,
                    }
                )
                print(rows[-1])
        rate = time_abtem(size, args.abtem_count)
        if rate is not None:
            rows.append(
                {
                    "code": "abTEM " + __import__("abtem").__version__,
                    "size": size,
                    "specimen": "thin amorphous C, 20 Å (1 slice)",
                    "detector": "none",
                    "per_second": rate,
                }
            )
            print(rows[-1])
    machine = f"{platform.processor() or platform.machine()}, torch threads {args.threads}"
    lines = [
        "| code | size [px] | specimen | detector | Ronchigrams / s |",
        "|---|---|---|---|---|",
        *(
            f"| {r['code']} | {r['size']} | {r['specimen']} | {r['detector']} | "
            f"{r['per_second']:.0f} |"
            for r in rows
        ),
        "",
        f"Machine: {machine}; {args.count} Ronchigrams per atomlens case (batch 32), "
        f"{args.abtem_count} for abTEM. "
        "Command: `.venv/bin/python benchmarks/ronchigram_throughput.py`.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ronchigram_throughput.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "ronchigram_throughput.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
