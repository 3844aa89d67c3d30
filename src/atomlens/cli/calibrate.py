"""``atomlens calibrate``: probe aberrations from Ronchigrams, as a table or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

HDF5_SUFFIXES = (".h5", ".hdf5")


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
        help="comma-separated C10 offset of each FILE [nm] (abTEM C10 = -defocus), e.g. 0,-20: "
        "combine the files into one estimate for offset 0",
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


def _sidecar(path: Path) -> dict:
    """The JSON sidecar of an atomlens-simulated Ronchigram, or {}."""
    sidecar = path.with_suffix(".json")
    if path.suffix.lower() == ".json" or not sidecar.is_file():
        return {}
    try:
        record = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) and record.get("kind") == "ronchigram" else {}


def _hdf5_items(path: Path) -> tuple[np.ndarray, dict, list]:
    """Images, calibration and true aberrations of an atomlens Ronchigram dataset."""
    import h5py

    from atomlens.physics.optics.aberrations import Aberrations

    try:
        with h5py.File(path, "r") as handle:
            if "ronchigrams" not in handle:
                raise ValueError(f"{path} has no 'ronchigrams' dataset (N, H, W).")
            images = handle["ronchigrams"][()]
            record = json.loads(handle.attrs.get("parameters", "{}"))
            truth = []
            if "aberrations" in handle:
                columns = json.loads(handle["aberrations"].attrs["columns"])
                truth = [Aberrations(dict(zip(columns, row, strict=True)))
                         for row in handle["aberrations"][()]]  # fmt: skip
    except OSError as error:
        raise ValueError(f"Cannot read {path} as HDF5: {error}") from None
    if images.ndim != 3:
        raise ValueError(f"{path}: 'ronchigrams' must be (N, H, W), got {images.shape}.")
    return images, record, truth


def _collect(args: argparse.Namespace):
    """RonchigramInputs and truths (or None) for every image of every FILE."""
    from atomlens.calibrate import ronchigram_input
    from atomlens.physics.optics.aberrations import Aberrations

    items, truths = [], []
    for name in args.files:
        path = Path(name)
        if not path.exists():
            raise ValueError(f"No such file: {path}")
        if path.suffix.lower() in HDF5_SUFFIXES:
            images, record, truth = _hdf5_items(path)
            calibration = _calibration(args, record)
            for index, image in enumerate(images):
                item = ronchigram_input(image, **calibration)
                items.append(dataclasses.replace(item, source=f"{path}[{index}]"))
                truths.append(truth[index] if truth else None)
            continue
        record = _sidecar(path)
        items.append(ronchigram_input(path, **_calibration(args, record, from_file=True)))
        known = record.get("aberrations_A_rad")
        truths.append(Aberrations(known) if known is not None else None)
    return items, truths


def _calibration(args: argparse.Namespace, record: dict, from_file: bool = False) -> dict:
    """Flags first, then the sidecar / dataset record (files fill the rest in ronchigram_input)."""
    energy = args.energy if args.energy is not None else record.get("energy_eV")
    sampling = args.angular_sampling
    if sampling is None and not from_file:
        sampling = record.get("angular_sampling_mrad_per_px")
    semiangle = args.semiangle if args.semiangle is not None else record.get("semiangle_mrad")
    return {"energy": energy, "semiangle": semiangle, "angular_sampling": sampling}


def _offsets(text: str, count: int) -> list[float]:
    try:
        values = [float(v) * 10 for v in text.split(",")]  # nm -> Å
    except ValueError:
        raise ValueError(
            f"--offsets must be comma-separated numbers in nm, got {text!r}."
        ) from None
    if len(values) != count:
        raise ValueError(f"--offsets gives {len(values)} values for {count} Ronchigrams.")
    return values


def run(args: argparse.Namespace) -> int:
    from atomlens.calibrate import estimate, estimate_batch
    from atomlens.io import write_json

    if args.output is not None and args.output.exists() and not args.overwrite:
        raise ValueError(f"{args.output} exists; pass --overwrite to replace it.")
    items, truths = _collect(args)
    c30_sign = {"+": 1, "-": -1, None: None}[args.c30_sign]
    if args.offsets is not None:
        offsets = _offsets(args.offsets, len(items))
        results = [estimate(items, offsets=offsets, model=args.model, c30_sign=c30_sign,
                            augment=args.augment)]  # fmt: skip
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
