"""The ``atomlens`` command: a thin argparse layer over the library.

Only this package configures logging (``--verbose``); the library logs through
``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from atomlens import __version__
from atomlens.cli import (
    analyze,
    calibrate,
    demo,
    enhance,
    info,
    locate,
    restore,
    run,
    simulate,
    track,
    train,
)
from atomlens.core.validation import ModelNotFoundError


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
    restore.add_parser(commands)
    enhance.add_parser(commands)
    locate.add_parser(commands)
    analyze.add_parser(commands)
    track.add_parser(commands)
    run.add_parser(commands)
    train.add_parser(commands)
    info.add_parser(commands)
    demo.add_parser(commands)
    for each in _all_parsers(parser):
        # Read "--C10 -1e7" as a negative number, as Python 3.13's argparse does; 3.11 and 3.12
        # only know "-1" and "-1.5" and would take "-1e7" for an option.
        each._negative_number_matcher = NEGATIVE_NUMBER
    return parser


NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-(inf|nan)$")


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and all its subcommand parsers."""
    found, pending = [], [parser]
    while pending:
        current = pending.pop()
        found.append(current)
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    return found


def _long_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--flag`` of the parser and its subcommands."""
    return {
        option
        for each in _all_parsers(parser)
        for action in each._actions
        for option in action.option_strings
        if option.startswith("--")
    }


def command_line_terms(message: str, flags: set[str]) -> str:
    """Say ``--pixel-size`` where a library error says ``pixel_size=...`` and the CLI has the flag.

    Library errors name keyword arguments, never command-line flags; the command translates them.

    Examples
    --------
    >>> command_line_terms("pass pixel_size=... in Å, or overwrite=True", {"--pixel-size"})
    'pass --pixel-size in Å, or overwrite=True'
    """

    def flag(match: re.Match) -> str:
        name = "--" + match.group(1).replace("_", "-")
        return name if name in flags else match.group(0)

    return re.sub(r"\b([a-z][a-z0-9_]*)=(?:True|\.\.\.)?(?=[\s,;:)]|$)", flag, message)


def write_error_report(argv: Sequence[str] | None) -> Path:
    """Write the current exception's traceback and the command line to a new file; its path.

    The file goes to ``ATOMLENS_ERROR_DIR`` or the system's temporary folder, under a fresh name,
    so no report ever replaces another file.
    """
    folder = Path(os.environ.get("ATOMLENS_ERROR_DIR") or tempfile.gettempdir())
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = (
        f"atomlens {__version__}, Python {sys.version.split()[0]}, {sys.platform}\n"
        f"command: atomlens {' '.join(sys.argv[1:] if argv is None else argv)}\n\n"
        f"{traceback.format_exc()}"
    )
    with tempfile.NamedTemporaryFile(
        "w", prefix=f"atomlens-error-{stamp}-", suffix=".txt", dir=folder, delete=False
    ) as file:
        file.write(text)
    return Path(file.name)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a library warning as one line, ``atomlens: warning: ...``, without source lines."""
    print(f"atomlens: warning: {message}", file=sys.stderr if file is None else file)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``, a batch scheduler): stop and clean up as for Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Exit status: 0 done, 1 internal error (with a report file), 2 refused input, 130 interrupted
    (Ctrl-C), 143 terminated (SIGTERM). An interrupted or terminated run leaves its outputs as
    they were: they are written to temporary files and moved into place only when complete.
    """
    try:
        parser = build_parser()
    except KeyboardInterrupt:
        print("atomlens: interrupted", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    warnings.showwarning = _show_warning
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    try:
        status = int(args.run(args) or 0)
        if argv is None and on_main_thread:
            # The outputs are in place: a Ctrl-C during the interpreter's shutdown (1-2 s with
            # torch loaded) must not print a traceback or turn a finished run into a failure.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return status
    except (ValueError, OSError, CommandError, ModelNotFoundError) as err:
        if args.verbose:
            raise
        message = command_line_terms(str(err), _long_flags(parser))
        print(f"atomlens {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        print(
            f"atomlens {args.command}: {'terminated' if terminated else 'interrupted'}",
            file=sys.stderr,
        )
        return 143 if terminated else 130
    except MemoryError:
        if args.verbose:
            raise
        print(
            f"atomlens {args.command}: error: out of memory; reduce the sizes or counts asked for.",
            file=sys.stderr,
        )
        return 2
    except Exception as err:  # an unexpected failure: one line plus the full report in a file
        if args.verbose:
            raise
        report = write_error_report(argv)
        print(
            f"atomlens {args.command}: internal error ({type(err).__name__}: {err}); the full "
            f"report is in {report}. Please send it with the issue.",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
