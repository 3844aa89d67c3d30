"""``atomlens track``: atoms through an image series, as one CSV table of trajectories."""

from __future__ import annotations

import argparse
from pathlib import Path

from atomlens.cli._common import check_outputs
from atomlens.cli.locate import add_parallel_arguments


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "track",
        help="link the atoms of an image series into trajectories (drift removed)",
        description=(
            "Track the atoms of an image series: a stack read from any file atomlens reads "
            "(located frame by frame first, as atomlens locate does), or a CSV of detections "
            "with frame, y, x [px] columns (the table of atomlens locate for a stack). The "
            "drift is estimated and removed, then the frames are linked by global one-to-one "
            "assignment with gap closing, hops to neighbouring sites and fast adatoms. The CSV "
            "has one row per detection: frame, particle, y, x [px], y_A, x_A [Å], confidence "
            "and the detection's other columns (trackpy's names). "
            "example: atomlens track series.tif --pixel-size 0.12 --frame-time 0.5 "
            "-o tracks.csv --features features.csv"
        ),
    )
    parser.add_argument("series", type=Path, metavar="SERIES", help="image stack or CSV table")
    parser.add_argument(
        "--pixel-size", type=float, help="pixel size [Å/px] when the file has none (or to override)"
    )
    parser.add_argument("--frame-time", type=float, help="time between frames [s]")
    parser.add_argument(
        "--modality",
        choices=("haadf", "abf", "hrtem"),
        default="haadf",
        help="what a stack shows: columns bright (haadf), dark (abf), or decided (hrtem)",
    )
    parser.add_argument(
        "--search-range",
        type=float,
        help="largest move between frames that keeps a lattice link [px] "
        "(default half the column spacing)",
    )
    parser.add_argument(
        "--memory", type=int, default=3, help="most frames an atom may be missed (default 3)"
    )
    parser.add_argument(
        "--fast-range",
        type=float,
        help="reach of hops and fast adatoms per frame [px] (default twice the column spacing)",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the CSV of tracks")
    parser.add_argument(
        "--features", type=Path, help="also write per-trajectory features (CSV): speed, MSD, D"
    )
    parser.add_argument(
        "--events",
        type=Path,
        help="also write the recognised events (CSV): hops, vacancy creation and migration, "
        "adatoms arriving and leaving, adatom clusters (from a stack, a site whose column a "
        "frame's detections missed but its counts show is not read as emptied)",
    )
    parser.add_argument(
        "--no-fill",
        action="store_true",
        help="a series file: do not add detections where a frame's counts show a column its "
        "detections missed at a lattice site (column from_counts)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_parallel_arguments(parser)
    parser.set_defaults(run=run)


def _read_series(path: Path, lazy: bool = False):
    """A table of detections (CSV) or a stack, and the file's pixel size [Å/px] if any.

    With ``lazy`` the stack is a dask array read a few frames at a time where the format
    allows (.npy, TIFF: :func:`atomlens.core.parallel.open_stack`).
    """
    import numpy as np
    import pandas as pd

    from atomlens.core.parallel import open_stack
    from atomlens.io import read

    if path.suffix.lower() == ".csv":
        try:
            return pd.read_csv(path), None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a readable CSV table: {error}") from None
    if lazy:
        data, pixel_size = open_stack(path)
        if data.ndim != 3:
            raise ValueError(
                f"{path} holds one image of shape {data.shape}, not a series of frames."
            )
        return data, pixel_size
    image = read(path)
    if image.kind == "diffraction":
        raise ValueError(f"{path} holds a diffraction pattern, not an image series.")
    data = np.asarray(image.data)
    if data.ndim != 3:
        raise ValueError(f"{path} holds one image of shape {data.shape}, not a series of frames.")
    pixel_size = None if image.pixel_size is None else float(sum(image.pixel_size) / 2)
    return data, pixel_size


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from atomlens.core.parallel import check_scheduler
    from atomlens.core.validation import InputError
    from atomlens.io import atomic_outputs, write_csv
    from atomlens.track import events, track, trajectory_features

    if not args.series.exists():
        raise ValueError(f"No such file: {args.series}")
    extra = [path for path in (args.features, args.events) if path is not None]
    outputs = [args.output, *extra]
    for output in outputs:
        if output.suffix.lower() != ".csv":
            raise ValueError(f"{output} must end in .csv.")
    check_outputs(outputs, args.overwrite, [args.series], files=True)
    parallel = {}
    if args.scheduler is not None or args.workers is not None:
        scheduler, workers = check_scheduler(args.scheduler, args.workers)
        parallel = {"scheduler": scheduler, "workers": workers}
    frames, file_pixel_size = _read_series(args.series, lazy=bool(parallel))
    pixel_size = args.pixel_size if args.pixel_size is not None else file_pixel_size
    try:
        tracks = track(
            frames,
            pixel_size=pixel_size,
            frame_time=args.frame_time,
            search_range=args.search_range,
            memory=args.memory,
            fast_range=args.fast_range,
            fill=not args.no_fill,
            **({"modality": args.modality} if not isinstance(frames, pd.DataFrame) else {}),
            **parallel,
        )
        features = trajectory_features(tracks) if args.features is not None else None
        # a stack's own counts tell a missed column from an empty site (not a table's)
        counts = None if isinstance(frames, pd.DataFrame) else frames
        found = events(tracks, frames=counts) if args.events is not None else None
    except (InputError, ValueError) as error:  # name the file
        raise type(error)(f"{args.series}: {error}") from None
    with atomic_outputs(outputs, overwrite=args.overwrite, create_folders=True) as out:
        write_csv(out.path(args.output), tracks, overwrite=True)
        if features is not None:
            write_csv(out.path(args.features), features, overwrite=True)
        if found is not None:
            write_csv(out.path(args.events), found, overwrite=True)
    drift = np.asarray(tracks.attrs["drift"])
    total = float(np.hypot(*(drift[-1] - drift[0])))
    print(
        f"{args.series}: {len(tracks)} detections in {tracks['frame'].nunique()} frames, "
        f"{tracks['particle'].nunique()} trajectories; search range "
        f"{tracks.attrs['search_range']:.2f} px, drift {total:.1f} px over the series"
    )
    for output in outputs:
        print(output)
    return 0
