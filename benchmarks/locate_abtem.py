"""Locate columns in HAADF images simulated by abTEM (independent multislice), not by atomlens.

The networks were trained on atomlens's own incoherent STEM model; this checks that the methods
hold on images from another simulator. Scenes: SrTiO3 [001], MoS2 (monolayer) and Au [001],
40 Å thick (MoS2 one layer), no rotation, a periodic field of ``--size`` probe positions at
``--step`` Å (the pixel size), 200 kV, 25 mrad probe, HAADF 70-200 mrad, potential sampled at
0.05 Å in 2 Å slices, one frozen-phonon configuration (``--phonons`` for more). The noise-free
images are cached in ``--cache`` (simulating one takes minutes on a CPU core). Each image is
scaled to a mean dose per pixel so that the visible columns get ``--doses`` electrons each,
Poisson noise added (seeds 2100000 on), and every method scored as in ``evaluate_locate.py``
(visible columns: summed Z at least a quarter of the heaviest; matching within 0.35 spacings;
columns within a spacing of the edge left out, since abTEM treats the box as periodic and the
field is not; radial RMSE against the radial Cramer-Rao bound of the matched columns, each
column's Gaussian fitted on the clean image in the expected counts, background and neighbours
included: ``atomlens.metrics.cramer_rao_bound_columns``).

    .venv/bin/python benchmarks/locate_abtem.py --cache /tmp/abtem_haadf \\
        -o benchmarks/results/locate_abtem.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from atomlens.locate import locate
from atomlens.metrics import detection_scores
from atomlens.physics import field
from atomlens.physics.detectors import ShotNoise
from atomlens.physics.structures.lattice import columns

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_locate import column_shapes, matched_bound, truth_bounds

SEED = 2_100_000
SCENES = {"SrTiO3": (0, 0, 1), "MoS2": (0, 0, 1), "Au": (0, 0, 1)}


def simulate(material: str, size: int, step: float, phonons: int) -> np.ndarray:
    """The noise-free abTEM HAADF image (size, size) of the scene, mean 1."""
    import abtem

    abtem.config.set({"device": "cpu", "fft": "fftw"})
    atoms = field(material, (size, size), step, zone_axis=SCENES[material], thickness=40.0,
                  rotation=0.0, shift=(0.3, 0.4))  # fmt: skip
    if phonons > 1:
        atoms = abtem.FrozenPhonons(atoms, num_configs=phonons, sigmas=0.08, seed=1)
    potential = abtem.Potential(atoms, sampling=0.05, slice_thickness=2.0)
    probe = abtem.Probe(energy=200e3, semiangle_cutoff=25)
    extent = size * step
    scan = abtem.GridScan(start=(0, 0), end=(extent, extent), gpts=(size, size), endpoint=False)
    detector = abtem.AnnularDetector(inner=70, outer=200)
    image = probe.scan(potential, scan=scan, detectors=detector).compute(progress_bar=False)
    array = np.asarray(image.array, dtype=np.float64)
    # abTEM's scan axes are (x, y); atomlens images are (rows = y, cols = x)
    return (array.T / array.mean()).astype(np.float64)


def truth(material: str, size: int, step: float) -> np.ndarray:
    atoms = field(material, (size, size), step, zone_axis=SCENES[material], thickness=40.0,
                  rotation=0.0, shift=(0.3, 0.4))  # fmt: skip
    table = columns(atoms, pixel_size=step)
    table = table[table["Z_sum"] >= 0.25 * table["Z_sum"].max()]
    return table[["y", "x"]].to_numpy(float)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder of noise-free images")
    parser.add_argument("--size", type=int, default=80, help="probe positions per side")
    parser.add_argument("--step", type=float, default=0.3, help="scan step = pixel size [Å]")
    parser.add_argument("--phonons", type=int, default=1)
    parser.add_argument("--doses", default="50,200,1000", help="electrons per visible column")
    parser.add_argument("--noise-seeds", type=int, default=3, help="noisy images per dose")
    parser.add_argument("--methods", default="classical,unet,structure")
    parser.add_argument("--materials", default=",".join(SCENES), help="of " + ", ".join(SCENES))
    parser.add_argument("--simulate-only", action="store_true")
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    records = []
    for m, material in enumerate(SCENES):
        if material not in args.materials.split(","):
            continue
        cached = args.cache / f"{material}_{args.size}_{args.step}_{args.phonons}.npy"
        if not cached.exists():
            start = time.perf_counter()
            np.save(cached, simulate(material, args.size, args.step, args.phonons))
            print(f"{material}: abTEM {time.perf_counter() - start:.0f} s", flush=True)
        if args.simulate_only:
            continue
        clean = np.load(cached)
        true = truth(material, args.size, args.step)
        spacing = float(np.median(cKDTree(true).query(true, k=2)[0][:, 1]))
        margin = max(4.0, spacing)  # abTEM wraps the box: columns at the seam see the far side
        keep = ((true >= margin) & (true <= args.size - 1 - margin)).all(1)
        true = true[keep]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = locate(clean, pixel_size=args.step)
        shape = column_shapes(fitted, true, 0.35 * spacing)
        for d, dose in enumerate(float(v) for v in args.doses.split(",")):
            dose_pixel = dose * len(true) / (args.size - 2 * margin) ** 2
            for s in range(args.noise_seeds):
                rng = np.random.default_rng([SEED, m, d, s])
                image, record = ShotNoise(dose_per_pixel=dose_pixel).apply(clean, rng)
                bounds = truth_bounds(clean, true, shape, record["scale"])
                for method in args.methods.split(","):
                    options = {"method": method}
                    if method == "structure":
                        options.update(structure=material, zone_axis=SCENES[material])
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        table = locate(image, pixel_size=args.step, **options)
                    seconds = time.perf_counter() - start
                    found = table[["y", "x"]].to_numpy(float)
                    found = found[((found >= margin) & (found <= args.size - 1 - margin)).all(1)]
                    scores = detection_scores(found, true, 0.35 * spacing)
                    crb = matched_bound(found, true, bounds, 0.35 * spacing) * args.step * 100
                    records.append({"material": material, "dose_column": dose, "seed": s,
                                    "method": method, "f1": scores["f1"],
                                    "rmse_pm": scores["rmse"] * args.step * 100, "crb_pm": crb,
                                    "seconds": seconds})  # fmt: skip
        print(f"{material} done", flush=True)
    if args.simulate_only or args.output is None:
        return
    frame = pd.DataFrame(records)
    table = frame.groupby(["dose_column", "method"])[
        ["f1", "rmse_pm", "crb_pm", "seconds"]
    ].median()
    table["rmse_over_crb"] = table["rmse_pm"] / table["crb_pm"]
    command = "python benchmarks/locate_abtem.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"command": command, "records": records}, indent=1))
    lines = [f"Command: `{command}`", "", "| e-/column | method | F1 | RMSE [pm] | CRB [pm] | "
             "RMSE / CRB | s / image |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (dose, method), row in table.iterrows():
        lines.append(
            f"| {dose:g} | {method} | {row.f1:.3f} | {row.rmse_pm:.1f} | "
            f"{row.crb_pm:.1f} | {row.rmse_over_crb:.2f} | {row.seconds:.2f} |"
        )
    args.output.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
