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
    parser.add_argument(
        "--enhance",
        action="store_true",
        help="find the candidate columns on the image enhanced by the unpaired generator "
        "('atomlens enhance'); positions and uncertainties still come from the raw counts",
    )
    parser.add_argument(
        "--site-search",
        choices=("auto", "on", "off"),
        default="auto",
        help="look again (1 %% false discoveries) at the empty lattice sites the columns found "
        "vote for, and drop noise beside them (auto: on for haadf only)",
    )
    parser.add_argument(
        "--precise",
        action="store_true",
        help="haadf: fit every column found again in a wider window (lower position errors "
        "where columns are wide for their spacing; 1.2-2.7 x the time)",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the CSV table")
    parser.add_argument("--plot", type=Path, help="also save the first image with its columns")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_parallel_arguments(parser)
    parser.set_defaults(run=run)


def add_parallel_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scheduler`` and ``--workers`` (shared with ``atomlens track``)."""
    parser.add_argument(
        "--scheduler",
        metavar="{threads,processes,synchronous,ADDRESS}",
        help="run frames (or several files) in parallel on Dask: local threads or processes, "
        "or the dask.distributed scheduler at ADDRESS (tcp://host:8786); a stack is then read a "
        "few frames at a time (.npy, TIFF). Results are the serial ones",
    )
    parser.add_argument(
        "--workers", type=int, help="local Dask workers (default: the CPU cores; implies threads)"
    )


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from atomlens.core.parallel import check_scheduler, map_files
    from atomlens.io import atomic_outputs, write_csv

    inputs = [Path(f) for f in args.files]
    for path in inputs:
        if not path.exists():
            raise ValueError(f"No such file: {path}")
    if args.output.suffix.lower() != ".csv":
        raise ValueError(f"-o {args.output} must end in .csv.")
    extra = [args.plot] if args.plot is not None else []
    check_outputs([args.output, *extra], args.overwrite, inputs, files=True)
    parallel = None
    if args.scheduler is not None or args.workers is not None:
        scheduler, workers = check_scheduler(args.scheduler, args.workers)
        parallel = {"scheduler": scheduler, "workers": workers}
        if args.enhance:
            raise ValueError("--enhance runs in one process: leave --scheduler and --workers out.")
    options = {
        "enhance": args.enhance,
        "pixel_size": args.pixel_size,
        "modality": args.modality,
        "spacing": args.spacing,
        "threshold": args.threshold,
        "method": args.method,
        "model": args.model,
        "structure": args.structure,
        "zone_axis": _zone_axis(args.zone_axis),
        "site_search": {"auto": None, "on": True, "off": False}[args.site_search],
        "precise": args.precise,
    }
    progress = not args.no_progress
    if parallel is not None and len(inputs) > 1:  # one file per task, its frames in turn
        located = map_files(_located_file, inputs, **parallel, progress=progress, options=options)
    else:  # one file at a time, the frames of a stack in parallel when asked
        located = [_located_file(path, options, parallel, progress) for path in inputs]
    tables = []
    for path, (table, _) in zip(inputs, located, strict=True):
        spacing, source = table.attrs["spacing_px"], table.attrs["spacing_source"]
        print(f"{path}: {len(table)} columns, spacing {spacing:.1f} px ({source})")
        if len(inputs) > 1:
            table.insert(0, "file", str(path))
        tables.append(table)
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
            first = _first_frame(inputs[0], lazy=parallel is not None)
            _plot(out.path(args.plot), first, tables[0], located[0][1], inputs[0])
    print(args.output)
    return 0


def _located_file(
    path: str | Path,
    options: dict,
    parallel: dict | None = None,
    progress: bool = False,
):
    """The columns of one file (``atomlens.locate``'s table) and the pixel size used [Å/px].

    With ``parallel`` (scheduler and workers) a stack's frames are located on Dask, read a few
    at a time; errors name the file.
    """
    import numpy as np

    from atomlens.core.parallel import open_stack
    from atomlens.core.validation import InputError
    from atomlens.io import read
    from atomlens.locate import locate

    path = Path(path)
    options = dict(options)
    if parallel is not None:
        data, file_pixel_size = open_stack(path)
    else:
        image = read(path)
        if image.kind == "diffraction":
            raise ValueError(f"{path} holds a diffraction pattern, not an image of columns.")
        file_pixel_size = None if image.pixel_size is None else float(sum(image.pixel_size) / 2)
        data = np.asarray(image.data)
    if options["pixel_size"] is None:
        options["pixel_size"] = file_pixel_size
    if data.ndim != 3:
        data, parallel = np.asarray(data), None  # one image: nothing to run in parallel
    try:
        if options.pop("enhance"):
            from atomlens.enhance import enhance

            options["guide"] = enhance(
                data, options["modality"], options["pixel_size"], spacing=options["spacing"]
            )
        table = locate(data, **options, progress=progress and data.ndim == 3, **(parallel or {}))
    except (InputError, ValueError) as error:  # name the file
        raise type(error)(f"{path}: {error}") from None
    return table, options["pixel_size"]


def _first_frame(path: Path, lazy: bool):
    """The first image of a file (the first frame of a stack); with ``lazy`` the other frames
    are not read where the format allows (.npy, TIFF)."""
    import numpy as np

    from atomlens.core.parallel import open_stack
    from atomlens.io import read

    data = open_stack(path)[0] if lazy else read(path).data
    return np.asarray(data[0] if data.ndim == 3 else data)


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
