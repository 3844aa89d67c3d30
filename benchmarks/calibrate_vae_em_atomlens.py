"""VAE-EM on the atomlens simulator, where the simulation-to-reality gap is small: the check
that separates what the code map can tell from what the gap costs.

Ten random states (C10 uniform in +-50 nm, |C12| up to 20 nm at a random angle, nothing else),
``SimulatedMicroscope`` at 200 kV, 30 mrad, 192 px at 0.63 mrad/px, amorphous carbon 20-50 Å
thick (one specimen area per case), 1e7 e- per image; the through-focus triple and C12a, C12b
offsets of 10 nm (five Ronchigrams). Methods on the same images: the network combining all five,
VAE-EM alone (a flat prior of the state) with the correction's prior width 0 (the simulator's
map as it is) and 1, and VAE-EM with the network's estimate as the prior (the default).
Reported: signed MAE C10 and vector MAE C12 [nm]; and, from the VAE's code map, how far the
codes move per nm of C10 along C12 = 0, in units of the code noise (the information one
Ronchigram carries about C10 there).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibrate_vae_em_atomlens.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from atomlens.calibrate import SimulatedMicroscope, estimate, estimate_vae_em
from atomlens.calibrate.vae_em import EMOptions
from atomlens.physics import AmorphousSpecimen, RonchigramSetup
from atomlens.physics.optics.aberrations import random_aberrations

PLAN = [0.0, -200.0, 200.0, {"C12a": 100.0}, {"C12b": 100.0}]  # offsets [Å]


def sensitivity(vae: str) -> str:
    """|d codes / d C10| per nm [code noise units] at C12 = 0, C10 from -80 to 80 nm."""
    from atomlens.calibrate.vae_estimate import load_vae

    _, latent_map, _ = load_vae(vae)
    c10 = np.arange(-800.0, 801.0, 100.0)
    states = np.stack([c10, 0 * c10, 0 * c10], axis=1)
    step = np.array([10.0, 0.0, 0.0])
    slope = (latent_map.predict(states + step) - latent_map.predict(states - step)) / 20
    per_nm = np.linalg.norm(slope / latent_map.noise, axis=1) * 10
    header = " | ".join(f"{c / 10:.0f}" for c in c10)
    values = " | ".join(f"{g:.3f}" for g in per_nm)
    rule = "| --- " * (len(c10) + 1) + "|"
    return f"| C10 [nm] | {header} |\n{rule}\n| codes per nm [noise] | {values} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--vae", default="ronchigram-vae", help="VAE (name or folder)")
    parser.add_argument("--out", type=Path, default=None, help="JSON of every case")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    truths = random_aberrations(args.cases, {"C10": (-500, 500), "C12": (0, 200)}, rng)
    names = ("network", "VAE-EM flat, correction 0", "VAE-EM flat", "VAE-EM, network prior")
    errors: dict[str, list] = {name: [] for name in names}
    for k, truth in enumerate(truths):
        setup = RonchigramSetup(size=192, angular_sampling=0.63)
        specimen = AmorphousSpecimen(thickness=float(rng.uniform(20, 50)))
        scope = SimulatedMicroscope(truth, setup=setup, specimen=specimen, specimen_seed=k, seed=k)
        images, state = scope.ronchigrams(PLAN), scope.aberrations[:3]
        vae_em = {"offsets": PLAN, "model": args.vae, **scope.calibration}
        results = {
            names[0]: estimate(images, offsets=PLAN, method="network", **scope.calibration),
            names[1]: estimate_vae_em(images, options=EMOptions(correction=0.0), prior="flat",
                                      **vae_em),
            names[2]: estimate_vae_em(images, prior="flat", **vae_em),
            names[3]: estimate_vae_em(images, **vae_em),
        }  # fmt: skip
        for name, result in results.items():
            errors[name].append((result.values[:3] - state).tolist())
        print(k, {n: np.round(np.array(e[-1]) / 10, 2).tolist() for n, e in errors.items()},
              flush=True)  # fmt: skip
    print("| method | signed MAE C10 [nm] | vector MAE C12 [nm] |\n| --- | --- | --- |")
    for name, values in errors.items():
        e = np.array(values) / 10
        print(
            f"| {name} | {np.abs(e[:, 0]).mean():.2f} | {np.hypot(e[:, 1], e[:, 2]).mean():.2f} |"
        )
    print(sensitivity(args.vae))
    if args.out:
        args.out.write_text(json.dumps({"truths": [t.to_abtem() for t in truths],
                                        "errors_A": errors}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
