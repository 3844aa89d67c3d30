"""``atomlens run``: the whole chain on one file, into a folder with one HTML report."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from atomlens.cli._common import prepare_folder


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="read, restore, locate, analyze and track one file; tables and an HTML report",
        description=(
            "The whole chain on one image or image series (any file atomlens reads): restore "
            "(an image: on; a series: with --restore), locate every column (on the raw counts "
            "unless --locate-on restored), analyze the lattice, strain and defects (of the image, "
            "or of the first frame), and for a series track the atoms, their motion (MSD, "
            "diffusion) and events. Writes CSV tables, PNG figures, a GIF movie of a series, "
            "summary.json and one self-contained report.html into the output folder. "
            "example: atomlens run series.tif --pixel-size 0.12 --frame-time 0.5 -o run_out"
        ),
    )
    parser.add_argument("input", type=Path, metavar="INPUT", help="image or image-series file")
    parser.add_argument(
        "--modality",
        choices=("haadf", "abf", "hrtem"),
        default="haadf",
        help="what the image shows: columns bright (haadf), dark (abf), or decided (hrtem)",
    )
    parser.add_argument(
        "--pixel-size", type=float, help="pixel size [Å/px] when the file has none (or to override)"
    )
    parser.add_argument("--frame-time", type=float, help="time between frames of a series [s]")
    restore = parser.add_mutually_exclusive_group()
    restore.add_argument(
        "--restore", dest="restore", action="store_true", default=None,
        help="restore with the shipped network (default for one image)",
    )  # fmt: skip
    restore.add_argument(
        "--no-restore", dest="restore", action="store_false",
        help="do not restore (default for a series)",
    )  # fmt: skip
    parser.add_argument(
        "--method",
        choices=("classical", "unet"),
        default="classical",
        help="how columns are found (default classical; unet: the shipped segmentation network)",
    )
    parser.add_argument(
        "--locate-on",
        choices=("raw", "restored", "enhanced"),
        default="raw",
        help="locate on the raw counts (default) or on the restored image; enhanced: find the "
        "columns on the image enhanced by the unpaired generator (HAADF), fit the raw counts",
    )
    parser.add_argument(
        "--precise",
        action="store_true",
        help="haadf: fit every column found again in a wider window (positions nearer the "
        "Cramer-Rao bound; about twice locate's time)",
    )
    parser.add_argument(
        "--scheduler",
        help="locate the frames of a series on Dask: threads, processes, or a "
        "dask.distributed scheduler address (tcp://host:port)",
    )
    parser.add_argument("--workers", type=int, help="Dask workers (with --scheduler)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atomlens.core.validation import InputError
    from atomlens.pipeline import output_names, write_run
    from atomlens.pipeline import run as run_chain

    if not args.input.exists():
        raise ValueError(f"No such file: {args.input}")
    if args.workers is not None and args.scheduler is None:
        raise ValueError("--workers needs --scheduler (threads, processes or an address).")
    names = output_names("series", args.restore is not False)
    folder = prepare_folder(args.output, names, args.overwrite, create=False)
    if args.input.resolve().parent == folder.resolve() and args.input.name in names:
        raise ValueError(f"{args.input} is one of the files the run writes; choose another -o.")
    try:
        result = run_chain(
            args.input,
            args.modality,
            pixel_size=args.pixel_size,
            frame_time=args.frame_time,
            restore=args.restore,
            locate_method=args.method,
            locate_on=args.locate_on,
            precise=args.precise,
            scheduler=args.scheduler,
            workers=args.workers,
        )
    except (InputError, ValueError) as error:  # name the file
        raise type(error)(f"{args.input}: {error}") from None
    command = "atomlens " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    written = write_run(result, folder, overwrite=args.overwrite, command=command)
    summary = result.summary()
    line = f"{args.input}: {summary['kind']} {' x '.join(map(str, summary['shape']))}, "
    line += f"{summary['columns']} columns"
    if result.tracks is not None:
        line += f", {summary['trajectories']} trajectories, {len(result.events)} events"
    print(line + f" ({sum(result.timings.values()):.1f} s)")
    for note in result.notes:
        print(f"note: {note}")
    print(f"{len(written)} files in {folder}; the report: {folder / 'report.html'}")
    return 0
