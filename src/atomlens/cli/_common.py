"""Argument helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

from atomlens.physics.optics.aberrations import ANGLE_NAMES, MAGNITUDE_NAMES, Aberrations


def add_aberration_arguments(parser: argparse.ArgumentParser, title: str) -> None:
    """``--C10 ... --C56`` [Å] and ``--phi12 ... --phi56`` [rad] in their own group."""
    group = parser.add_argument_group(
        f"{title} (Krivanek notation as abTEM: C{{n}}{{m}} in Å, phi{{n}}{{m}} in rad; "
        "C10 = -defocus)"
    )
    for name in MAGNITUDE_NAMES:
        group.add_argument(f"--{name}", type=float, default=None, metavar="Å", help="[Å]")
    for name in ANGLE_NAMES:
        group.add_argument(f"--{name}", type=float, default=None, metavar="RAD", help="[rad]")


def aberrations_from(args: argparse.Namespace) -> Aberrations | None:
    """The aberrations given on the command line, or None when none was given."""
    given = {n: getattr(args, n) for n in MAGNITUDE_NAMES + ANGLE_NAMES}
    given = {n: v for n, v in given.items() if v is not None}
    return Aberrations(given) if given else None


def check_outputs(
    outputs: Iterable[str | Path], overwrite: bool, inputs: Iterable[str | Path] = ()
) -> None:
    """Refuse before any work: an output that is one of the inputs, or exists without overwrite.

    Every command checks its outputs here, so the messages are the same everywhere.
    """
    outputs = [Path(p) for p in outputs]
    inputs = [Path(p) for p in inputs]
    for output in outputs:
        for source in inputs:
            if _same_file(output, source):
                raise ValueError(
                    f"output {output} would replace the input {source}; give another output name."
                )
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not overwrite:
        verb = "exists" if len(existing) == 1 else "exist"
        raise FileExistsError(
            f"{', '.join(existing)} {verb}; pass --overwrite to replace, or choose another name."
        )


def _same_file(one: Path, other: Path) -> bool:
    if one.exists() and other.exists():
        return os.path.samefile(one, other)
    return one.expanduser().resolve() == other.expanduser().resolve()


def prepare_folder(folder: str | Path, names: list[str], overwrite: bool) -> Path:
    """Create the output folder; refuse when one of the outputs exists and not ``overwrite``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"-o {folder} is a file; give a folder for the outputs.")
    check_outputs([folder / n for n in names], overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
