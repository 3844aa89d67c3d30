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
    outputs: Iterable[str | Path],
    overwrite: bool,
    inputs: Iterable[str | Path] = (),
    *,
    files: bool = False,
) -> None:
    """Refuse before any work: an output that is one of the inputs, or exists without overwrite.

    Every command checks its outputs here, so the messages are the same everywhere.

    Parameters
    ----------
    outputs : iterable of str or Path
        The files (or folders) the command will write.
    overwrite : bool
        ``--overwrite`` was given: existing outputs may be replaced.
    inputs : iterable of str or Path
        The files the command reads; no output may be one of them.
    files : bool
        Every output is a file: refuse one that is an existing folder, even with ``overwrite``
        (it could not be replaced, and would fail the run after the work).
    """
    outputs = [Path(p) for p in outputs]
    inputs = [Path(p) for p in inputs]
    for output in outputs:
        for source in inputs:
            if _same_file(output, source):
                raise ValueError(
                    f"output {output} would replace the input {source}; give another output name."
                )
    folders = [str(p) for p in outputs if files and p.is_dir()]
    if folders:
        raise IsADirectoryError(
            f"{', '.join(folders)}: a folder where the output file goes; move it away, or choose "
            "another name."
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


def prepare_folder(
    folder: str | Path, names: list[str], overwrite: bool, *, create: bool = True
) -> Path:
    """Check the outputs ``folder / name`` before any work; create the folder if ``create``.

    Parameters
    ----------
    folder : str or Path
        The ``-o`` folder.
    names : list of str
        The files the command writes into it.
    overwrite : bool
        ``--overwrite`` was given.
    create : bool
        Create the folder now. A command that writes through
        :func:`atomlens.io.atomic_outputs` passes False: the folder is then made only
        when the outputs are written, and removed again if that fails.

    Returns
    -------
    Path
        The folder.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"-o {folder} is a file; give a folder for the outputs.")
    above = folder.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ValueError(f"-o {folder}: {above} is a file, so no folder can be made in it.")
    check_outputs([folder / n for n in names], overwrite, files=True)
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder
