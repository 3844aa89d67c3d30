"""``atomlens info FILE``: what was read from a microscope file."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "info",
        help="print what atomlens reads from a microscope file",
        description=(
            "Read a microscope file (.dm3, .dm4, .emd, .ser, .mrc, .tif, .png, .npy, HyperSpy "
            ".hspy/.hdf5) and print its shape, data type, calibration with units, beam energy "
            "and main metadata, or a clear error. The data are read only for the value "
            "statistics, and only when they take at most 256 MiB."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="file(s) to describe")
    parser.add_argument(
        "--index", type=int, default=None, help="signal to pick in multi-signal files"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from atomlens.io import describe

    status = 0
    for number, path in enumerate(args.files):
        if number:
            print()
        try:
            print(describe(path, index=args.index))
        except (ValueError, OSError) as err:  # every atomlens.io error is one of these
            print(f"atomlens info: error: {err}", file=sys.stderr)
            status = 2
    return status
