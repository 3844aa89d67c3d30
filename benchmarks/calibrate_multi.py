"""The physics-based measurement from several Ronchigrams (calibrate.measure) on abTEM data.

abTEM (an independent code) simulates each case: atomistic amorphous carbon (the helper of
``benchmarks/calibration_abtem_set.py``, 20-50 Å thick, so that the effective plane of the shadow
image lies close to the entrance surface where abTEM's C10 is defined), 200 kV, 30 mrad, 0.63
mrad/px after 2 x 2 binning (192 px), Poisson noise at 1e6 e- per image; C10 in +-50 nm, |C12|
<= 20 nm, nothing else. Per case, one specimen area at one probe position:

* a through-focus triple: C10 offsets 0, -20, +20 nm;
* two probe shifts at offset 0: (s, 0) and (0, s) Å with s = 4 mrad times the smaller principal
  defocus, min |C10 +- |C12||, within [0.1, 2] Å (an operator picks the step from the live
  Ronchigram or the network's estimate; here from the truth): where astigmatism nearly cancels
  defocus along one axis, the shadow is stretched there and a larger step leaves no overlap;
* two two-fold offsets: C12a + 10 nm and C12b + 10 nm.

Methods, on the same images: the in-line-hologram fit (``method="hologram"``,
:func:`~atomlens.calibrate.measure_holograms`, given the thickness) on the triple, the triple
plus the probe shifts and the triple plus the two-fold offsets, and with higher orders fitted
("hologram, higher orders": C30 from the triple, every term from all seven); VAE-EM (paper 004:
``estimate_vae_em``, the shipped ``ronchigram-vae`` or ``--vae``) on the triple, the triple plus
the two-fold offsets, and all seven (the probe-shifted images count as repeats of offset 0); the
single-image network combined over the triple (``estimate(..., method="network")``) and the
physics measurement on the triple, the triple plus the probe shifts (fitting C10 and C12, the
default, or all eight terms), the triple plus the
two-fold offsets, and all seven, each given the specimen
thickness (``thickness=``: the shadow image shows the C10 of the specimen's mid-plane, abTEM's
C10 is that of its entrance surface); the triple + shifts row is also shown with C10 at the
mid-plane (the same fit without the correction). Reported:
signed MAE of C10 (the mean absolute error with the estimate's own sign, not resolved against
the truth), vector MAE of C12, the share of cases with the sign of C10 right, the median stated
sigma, the mean C10 error (bias), the cases refused or failed, and the seconds per case.

    .venv/bin/python benchmarks/calibrate_multi.py --cases 10 \
        --out benchmarks/results/calibrate_multi.json
    .venv/bin/python benchmarks/calibrate_multi.py --cases 10 --methods network,VAE-EM \
        --out benchmarks/results/calibrate_multi_vae_em.json
    .venv/bin/python benchmarks/calibrate_multi.py --cases 10 --methods network,hologram \
        --out benchmarks/results/calibrate_multi_hologram.json

A long run splits over processes with ``--only`` (case indices) and is pooled with ``--merge``
(docs/calibrate.md has the commands of the 20-case hologram run). Besides C10 and C12, the
summary gives the higher orders' errors (C21, C23 vector MAE, C30 MAE, the shares within the
issue's 10 nm and 0.5 µm; the cases' truth has none).

``--methods`` runs only the named rows; the cache (``--cache``) keeps each case's images under
its seed, count and step rule, so a second run of the same cases simulates nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atomlens.calibrate import estimate, estimate_vae_em, measure, measure_holograms
from atomlens.calibrate.symmetry import COEFFICIENTS
from atomlens.calibrate.vae_em import EMOptions
from atomlens.core.energy import wavelength
from atomlens.physics.optics.aberrations import Aberrations, random_aberrations
from calibration_abtem_set import EXTENT, GPTS, amorphous_carbon

ENERGY, SEMIANGLE, DOSE = 200e3, 30.0, 1e6
RANGES = {"C10": (-500.0, 500.0), "C12": (0.0, 200.0)}
FOCUS = (0.0, -200.0, 200.0)  # [Å]
TWOFOLD = ({"C12a": 100.0}, {"C12b": 100.0})  # [Å]
METHODS = {
    "network (triple, combine)": ("network", (0, 1, 2)),
    "physics: triple": ("physics", (0, 1, 2)),
    "physics: triple + 2 probe shifts": ("physics", (0, 1, 2, 3, 4)),
    "physics: triple + 2 two-fold offsets": ("physics", (0, 1, 2, 5, 6)),
    "physics: all 7": ("physics", (0, 1, 2, 3, 4, 5, 6)),
    "physics: triple + 2 probe shifts, all 8 terms fitted": ("physics-all", (0, 1, 2, 3, 4)),
    "hologram: triple": ("hologram", (0, 1, 2)),
    "hologram: triple + 2 probe shifts": ("hologram", (0, 1, 2, 3, 4)),
    "hologram: triple + 2 two-fold offsets": ("hologram", (0, 1, 2, 5, 6)),
    "hologram, higher orders: triple, C30 fitted": ("hologram-c30", (0, 1, 2)),
    "hologram, higher orders: all 7, every term fitted": ("hologram-all", (0, 1, 2, 3, 4, 5, 6)),
    "VAE-EM: triple": ("vae-em", (0, 1, 2)),
    "VAE-EM: triple + 2 two-fold offsets": ("vae-em", (0, 1, 2, 5, 6)),
    "VAE-EM: all 7 (probe shifts as repeats)": ("vae-em", (0, 1, 2, 3, 4, 5, 6)),
}
#: Derived row: the triple + probe shifts result with C10 at the specimen's mid-plane (what the
#: shadow image shows) instead of the entrance surface: the same fit, C10 + thickness / 2.
MID_PLANE = "physics: triple + 2 probe shifts, C10 at the mid-plane (no thickness given)"


def _cartesian(aberrations: Aberrations) -> np.ndarray:
    cart = aberrations.to_cartesian()
    return np.array([cart.get(name, 0.0) for name in COEFFICIENTS])


def _plan(truth: Aberrations, step_from: str) -> list[tuple[object, tuple[float, float]]]:
    """(offset, probe shift [Å]) of the seven images of a case; the shift step from the smaller
    principal defocus (``"principal"``) or from |C10| alone (``"c10"``, within [0.2, 2] Å)."""
    if step_from == "c10":
        step = float(np.clip(abs(truth["C10"]) * 4e-3, 0.2, 2.0))
    else:
        principal = min(abs(truth["C10"] - truth["C12"]), abs(truth["C10"] + truth["C12"]))
        step = float(np.clip(principal * 4e-3, 0.1, 2.0))
    plan: list[tuple[object, tuple[float, float]]] = [(o, (0.0, 0.0)) for o in FOCUS]
    plan += [(0.0, (step, 0.0)), (0.0, (0.0, step))]
    plan += [(o, (0.0, 0.0)) for o in TWOFOLD]
    return plan


def _apply(truth: Aberrations, offset: object) -> Aberrations:
    cart = truth.to_cartesian()
    changes = offset if isinstance(offset, dict) else {"C10": offset}
    for name, value in changes.items():
        cart[name] = cart.get(name, 0.0) + value
    return Aberrations.from_cartesian(cart)


def simulate_case(
    truth: Aberrations, rng: np.random.Generator, step_from: str = "principal"
) -> tuple[list, list, float]:
    """The seven recorded Ronchigrams of one case, their plan and the specimen thickness [Å]."""
    import abtem

    from atomlens.physics.detectors import ronchigram_camera

    thickness = float(rng.uniform(20, 50))
    atoms = amorphous_carbon(thickness, rng)
    potential = abtem.Potential(atoms, gpts=GPTS, slice_thickness=2.0).build().compute()
    position = rng.uniform(0.4, 0.6, 2) * EXTENT  # (x, y) [Å] in abTEM's order
    camera = ronchigram_camera(DOSE)
    plan, images = _plan(truth, step_from), []
    for offset, (dy, dx) in plan:
        probe = abtem.Probe(energy=ENERGY, semiangle_cutoff=SEMIANGLE,
                            **_apply(truth, offset).to_abtem())  # fmt: skip
        scan = (position[0] + dx, position[1] + dy)
        with abtem.config.set({"antialias.cutoff": 1.0, "antialias.taper": 0.0}):
            waves = probe.multislice(potential, scan=scan)
            pattern = waves.diffraction_patterns(max_angle=None, block_direct=False,
                                                 fftshift=True).compute().array  # fmt: skip
        pattern = pattern.T  # abTEM indexes (x, y); atomlens (y, x)
        binned = pattern.reshape(GPTS // 2, 2, GPTS // 2, 2).sum(axis=(1, 3))
        images.append(camera.apply(binned / binned.sum(), rng)[0].astype(np.float32))
    return images, plan, thickness


def evaluate(
    images: list,
    plan: list,
    sampling: float,
    thickness: float,
    methods: dict | None = None,
    vae: str = "ronchigram-vae",
    correction: float = 1.0,
    prior: str = "network",
) -> dict[str, dict]:
    """Every method on one case: values [Å] and sigmas, or the error it raised.

    The physics measurement is given the specimen thickness [Å] (its C10 referred to the
    entrance surface, as abTEM defines it), except for "mid-plane" (C10 of the mid-plane).
    VAE-EM uses the VAE ``vae`` with the correction's prior width ``correction`` and the
    state's ``prior`` ("network" or "flat").
    """
    calibration = {"energy": ENERGY, "semiangle": SEMIANGLE, "angular_sampling": sampling}
    out = {}
    for name, (method, chosen) in (methods or METHODS).items():
        start = time.perf_counter()
        try:
            physics = method.startswith(("physics", "hologram"))
            arguments = {
                "offsets": [plan[i][0] for i in chosen],
                "probe_shifts": [plan[i][1] for i in chosen] if physics else None,
                "thickness": thickness if physics else 0.0,
                **calibration,
            }
            chosen_images = [images[i] for i in chosen]
            if method == "physics-all":
                result = measure(chosen_images, fit=COEFFICIENTS, **arguments)
            elif method.startswith("hologram-"):
                fit = COEFFICIENTS if method == "hologram-all" else ("C10", "C12a", "C12b", "C30")
                result = measure_holograms(chosen_images, fit=fit, **arguments)
            elif method == "vae-em":
                result = estimate_vae_em(chosen_images, offsets=arguments["offsets"], model=vae,
                                         options=EMOptions(correction=correction), prior=prior,
                                         **calibration)  # fmt: skip
            else:
                result = estimate(chosen_images, method=method, **arguments)
            out[name] = {"values": result.values.tolist(), "sigma": result.sigma.tolist()}
        except ValueError as error:  # refusals (InputError is a ValueError)
            out[name] = {"error": str(error)[:300]}
        out[name]["seconds"] = time.perf_counter() - start
    if "physics: triple + 2 probe shifts" in out:
        shifted = dict(out["physics: triple + 2 probe shifts"])
        if "values" in shifted:
            shifted["values"] = [shifted["values"][0] + thickness / 2, *shifted["values"][1:]]
        out[MID_PLANE] = shifted
    return out


def summarise(cases: list[dict]) -> dict[str, dict]:
    """Per method: signed MAE(C10), vector MAE(C12) [nm], sign right, bias, sigma, failures."""
    table = {}
    for name in cases[0]["results"]:
        rows = [(c["truth"], c["results"][name]) for c in cases]
        done = [(np.array(t), np.array(r["values"]), np.array(r["sigma"]))
                for t, r in rows if "values" in r]  # fmt: skip
        if not done:
            table[name] = {"cases": 0, "failed": len(rows)}
            continue
        truth, values, sigma = (np.stack(x) for x in zip(*done, strict=True))
        c10 = values[:, 0] - truth[:, 0]
        c12 = np.hypot(*(values[:, 1:3] - truth[:, 1:3]).T)
        c21, c23 = (np.hypot(*(values[:, k : k + 2] - truth[:, k : k + 2]).T) for k in (3, 5))
        c30 = values[:, 7] - truth[:, 7]
        table[name] = {
            "cases": len(done),
            "failed": len(rows) - len(done),
            "mae_c10_nm": float(np.abs(c10).mean() / 10),
            "mae_c12_nm": float(c12.mean() / 10),
            "median_c10_nm": float(np.median(np.abs(c10)) / 10),
            "median_c12_nm": float(np.median(c12) / 10),
            "bias_c10_nm": float(c10.mean() / 10),
            "sign_right": float((np.sign(values[:, 0]) == np.sign(truth[:, 0])).mean()),
            "median_sigma_c10_nm": float(np.median(sigma[:, 0]) / 10),
            "within_3_sigma_c10": float((np.abs(c10) <= 3 * sigma[:, 0]).mean()),
            "seconds_per_case": float(np.mean([r["seconds"] for _, r in rows])),
            # the higher orders (vector errors; the cases' truth has none)
            "mae_c21_nm": float(c21.mean() / 10),
            "mae_c23_nm": float(c23.mean() / 10),
            "mae_c30_um": float(np.abs(c30).mean() / 1e4),
            "c21_c23_within_10_nm": float(((c21 <= 100) & (c23 <= 100)).mean()),
            "c30_within_0_5_um": float((np.abs(values[:, 7] - truth[:, 7]) <= 5e3).mean()),
        }
    return table


def markdown(table: dict[str, dict], command: str) -> str:
    lines = [
        "| method | cases (failed) | MAE C10 [nm] | vector MAE C12 [nm] | median C10 / C12 [nm] "
        "| mean C10 error [nm] | sign of C10 right | median sigma C10 [nm] | within 3 sigma "
        "| s / case |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in table.items():
        if not row.get("cases"):
            lines.append(f"| {name} | 0 ({row['failed']}) | | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {row['cases']} ({row['failed']}) | {row['mae_c10_nm']:.2f} | "
            f"{row['mae_c12_nm']:.2f} | {row['median_c10_nm']:.2f} / {row['median_c12_nm']:.2f} "
            f"| {row['bias_c10_nm']:+.2f} | {row['sign_right']:.0%} | "
            f"{row['median_sigma_c10_nm']:.2f} | {row['within_3_sigma_c10']:.0%} | "
            f"{row['seconds_per_case']:.1f} |"
        )
    return "\n".join(lines) + f"\n\n    {command}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=930_000)
    parser.add_argument(
        "--step-from",
        choices=("principal", "c10"),
        default="principal",
        help="probe-shift step from min |C10 +- |C12|| or from |C10| alone",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/calibrate_multi.json"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/atomlens_calibrate_multi.npz"))
    parser.add_argument("--methods", default="",
                        help="only the methods whose name has one of these comma-separated "
                        "words (e.g. 'network,VAE-EM')")  # fmt: skip
    parser.add_argument("--only", default="",
                        help="evaluate only these comma-separated case indices (0-based; to "
                        "split a run over processes, then --merge)")  # fmt: skip
    parser.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                        help="no run: pool the cases of these result files into --out")  # fmt: skip
    parser.add_argument("--vae", default="ronchigram-vae", help="VAE for VAE-EM (name or folder)")
    parser.add_argument("--correction", type=float, default=1.0,
                        help="VAE-EM: prior width of the code map's correction")  # fmt: skip
    parser.add_argument("--prior", default="network", choices=("network", "flat"),
                        help="VAE-EM: the state's prior")  # fmt: skip
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    only = {int(k) for k in args.only.split(",") if k}
    words = [w for w in args.methods.split(",") if w] or [""]
    methods = {k: v for k, v in METHODS.items() if any(w in k for w in words)}
    import abtem

    abtem.config.set({"diagnostics.progress_bar": False})
    rng = np.random.default_rng(args.seed)
    truths = random_aberrations(args.cases, RANGES, rng)
    sampling = wavelength(ENERGY) / EXTENT * 1e3 * 2  # [mrad / px] after 2 x 2 binning
    cached = dict(np.load(args.cache, allow_pickle=True)) if args.cache.exists() else {}
    cases = []
    for k, truth in enumerate(truths):
        if only and k not in only:
            continue
        key = f"{args.seed}-{args.cases}-{args.step_from}-case{k}"
        start = time.perf_counter()
        if key in cached:
            images, plan, thickness = cached[key].tolist()
        else:
            case_rng = np.random.default_rng([args.seed, k])
            images, plan, thickness = simulate_case(truth, case_rng, args.step_from)
            cached[key] = np.array((images, plan, thickness), dtype=object)
            np.savez(args.cache, **cached)
        simulated = time.perf_counter() - start
        results = evaluate(images, plan, sampling, thickness, methods, args.vae, args.correction,
                           args.prior)  # fmt: skip
        cases.append({"truth": _cartesian(truth).tolist(), "thickness_A": thickness,
                      "results": results})  # fmt: skip
        summary = {n: round(r["values"][0] / 10, 2) if "values" in r else "refused"
                   for n, r in results.items()}  # fmt: skip
        print(f"case {k + 1}/{args.cases}: C10 {truth['C10'] / 10:.1f} nm, {thickness:.0f} Å, "
              f"simulated in {simulated:.0f} s: C10 {summary}", flush=True)  # fmt: skip
    table = summarise(cases)
    command = (
        f".venv/bin/python benchmarks/calibrate_multi.py --cases {args.cases} --seed {args.seed} "
        f"--step-from {args.step_from} --out {args.out}"
        + (f" --methods '{args.methods}'" if args.methods else "")
        + (f" --only {args.only}" if args.only else "")
        + (f" --vae {args.vae}" if args.vae != "ronchigram-vae" else "")
        + (f" --correction {args.correction:g}" if args.correction != 1.0 else "")
        + (f" --prior {args.prior}" if args.prior != "network" else "")
    )
    report = {"command": command, "setting": {"energy_eV": ENERGY, "semiangle_mrad": SEMIANGLE,
              "angular_sampling_mrad_per_px": sampling, "dose": DOSE, "ranges_A": RANGES},
              "summary": table, "cases": cases}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(markdown(table, command))


def merge(paths: list[Path], out: Path) -> None:
    """Pool the cases of several result files (e.g. parts of one run made with --only) into
    one file with its summary, and print the table."""
    reports = [json.loads(path.read_text()) for path in paths]
    cases = [case for report in reports for case in report["cases"]]
    table = summarise(cases)
    command = " && ".join(report["command"] for report in reports) + (
        f" && .venv/bin/python benchmarks/calibrate_multi.py --out {out} --merge "
        + " ".join(str(path) for path in paths)
    )
    report = {"command": command, "setting": reports[0]["setting"], "summary": table,
              "cases": cases}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(markdown(table, command))


if __name__ == "__main__":
    main()
