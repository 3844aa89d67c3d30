"""``atomlens analyze``: lattice, displacements, strain and defects from a table of columns."""

from __future__ import annotations

import argparse
from pathlib import Path

from atomlens.cli._common import check_outputs

#: What the command writes into its output folder.
OUTPUTS = ("columns.csv", "vacancies.csv", "bonds.csv", "lattice.json", "maps.png")
#: Written too with --image: strain maps by geometric phase analysis, the second method.
GPA_OUTPUT = "gpa.png"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "analyze",
        help="lattice, displacement, strain, rotation and defects from located columns",
        description=(
            "Analyze a table of columns (the CSV of atomlens locate: y, x [px], intensity, ...): "
            "fit the lattice (basis vectors, sublattices), every column's displacement from its "
            "ideal site, local strain (exx, eyy, exy) and rotation, vacancies, columns off the "
            "lattice, columns of unusual intensity, and the first-shell neighbour graph. Writes "
            "OUT/columns.csv (the table plus i, j, sublattice, y_ideal, x_ideal, dy, dx, exx, "
            "eyy, exy, rotation, coordination, flags), OUT/vacancies.csv, OUT/bonds.csv (a, b, "
            "distance, angle), OUT/lattice.json and OUT/maps.png; with --image also OUT/gpa.png, "
            "strain maps by geometric phase analysis of the image (the second method). "
            "example: atomlens analyze atoms.csv --image image.dm3 -o analysis/"
        ),
    )
    parser.add_argument("table", type=Path, metavar="ATOMS.csv", help="the columns (CSV)")
    parser.add_argument("--image", type=Path, help="the image the columns came from (maps)")
    parser.add_argument("--pixel-size", type=float, help="pixel size [Å/px] (else from --image)")
    parser.add_argument("--frame", type=int, help="the frame to analyze in a stack's table")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.set_defaults(run=run)


def _read_table(path: Path, frame: int | None):
    import pandas as pd

    if not path.exists():
        raise ValueError(f"No such file: {path}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable CSV table: {error}") from None
    if "file" in table and table["file"].nunique() > 1:
        raise ValueError(f"{path} holds columns of several files; analyze one file's rows.")
    if frame is not None:
        if "frame" not in table:
            raise ValueError(f"{path} has no frame column; --frame is for a stack's table.")
        table = table[table["frame"] == frame]
        if table.empty:
            raise ValueError(f"{path} has no rows of frame {frame}.")
    elif "frame" in table and table["frame"].nunique() > 1:
        raise ValueError(f"{path} holds several frames; choose one with --frame.")
    return table


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from atomlens.analyze import analyze, gpa
    from atomlens.analyze.gpa import reciprocal_basis
    from atomlens.io import atomic_outputs, read, write_csv
    from atomlens.report import save_analysis_maps, save_strain_images

    inputs = [args.table] + ([args.image] if args.image is not None else [])
    names = [*OUTPUTS, *([GPA_OUTPUT] if args.image is not None else [])]
    targets = [args.output / name for name in names]
    check_outputs(targets, args.overwrite, inputs, files=True)
    table = _read_table(args.table, args.frame)
    image, pixel_size = None, args.pixel_size
    if args.image is not None:
        if not args.image.exists():
            raise ValueError(f"No such file: {args.image}")
        read_image = read(args.image)
        image = np.asarray(read_image.data, dtype=np.float32)
        if image.ndim == 3:
            image = image[args.frame or 0]
        if pixel_size is None and read_image.pixel_size is not None:
            pixel_size = float(np.mean(read_image.pixel_size))
    if pixel_size is None and "y_A" in table and table["y_A"].notna().any():
        pixel_size = float(np.median(table["y_A"] / table["y"].where(table["y"] != 0)))
    result = analyze(table, pixel_size=pixel_size)
    path = dict(zip(names, targets, strict=True))
    with atomic_outputs(targets, overwrite=args.overwrite, create_folders=True) as out:
        write_csv(out.path(path["columns.csv"]), result.columns, overwrite=True)
        write_csv(out.path(path["vacancies.csv"]), result.vacancies, overwrite=True)
        write_csv(out.path(path["bonds.csv"]), result.bonds, overwrite=True)
        out.path(path["lattice.json"]).write_text(result.to_json() + "\n")
        save_analysis_maps(out.path(path["maps.png"]), result.columns, result.vacancies, image,
                           pixel_size)  # fmt: skip
        if image is not None:
            maps = gpa(image, reciprocal_basis(result.lattice.basis))
            save_strain_images(out.path(path[GPA_OUTPUT]), vars(maps), maps.reliable)
    summary = result.summary()
    print(
        f"{summary['columns']} columns, {summary['sublattices']} sublattice(s), "
        f"|a| {summary['a_px']:.3f} px, |b| {summary['b_px']:.3f} px, "
        f"angle {summary['angle_deg']:.2f} deg; {summary['vacancies']} vacancies, "
        f"{summary['off_lattice']} off the lattice, {summary['unusual_intensity']} of unusual "
        f"intensity; coordination {summary['coordination_expected']}, "
        f"{summary['under_coordinated']} under- and {summary['over_coordinated']} "
        "over-coordinated"
    )
    for target in targets:
        print(target)
    return 0
