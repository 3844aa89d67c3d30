"""The ``atomlens`` command: a thin argparse layer over the library.

Only this package configures logging (``--verbose``); the library logs through
``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from atomlens import __version__
from atomlens.cli import calibrate, demo, info, simulate, train


class CommandError(Exception):
    """An error to report to the user in one line, with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    """The full ``atomlens`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="atomlens",
        description=(
            "Trustworthy numbers from atomic-resolution electron microscopy. Units: lengths "
            "and aberrations in Angstrom, angles in mrad (aberration angles phi in rad), "
            "energies in eV."
        ),
    )
    parser.add_argument("--version", action="version", version=f"atomlens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    simulate.add_parser(commands)
    calibrate.add_parser(commands)
    train.add_parser(commands)
    info.add_parser(commands)
    demo.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except (ValueError, OSError, CommandError) as err:
        if args.verbose:
            raise
        print(f"atomlens {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
