"""``atomlens locate``: every atomic column of microscope images, as one CSV table."""

from __future__ import annotations

import argparse
from pathlib import Path

from atomlens.cli._common import check_outputs


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "locate",
        help="find every atomic column: sub-pixel positions, uncertainties, intensities",
        description=(
            "Locate the atomic columns of images (or of every frame of a stack) read from any "
            "file atomlens reads (DM3/DM4, SER, HyperSpy, TIFF, PNG, MRC, HDF5, .npy). The CSV "
            "has one row per column: y, x [px], y_A, x_A [Å], intensity, class, sigma_y, "
            "sigma_x [px] (position standard errors), width [px], background, and frame for a "
            "stack and file for several inputs (trackpy's column names). Without a pixel size "
            "(in the file or --pixel-size) positions are in pixels only and the column spacing "
            "is estimated from the image. "
            "example: atomlens locate image.dm3 --modality haadf -o atoms.csv --plot overlay.png"
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="image file(s)")
    parser.add_argument(
        "--modality",
        choices=("haadf", "abf", "hrtem"),
        default="haadf",
        help="what the images show: columns bright (haadf), dark (abf), or decided (hrtem)",
    )
    parser.add_argument(
        "--pixel-size", type=float, help="pixel size [Å/px] when the file has none (or to override)"
    )
    parser.add_argument(
        "--spacing", type=float, help="nearest-neighbour column distance [Å] (else estimated)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=4.0,
        help="least column prominence in noise standard deviations (default 4)",
    )
    parser.add_argument(
        "--method",
        choices=("classical", "unet", "structure"),
        default="classical",
        help="column candidates from peak finding (classical), the U-Net segmentor, or the "
        "structure-conditioned network (give --structure); refined the same way",
    )
    parser.add_argument("--model", help="segmentation model name or folder (default: shipped)")
    parser.add_argument(
        "--structure", help="the material for --method structure, e.g. SrTiO3 (or a CIF file)"
    )
    parser.add_argument(
        "--zone-axis", help="zone axis of --structure, comma-separated, e.g. 0,0,1 (default)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the CSV table")
    parser.add_argument("--plot", type=Path, help="also save the first image with its columns")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from atomlens.core.validation import InputError
    from atomlens.io import atomic_outputs, read, write_csv
    from atomlens.locate import locate

    inputs = [Path(f) for f in args.files]
    for path in inputs:
        if not path.exists():
            raise ValueError(f"No such file: {path}")
    if args.output.suffix.lower() != ".csv":
        raise ValueError(f"-o {args.output} must end in .csv.")
    extra = [args.plot] if args.plot is not None else []
    check_outputs([args.output, *extra], args.overwrite, inputs, files=True)
    zone_axis = _zone_axis(args.zone_axis)
    tables, first = [], None
    for path in inputs:
        image = read(path)
        if image.kind == "diffraction":
            raise ValueError(f"{path} holds a diffraction pattern, not an image of columns.")
        pixel_size = args.pixel_size
        if pixel_size is None and image.pixel_size is not None:
            pixel_size = float(sum(image.pixel_size) / 2)
        data = np.asarray(image.data)
        try:
            table = locate(
                data,
                pixel_size=pixel_size,
                modality=args.modality,
                spacing=args.spacing,
                threshold=args.threshold,
                method=args.method,
                model=args.model,
                structure=args.structure,
                zone_axis=zone_axis,
                progress=not args.no_progress and data.ndim == 3,
            )
        except (InputError, ValueError) as error:  # name the file
            raise type(error)(f"{path}: {error}") from None
        spacing, source = table.attrs["spacing_px"], table.attrs["spacing_source"]
        print(f"{path}: {len(table)} columns, spacing {spacing:.1f} px ({source})")
        if len(inputs) > 1:
            table.insert(0, "file", str(path))
        tables.append(table)
        if first is None:
            first = (data[0] if data.ndim == 3 else data, table, pixel_size, path)
    if any("frame" in table for table in tables):  # a single image is frame 0 beside stacks
        for table in tables:
            if "frame" not in table:
                table.insert(1 if "file" in table else 0, "frame", 0)
    result = pd.concat(tables, ignore_index=True)
    with atomic_outputs(
        [args.output, *extra], overwrite=args.overwrite, create_folders=True
    ) as out:
        write_csv(out.path(args.output), result, overwrite=True)
        if args.plot is not None:
            _plot(out.path(args.plot), *first)
    print(args.output)
    return 0


def _zone_axis(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        axis = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(
            f"--zone-axis must be comma-separated integers such as 0,0,1, got {text!r}."
        ) from None
    if len(axis) not in (3, 4) or not any(axis):
        raise ValueError(f"--zone-axis must have 3 (or 4 hexagonal) indices, not all 0: {text!r}.")
    return axis


def _plot(path: Path, image, table, pixel_size: float | None, source: Path) -> None:
    from matplotlib.figure import Figure

    from atomlens.report.figures import plot_overlay, save_figure

    if "frame" in table:
        table = table[table["frame"] == 0]
    fig = Figure(figsize=(7, 7))
    ax = fig.subplots()
    columns = table.rename(columns={"class": "species"})
    plot_overlay(ax, image, columns, pixel_size, title=f"{source.name}: {len(table)} columns")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
