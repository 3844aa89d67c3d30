"""``atomlens enhance``: enhance experimental images by the unpaired generator, calibration kept."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "enhance",
        help="translate experimental images to clean-looking ones (unpaired CycleGAN)",
        description=(
            "Enhance images (or image stacks) read from any file atomlens reads with the "
            "experiment-to-clean generator of an unpaired CycleGAN trained on real images and "
            "clean simulations (thesis 003). The result keeps the input's shape, units and "
            "calibration; its contrast is that of clean simulations, not calibrated counts (use "
            "'atomlens restore' for counts). With one FILE, -o is the output file (TIFF or "
            "HDF5 by its suffix); with several, -o is a folder that gets <name>_enhanced.tif "
            "for each. example: atomlens enhance image.dm3 -o enhanced.tif --plot panels.png"
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="image file(s)")
    parser.add_argument(
        "--modality",
        choices=("haadf", "abf", "hrtem"),
        default="haadf",
        help="what the images show (ADF counts as haadf); the model must know it",
    )
    parser.add_argument(
        "--pixel-size", type=float, help="pixel size [Å/px] when the file has none (or to override)"
    )
    parser.add_argument(
        "--spacing",
        type=float,
        help="column spacing [Å] (needs a pixel size); estimated from the image by default",
    )
    parser.add_argument("--model", help="model name or folder instead of the shipped generators")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output file or folder")
    parser.add_argument("--plot", type=Path, help="also save input | enhanced panels as a PNG")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atomlens.cli._image_to_image import transform_files
    from atomlens.enhance import enhance

    def transform(data, pixel_size):
        if args.spacing is not None and pixel_size is None:
            raise ValueError("--spacing needs a pixel size: the file has none; add --pixel-size.")
        return enhance(
            data,
            modality=args.modality,
            pixel_size=pixel_size,
            spacing=args.spacing,
            model=args.model,
            progress=not args.no_progress and data.ndim == 3,
        )

    provenance = f"atomlens enhance --modality {args.modality}" + (
        f" --model {args.model}" if args.model else ""
    )
    return transform_files(
        args,
        verb="enhance",
        tag="enhanced",
        transform=transform,
        provenance=provenance,
        title="enhanced (unpaired generator)",
    )
