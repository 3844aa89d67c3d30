"""A Ronchigram test set simulated by abTEM, an independent code, for the aberration estimator.

Atomistic amorphous carbon (random atoms at 2.0 g/cm^3 with a 1.2 Å minimum distance, ase),
50-150 Å thick, abTEM multislice with Lobato potentials in 2 Å slices, 200 kV, 30 mrad, one probe
position per Ronchigram; the 0.31 mrad/px patterns are binned 2 x 2 (0.63 mrad/px, 192 px) and
recorded with Poisson noise at 1e5-1e7 e- per image. Every specimen is used for a defocus pair:
aberrations A and A + 20 nm of C10, at the same probe position. None of this is used in training.
Aberrations: ``--ranges target`` draws C10 in +-50 nm, |C12| <= 20 nm, |C21|, |C23| <= 100 nm and
C30 in +-5 µm; ``--ranges c10-c12`` only C10 and C12 (the rest zero).

    .venv/bin/python benchmarks/calibration_abtem_set.py --specimens 25 --per-specimen 8 \
        --out /tmp/atomlens_calibration_eval/abtem.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from atomlens.calibrate.training import coefficient_array
from atomlens.core.energy import wavelength
from atomlens.physics.optics.aberrations import random_aberrations

ENERGY, SEMIANGLE, EXTENT, GPTS = 200e3, 30.0, 80.0, 384
TARGET_RANGES = {"C10": (-500.0, 500.0), "C12": (0.0, 200.0), "C21": (0.0, 1000.0),
                 "C23": (0.0, 1000.0), "C30": (-5e4, 5e4)}  # fmt: skip
RANGES = {
    "target": TARGET_RANGES,  # a corrected microscope: small C21, C23, C30 as well
    "c10-c12": {"C10": (-500.0, 500.0), "C12": (0.0, 200.0)},  # the setting, only these
}
PAIR_OFFSET = 200.0  # [Å] of C10 for the second image of each pair


def amorphous_carbon(
    thickness: float, rng: np.random.Generator, gap: float = 1.2, extent: float = EXTENT
):
    """ase.Atoms of random carbon at 0.100 atoms / Å^3 with no two atoms closer than ``gap``.

    The box is ``extent`` x ``extent`` x ``thickness`` [Å], periodic in x and y.
    """
    from ase import Atoms

    count = int(0.100 * extent * extent * thickness)
    box = np.array([extent, extent, thickness])
    positions = rng.uniform(0, 1, (count, 3)) * box
    for _ in range(30):  # redraw one atom of every pair closer than the gap
        tree = cKDTree(positions, boxsize=[extent, extent, thickness + 2 * gap])
        close = tree.query_pairs(gap, output_type="ndarray")
        if len(close) == 0:
            break
        redraw = np.unique(close[:, 0])
        positions[redraw] = rng.uniform(0, 1, (len(redraw), 3)) * box
    return Atoms(f"C{count}", positions=positions, cell=box, pbc=(True, True, False))


def main() -> None:
    import abtem

    from atomlens.physics.detectors import ronchigram_camera

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specimens", type=int, default=25)
    parser.add_argument("--per-specimen", type=int, default=8)
    parser.add_argument("--seed", type=int, default=910_000)
    parser.add_argument("--ranges", choices=sorted(RANGES), default="target")
    parser.add_argument(
        "--out", type=Path, default=Path("/tmp/atomlens_calibration_eval/abtem.npz")
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    abtem.config.set({"diagnostics.progress_bar": False})
    rng = np.random.default_rng(args.seed)
    count = args.specimens * args.per_specimen
    aberrations = random_aberrations(count, RANGES[args.ranges], rng)
    images, pairs, thicknesses, doses = [], [], [], []
    sampling = wavelength(ENERGY) / EXTENT * 1e3 * 2  # [mrad / px] after 2 x 2 binning
    start = time.perf_counter()
    for s in range(args.specimens):
        thickness = rng.uniform(50, 150)
        atoms = amorphous_carbon(thickness, rng)
        potential = abtem.Potential(atoms, gpts=GPTS, slice_thickness=2.0).build().compute()
        for j in range(args.per_specimen):
            item = aberrations[s * args.per_specimen + j]
            position = rng.uniform(0.3, 0.7, 2) * EXTENT
            dose = float(np.exp(rng.uniform(np.log(1e5), np.log(1e7))))
            detector = ronchigram_camera(dose)
            recorded = []
            for shift in (0.0, PAIR_OFFSET):
                probe = abtem.Probe(energy=ENERGY, semiangle_cutoff=SEMIANGLE,
                                    **item.replace(C10=item["C10"] + shift).to_abtem())  # fmt: skip
                with abtem.config.set({"antialias.cutoff": 1.0, "antialias.taper": 0.0}):
                    waves = probe.multislice(potential, scan=tuple(position))
                    pattern = waves.diffraction_patterns(max_angle=None, block_direct=False,
                                                         fftshift=True).compute().array  # fmt: skip
                pattern = pattern.T  # abTEM indexes (x, y); atomlens (y, x)
                binned = pattern.reshape(GPTS // 2, 2, GPTS // 2, 2).sum(axis=(1, 3))
                recorded.append(detector.apply(binned / binned.sum(), rng)[0])
            images.append(recorded[0])
            pairs.append(recorded[1])
            thicknesses.append(thickness)
            doses.append(dose)
        rate = len(images) / (time.perf_counter() - start)
        print(
            f"specimen {s + 1}/{args.specimens}: {thickness:.0f} Å, {rate:.2f} pairs / s",
            flush=True,
        )
    np.savez_compressed(
        args.out,
        images=np.stack(images).astype(np.float32),
        pairs=np.stack(pairs).astype(np.float32),
        coefficients=coefficient_array(aberrations),
        pair_offset_A=PAIR_OFFSET,
        ranges=args.ranges,
        angular_sampling=sampling,
        energy=ENERGY,
        semiangle=SEMIANGLE,
        thickness_A=np.array(thicknesses),
        dose=np.array(doses),
    )
    print(f"wrote {args.out}: {count} pairs, {sampling:.3f} mrad / px")


if __name__ == "__main__":
    main()
