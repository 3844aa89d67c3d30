"""Atomic file replacement: write to a temporary file, fsync, then rename into place.

:func:`atomic_write` writes one file; :func:`atomic_outputs` writes several files as one: every
file goes to a private temporary folder beside its destination and all are moved into place only
when every one was written, so a failure or an interrupt (``KeyboardInterrupt``) part-way leaves
every earlier output as it was and no temporary file behind.
"""

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AtomicOutputs", "atomic_outputs", "atomic_write"]

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:  # elsewhere: set and restore (briefly process-wide)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Flush the rename to disk where the platform allows it (POSIX)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], overwrite: bool) -> Path:
    """Run ``write(tmp_path)``, then move the finished file to ``path`` in one step.

    Parameters
    ----------
    path : str or PathLike
        Destination.
    write : callable
        Writes the whole file to the temporary path it is given.
    overwrite : bool
        Replace an existing ``path``; otherwise raise ``FileExistsError``.

    Returns
    -------
    Path
        The destination.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True to replace it, or choose another name"
        )
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist; create it")
    mode = (path.stat().st_mode & 0o7777) if path.exists() else (0o666 & ~_umask())
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_clobber(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(folder)
    return path


def _move_no_clobber(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path`` unless ``path`` appeared meanwhile (hard link, then unlink)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            f"{path} appeared while it was being written; pass overwrite=True to replace it"
        ) from None
    except OSError:  # file system without hard links
        if path.exists():
            raise FileExistsError(f"{path} already exists; pass overwrite=True") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


class AtomicOutputs:
    """The files of one :func:`atomic_outputs` block: where to write each, and the commit.

    Parameters
    ----------
    destinations : iterable of str or PathLike
        The files to write, each once.
    overwrite : bool
        Replace existing files; otherwise an existing destination raises ``FileExistsError``.
    create_folders : bool
        Create missing folders of the destinations (removed again, when empty, on failure).
    """

    def __init__(
        self, destinations: Iterable[str | os.PathLike], *, overwrite: bool, create_folders: bool
    ) -> None:
        self.overwrite, self.create_folders = bool(overwrite), bool(create_folders)
        self.destinations: list[Path] = []
        for destination in destinations:
            path = Path(destination).expanduser()
            if path in self.destinations:
                raise ValueError(f"{path} is given twice as an output; give each file once.")
            self.destinations.append(path)
        self._temporary: dict[Path, Path] = {}  # folder -> private temporary folder in it
        self._created: list[Path] = []  # folders made here, parents first
        for path in self.destinations:
            _check_destination(path, self.overwrite, self.create_folders)

    def path(self, destination: str | os.PathLike) -> Path:
        """The temporary file to write ``destination`` to (same name, private folder beside it).

        Parameters
        ----------
        destination : str or PathLike
            One of the destinations given to :func:`atomic_outputs`.

        Returns
        -------
        Path
            A path in the destination's file system that does not exist yet.
        """
        target = Path(destination).expanduser()
        if target not in self.destinations:
            raise ValueError(
                f"{target} is not one of the outputs of this atomic_outputs block "
                f"({', '.join(map(str, self.destinations))}); declare it there."
            )
        return self._temporary_folder(target.parent) / target.name

    def _temporary_folder(self, folder: Path) -> Path:
        if folder not in self._temporary:
            if self.create_folders:
                self._make_folders(folder)
            self._temporary[folder] = Path(
                tempfile.mkdtemp(prefix=".atomlens-outputs-", suffix=".tmp", dir=folder)
            )
        return self._temporary[folder]

    def _make_folders(self, folder: Path) -> None:
        missing = []
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:  # made by someone else meanwhile: not ours to remove
                continue
            self._created.append(path)

    def commit(self) -> None:
        """Move every written file into place, or (on any failure) none of them.

        Raises
        ------
        FileNotFoundError
            A destination was never written.
        FileExistsError, IsADirectoryError
            A destination appeared (or became a folder) while the files were written.
        """
        written = [self._written(path) for path in self.destinations]
        for path in self.destinations:
            _check_destination(path, self.overwrite, create_folders=False)
        for path, tmp in zip(self.destinations, written, strict=True):
            _sync_file(tmp)
            os.chmod(tmp, (path.stat().st_mode & 0o7777) if path.exists() else (0o666 & ~_umask()))
        moved: list[_Move] = []
        try:
            for path, tmp in zip(self.destinations, written, strict=True):
                moved.append(_backup(tmp, path))  # before the move: an interrupt may come
                if moved[-1].existed:
                    os.replace(tmp, path)
                else:
                    _move_no_clobber(tmp, path)
        except BaseException:
            _roll_back(moved)
            raise
        for folder in self._temporary:
            _fsync_dir(folder)

    def _written(self, path: Path) -> Path:
        folder = self._temporary.get(path.parent)
        if folder is None or not (folder / path.name).is_file():
            raise FileNotFoundError(
                f"{path} was declared as an output but not written; write it to "
                "outputs.path(...) or leave it out of atomic_outputs([...])."
            )
        return folder / path.name

    def discard(self) -> None:
        """Remove every temporary file, and the folders this block created (when empty)."""
        self.clean()
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):  # not empty: someone else's files are in it
                folder.rmdir()

    def clean(self) -> None:
        """Remove the temporary folders (and whatever is left in them)."""
        for folder in self._temporary.values():
            shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class _Move:
    """One destination of a commit: the new file (by inode) and how to undo its move."""

    path: Path
    new: tuple[int, int]  # (device, inode) of the new file
    existed: bool
    backup: Path | None  # a hard link to the old file, beside the new one


def _backup(tmp: Path, path: Path) -> _Move:
    """The undo record of moving ``tmp`` to ``path``, with a hard link to an old ``path``."""
    stat = tmp.stat()
    if not path.exists():
        return _Move(path, (stat.st_dev, stat.st_ino), existed=False, backup=None)
    backup: Path | None = tmp.with_name(f".{tmp.name}.old")
    try:
        os.link(path, backup)
    except OSError:  # no hard links here: the old file cannot be restored
        backup = None
    return _Move(path, (stat.st_dev, stat.st_ino), existed=True, backup=backup)


def _roll_back(moved: list[_Move]) -> None:
    """Undo the moves of a failed commit, last first: restore old files, remove new ones.

    A destination that does not hold the new file (its move never happened) is left alone.
    """
    for move in reversed(moved):
        with contextlib.suppress(OSError):
            current = os.lstat(move.path)
            if (current.st_dev, current.st_ino) != move.new:
                continue
            if move.backup is not None:
                os.replace(move.backup, move.path)
            elif not move.existed:
                move.path.unlink()


def _check_destination(path: Path, overwrite: bool, create_folders: bool) -> None:
    """Refuse a destination that is a folder, exists without ``overwrite``, or has no folder."""
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True to replace it, or choose another name"
        )
    folder = path.parent
    if not create_folders and not folder.exists():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist; create it")
    while not folder.exists() and folder != folder.parent:  # where the new folders will go
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")


def _sync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_outputs(
    destinations: Iterable[str | os.PathLike],
    *,
    overwrite: bool = False,
    create_folders: bool = False,
) -> Iterator[AtomicOutputs]:
    """Write several files as one: all are moved into place when the block succeeds, or none.

    Inside the block, write each destination to ``outputs.path(destination)`` (a file of the same
    name in a private temporary folder beside the destination, so any writer works, including the
    atomic ones with ``overwrite=False``). When the block ends without an exception every file is
    flushed to disk and moved into place; an existing file keeps its permissions. When the block
    raises (also ``KeyboardInterrupt``), or a move fails, no destination is changed: the files
    already moved are moved back, the temporary files are removed, and so are the folders that
    ``create_folders`` made.

    Parameters
    ----------
    destinations : iterable of str or PathLike
        The files to write, each once; all must be written in the block.
    overwrite : bool, default False
        Replace existing files; otherwise an existing destination raises ``FileExistsError``
        (checked on entry and again before the move).
    create_folders : bool, default False
        Create missing folders of the destinations when the first file is written.

    Yields
    ------
    AtomicOutputs
        Its ``path(destination)`` gives the temporary file to write.

    Raises
    ------
    FileExistsError
        A destination exists and ``overwrite`` is False.
    IsADirectoryError
        A destination is a folder.
    FileNotFoundError
        A destination's folder does not exist (without ``create_folders``), or a destination was
        not written in the block.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_outputs([folder / "a.txt", folder / "b.txt"]) as outputs:
    ...     _ = outputs.path(folder / "a.txt").write_text("a")
    ...     _ = outputs.path(folder / "b.txt").write_text("b")
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt', 'b.txt']
    """
    outputs = AtomicOutputs(destinations, overwrite=overwrite, create_folders=create_folders)
    try:
        yield outputs
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    outputs.clean()
