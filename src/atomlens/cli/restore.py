"""``atomlens restore``: restore STEM / HRTEM images from microscope files, calibration kept."""

from __future__ import annotations

import argparse
from pathlib import Path

from atomlens.cli._common import check_outputs

OUTPUT_SUFFIXES = (".tif", ".tiff", ".h5", ".hdf5")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "restore",
        help="remove noise and scan distortions from STEM / HRTEM images",
        description=(
            "Restore images (or image stacks) read from any file atomlens reads (DM3/DM4, SER, "
            "HyperSpy, TIFF, PNG, MRC, HDF5, .npy) with the shipped CGRDN network or a classical "
            "baseline. The result keeps the input's units and calibration and is written as TIFF "
            "or HDF5 (by the suffix of -o). With one FILE, -o is the output file; with several, "
            "-o is a folder that gets <name>_restored.tif for each. "
            "example: atomlens restore image.dm3 --modality haadf -o restored.tif "
            "--plot before_after.png"
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="image file(s)")
    parser.add_argument(
        "--modality",
        choices=("haadf", "abf", "hrtem"),
        required=True,
        help="what the images show (ADF counts as haadf, BF as abf)",
    )
    parser.add_argument(
        "--method",
        choices=("net", "gaussian", "wiener", "nlm", "bm3d"),
        default="net",
        help="the network (default) or a classical baseline",
    )
    parser.add_argument(
        "--pixel-size", type=float, help="pixel size [Å/px] when the file has none (or to override)"
    )
    parser.add_argument("--model", help="model name or folder instead of the shipped network")
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        default="float32",
        help="arithmetic of the network on the CPU",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="output file or folder")
    parser.add_argument("--plot", type=Path, help="also save input | restored panels as a PNG")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def _destinations(args: argparse.Namespace) -> list[Path]:
    """One output file per input: -o itself for one FILE, -o/<stem>_restored.tif for several."""
    if len(args.files) == 1 and args.output.suffix.lower() in OUTPUT_SUFFIXES:
        return [args.output]
    if len(args.files) == 1 and not args.output.is_dir():
        raise ValueError(
            f"-o {args.output} must end in {', '.join(OUTPUT_SUFFIXES)} (or be a folder)."
        )
    if args.output.exists() and not args.output.is_dir():
        raise ValueError(f"-o {args.output} is a file; give a folder for several inputs.")
    names = [Path(f).stem + "_restored.tif" for f in args.files]
    if len(set(names)) != len(names):
        raise ValueError("Two inputs have the same name; restore them into different folders.")
    return [args.output / name for name in names]


def _pixel_size(image, args: argparse.Namespace) -> float | None:
    if args.pixel_size is not None:
        return args.pixel_size
    if image.pixel_size is not None:
        return float(sum(image.pixel_size) / 2)
    return None


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from atomlens.core.validation import InputError
    from atomlens.io import atomic_outputs, read, write_hdf5, write_tiff
    from atomlens.restore import restore

    inputs = [Path(f) for f in args.files]
    for path in inputs:
        if not path.exists():
            raise ValueError(f"No such file: {path}")
    destinations = _destinations(args)
    extra = [args.plot] if args.plot is not None else []
    check_outputs([*destinations, *extra], args.overwrite, inputs, files=True)
    results = []
    for path in inputs:
        image = read(path)
        if image.kind == "diffraction":
            raise ValueError(f"{path} holds a diffraction pattern, not an image to restore.")
        pixel_size = _pixel_size(image, args)
        try:
            restored = restore(
                np.asarray(image.data),
                modality=args.modality,
                method=args.method,
                pixel_size=pixel_size,
                model=args.model,
                precision=args.precision,
                progress=not args.no_progress and np.asarray(image.data).ndim == 3,
            )
        except InputError as error:  # name the file, not the keyword
            raise InputError(f"{path}: {error}") from None
        results.append((image, restored, pixel_size))
    with atomic_outputs(
        [*destinations, *extra], overwrite=args.overwrite, create_folders=True
    ) as outputs:
        for destination, (image, restored, pixel_size) in zip(destinations, results, strict=True):
            metadata = {
                "restored_by": f"atomlens restore --modality {args.modality} --method "
                f"{args.method}",
                "source": str(image.path),
            }
            if image.energy is not None:
                metadata["energy"] = image.energy
            target = outputs.path(destination)
            if destination.suffix.lower() in (".h5", ".hdf5"):
                attrs = dict(metadata)
                if pixel_size is not None:
                    attrs["pixel_size"] = pixel_size
                write_hdf5(target, {"image": restored}, attrs=attrs)
            else:
                write_tiff(target, restored, pixel_size=pixel_size, metadata=metadata)
        if args.plot is not None:
            from atomlens.report import save_panels

            image, restored, pixel_size = results[0]
            before = np.asarray(image.data, dtype=np.float32)
            if before.ndim == 3:
                before, restored = before[0], restored[0]
            save_panels(
                outputs.path(args.plot),
                [before, restored],
                [f"input: {inputs[0].name}", f"restored ({args.method})"],
                pixel_size,
            )
    for destination in destinations:
        print(destination)
    return 0
