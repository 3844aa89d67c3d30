"""``atomlens restore``: restore STEM / HRTEM images from microscope files, calibration kept."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    parser.add_argument(
        "--no-wiener-step",
        action="store_true",
        help="the network's output alone, without the Wiener filter it pilots (method net)",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="output file or folder")
    parser.add_argument("--plot", type=Path, help="also save input | restored panels as a PNG")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atomlens.cli._image_to_image import transform_files
    from atomlens.restore import restore

    def transform(data, pixel_size):
        return restore(
            data,
            modality=args.modality,
            method=args.method,
            pixel_size=pixel_size,
            model=args.model,
            precision=args.precision,
            wiener_step=not args.no_wiener_step,
            progress=not args.no_progress and data.ndim == 3,
        )

    provenance = f"atomlens restore --modality {args.modality} --method {args.method}"
    if args.no_wiener_step:
        provenance += " --no-wiener-step"
    return transform_files(args, verb="restore", tag="restored", transform=transform,
                           provenance=provenance, title=f"restored ({args.method})")  # fmt: skip
