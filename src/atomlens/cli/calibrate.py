"""``atomlens calibrate``: probe aberrations from Ronchigrams, as a table or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from pathlib import Path

from atomlens.cli._common import check_outputs

HDF5_SUFFIXES = (".h5", ".hdf5")
#: Largest JSON beside an image that is looked at to tell another program's JSON from a broken
#: atomlens sidecar [bytes] (a sidecar takes about 1 kB; atomlens reads at most 1 MiB).
_SIDECAR_PEEK_BYTES = 1 << 20


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "calibrate",
        help="estimate probe aberrations (C10, C12, C21, C23, C30) from Ronchigrams",
        description=(
            "Estimate probe aberrations with uncertainties from Ronchigrams of an amorphous or "
            "thin specimen. Each FILE is estimated on its own, unless --offsets gives the known "
            "C10 offset of each, in which case all are combined (a defocus pair fixes the sign "
            "that one Ronchigram may leave open). Calibration is read from the files (and from "
            "the JSON sidecar that 'atomlens simulate ronchigram' writes) when the flags are "
            "absent. An HDF5 dataset from 'atomlens simulate ronchigram --count N' is read whole. "
            "example: atomlens calibrate ronchigram.tif --energy 200e3 --semiangle 30 "
            "--angular-sampling 0.5"
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="Ronchigram file(s)")
    parser.add_argument("--energy", type=float, help="beam energy [eV], e.g. 200e3")
    parser.add_argument("--semiangle", type=float, help="convergence semi-angle [mrad]")
    parser.add_argument("--angular-sampling", type=float, help="detector pixel [mrad / px]")
    parser.add_argument(
        "--offsets",
        help="comma-separated C10 offset of each FILE [nm] (abTEM C10 = -defocus), e.g. 0,-20, "
        "or NAME=nm for another Cartesian term (0,-20,20,C12a=10,C12b=10): combine the files "
        "into one estimate for offset 0",
    )
    parser.add_argument(
        "--probe-shifts",
        help="probe position of each FILE in the specimen plane [Å], 'dy,dx' pairs separated by "
        "';', e.g. '0,0;1.5,0;0,1.5': measure the aberrations from the patch shifts between the "
        "files (physics-based; --offsets default to 0)",
    )
    parser.add_argument(
        "--method",
        choices=("auto", "network", "physics", "hologram", "vae-em"),
        default="auto",
        help="how several files at known offsets are combined: the network's estimates, the "
        "physics-based measurement from patch shifts, the in-line-hologram fit (C10 and C12 "
        "from a through-focus series; about 30 s), or VAE-EM (C10 and C12 with a code map "
        "fitted to this microscope; --probe-shifts ignored) (auto: physics with --probe-shifts)",
    )
    parser.add_argument(
        "--thickness",
        type=float,
        default=0.0,
        help="specimen thickness [nm] for the physics-based measurements (physics, hologram): "
        "their C10 (that of the specimen's mid-plane) is then referred to the entrance surface",
    )
    parser.add_argument(
        "--fit",
        metavar="TERMS",
        help="the Cartesian terms the physics-based measurements (physics, hologram) fit, "
        "comma-separated (default C10,C12a,C12b; the others from the network), or 'all' "
        "(C10,C12a,C12b,C21a,C21b,C23a,C23b,C30: give a series with two-fold offsets or probe "
        "shifts too)",
    )
    parser.add_argument("--c30-sign", choices=("+", "-"), help="known sign of C30 (fixes the sign)")
    parser.add_argument("--model", default="ronchigram-aberrations", help="model name or folder")
    parser.add_argument(
        "--augment",
        action="store_true",
        help="average over the 8 rotated / mirrored copies (8x slower, smaller errors)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (abTEM keys, Å and rad)")
    parser.add_argument(
        "--truth",
        action="store_true",
        help="print the true aberrations of simulated input beside the estimate",
    )
    parser.add_argument("-o", "--output", type=Path, help="also write the JSON to this file")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def _sidecar_setup(path: Path, args: argparse.Namespace) -> tuple[dict, dict | None]:
    """Setup and true aberrations from the sidecar of a simulated Ronchigram, or ({}, None).

    A JSON beside the image that is not an atomlens sidecar (another program's) is ignored. A
    sidecar atomlens cannot read (a field of the wrong type or outside its valid range, not JSON,
    a newer version) is an error that names the file and the field: its calibration would be
    silently replaced by the file's or missing. When ``--energy``, ``--semiangle`` and
    ``--angular-sampling`` are all given and ``--truth`` is not, nothing of the sidecar is
    needed: it is then reported in a warning and left out.
    """
    from atomlens.io import (
        SchemaError,
        UnreadableFileError,
        read_ronchigram_sidecar,
        sidecar_path,
    )

    sidecar = sidecar_path(path)
    if path.suffix.lower() == ".json" or not sidecar.is_file():
        return {}, None
    try:
        record = read_ronchigram_sidecar(sidecar)
    except (SchemaError, UnreadableFileError) as error:
        if _foreign(sidecar):
            return {}, None
        flags = (args.energy, args.semiangle, args.angular_sampling)
        if all(flag is not None for flag in flags) and not args.truth:
            warnings.warn(
                f"{error}; the sidecar of {path} is left out: the calibration comes from the "
                "flags.",
                UserWarning,
                stacklevel=2,
            )
            return {}, None
        raise type(error)(
            f"{error}. This is the sidecar of {path}: fix or remove it, or give --energy, "
            "--semiangle and --angular-sampling (without --truth) to calibrate without it."
        ) from None
    return record.setup, record.aberrations


def _foreign(sidecar: Path) -> bool:
    """Whether the JSON beside an image is another program's, not an atomlens sidecar.

    It is atomlens's when it is a JSON object with an ``atomlens...`` schema or the version-1
    ``"kind": "ronchigram"``; a file that is not JSON at all cannot be told and counts as one.
    """
    if sidecar.stat().st_size > _SIDECAR_PEEK_BYTES:
        return True
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(record, dict):
        return True
    schema = record.get("schema")
    ours = isinstance(schema, str) and schema.startswith("atomlens")
    return not ours and record.get("kind") != "ronchigram"


def _collect(args: argparse.Namespace):
    """RonchigramInputs and truths (or None) for every image of every FILE."""
    from atomlens.calibrate import ronchigram_input
    from atomlens.io import read_ronchigram_dataset
    from atomlens.physics.optics.aberrations import Aberrations

    items, truths = [], []
    for name in args.files:
        path = Path(name)
        if not path.exists():
            raise ValueError(f"No such file: {path}")
        if path.suffix.lower() in HDF5_SUFFIXES:
            dataset = read_ronchigram_dataset(path)
            calibration = _calibration(args, dataset.setup)
            for index, image in enumerate(dataset.images):
                item = ronchigram_input(image, **calibration)
                items.append(dataclasses.replace(item, source=f"{path}[{index}]"))
                truths.append(Aberrations(dataset.labels(index)) if dataset.columns else None)
            continue
        setup, known = _sidecar_setup(path, args)
        items.append(ronchigram_input(path, **_calibration(args, setup, from_file=True)))
        truths.append(Aberrations(known) if known is not None else None)
    return items, truths


def _calibration(args: argparse.Namespace, setup: dict, from_file: bool = False) -> dict:
    """Flags first, then the sidecar / dataset setup (files fill the rest in ronchigram_input)."""
    energy = args.energy if args.energy is not None else setup.get("energy_eV")
    sampling = args.angular_sampling
    if sampling is None and not from_file:
        sampling = setup.get("angular_sampling_mrad_per_px")
    semiangle = args.semiangle if args.semiangle is not None else setup.get("semiangle_mrad")
    return {"energy": energy, "semiangle": semiangle, "angular_sampling": sampling}


def _offsets(text: str, count: int) -> list[float | dict[str, float]]:
    """The offsets [Å] from ``--offsets`` [nm], finite and within the aberration range.

    Each comma-separated item is a C10 change in nm, or ``NAME=VALUE`` for another Cartesian
    coefficient (``C12a=10``: C12a + 10 nm), which becomes a mapping. The range is that of
    ``PARAMETERS["aberration"]`` (+-1e8 Å), given in nm as the flag is.
    """
    from atomlens.calibrate.symmetry import COEFFICIENTS
    from atomlens.core.validation import PARAMETERS

    valid = PARAMETERS["aberration"]
    values: list[float | dict[str, float]] = []
    for item in text.split(","):
        name, _, number = item.strip().rpartition("=")
        if name and name not in COEFFICIENTS:
            raise ValueError(f"--offsets: unknown coefficient {name!r} in {text!r}; use one of "
                             f"{', '.join(COEFFICIENTS)} (e.g. C12a=10).")  # fmt: skip
        try:
            value = float(number) * 10  # nm -> Å
        except ValueError:
            raise ValueError(
                f"--offsets must be comma-separated numbers in nm (C10 changes) or NAME=nm "
                f"items, got {text!r}."
            ) from None
        if not (math.isfinite(value) and valid.low <= value <= valid.high):
            raise ValueError(f"--offsets must be finite numbers within [{valid.low / 10:g}, "
                             f"{valid.high / 10:g}] nm, got {text!r}.")  # fmt: skip
        values.append({name: value} if name and name != "C10" else value)
    if len(values) != count:
        raise ValueError(f"--offsets gives {len(values)} values for {count} Ronchigrams.")
    return values


def _probe_shifts(text: str, count: int) -> list[tuple[float, float]]:
    """The probe shifts [Å] from ``--probe-shifts``: 'dy,dx' pairs separated by ';'."""
    pairs = []
    for part in text.split(";"):
        values = part.split(",")
        try:
            dy, dx = (float(v) for v in values)
        except ValueError:
            raise ValueError(
                f"--probe-shifts must be 'dy,dx' pairs in Å separated by ';', got {text!r}."
            ) from None
        if not (math.isfinite(dy) and math.isfinite(dx)):
            raise ValueError(f"--probe-shifts must be finite numbers, got {text!r}.")
        pairs.append((dy, dx))
    if len(pairs) != count:
        raise ValueError(f"--probe-shifts gives {len(pairs)} pairs for {count} Ronchigrams.")
    return pairs


def _fit(text: str | None) -> tuple[str, ...] | None:
    """The terms of ``--fit``: comma-separated Cartesian names, or 'all'."""
    from atomlens.calibrate.symmetry import COEFFICIENTS, check_terms

    if text is None:
        return None
    if text.strip().lower() == "all":
        return COEFFICIENTS
    names = [name.strip() for name in text.split(",") if name.strip()]
    return check_terms(names, "--fit (or 'all')")


def run(args: argparse.Namespace) -> int:
    from atomlens.calibrate import estimate, estimate_batch
    from atomlens.io import sidecar_path, write_json

    if args.output is not None:
        inputs = [Path(f) for f in args.files]
        check_outputs([args.output], args.overwrite, inputs + [sidecar_path(f) for f in inputs])
    fit = _fit(args.fit)
    if fit is not None and args.offsets is None and args.probe_shifts is None:
        raise ValueError(
            "--fit is for a physics-based measurement of several files: give "
            "--offsets (with --method physics or hologram) or --probe-shifts."
        )
    items, truths = _collect(args)
    c30_sign = {"+": 1, "-": -1, None: None}[args.c30_sign]
    shifts = None
    if args.probe_shifts is not None:
        shifts = _probe_shifts(args.probe_shifts, len(items))
    if args.offsets is not None or shifts is not None:
        offsets = [0.0] * len(items)
        if args.offsets is not None:
            offsets = _offsets(args.offsets, len(items))
        results = [estimate(items, offsets=offsets, model=args.model, c30_sign=c30_sign,
                            augment=args.augment, probe_shifts=shifts,
                            method=args.method, thickness=args.thickness * 10,
                            fit=fit)]  # fmt: skip
        truths = [truths[offsets.index(0.0)] if 0.0 in offsets else None]
    else:
        results = estimate_batch(items, model=args.model, c30_sign=c30_sign, augment=args.augment,
                                 progress=len(items) > 1 and not args.no_progress)  # fmt: skip
    records = []
    for result, truth in zip(results, truths, strict=True):
        record = result.to_dict()
        if args.truth and truth is not None:
            record["truth"] = truth.to_abtem()
        records.append(record)
    payload = records if len(records) > 1 else records[0]
    if args.output is not None:
        write_json(args.output, payload, overwrite=args.overwrite)
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        print()
    else:
        for number, (result, truth) in enumerate(zip(results, truths, strict=True)):
            if number:
                print()
            print(result.describe(truth if args.truth else None))
    return 0
