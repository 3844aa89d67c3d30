"""A bank of simulated training examples on disk: chunks written once, read as they appear.

Simulation and training run side by side: one process writes chunks ``chunk_<seed>.npz`` (each
simulated from its own seed, so a chunk is the same wherever and whenever it is made), another
trains and picks up new chunks while it runs. A chunk holds named arrays whose first axis is the
example (``grids``, ``coefficients``, ...) and optional 0-d arrays that describe the whole chunk
(``prior``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from atomlens.core.validation import check_size
from atomlens.io import atomic_write

__all__ = ["ExampleBank", "check_bank_folder", "chunk_path", "generate_bank", "write_chunk"]

CHUNK_GLOB = "chunk_*[0-9].npz"


def chunk_path(folder: str | Path, seed: int) -> Path:
    """Where the chunk simulated from ``seed`` lives in a bank folder."""
    if seed < 0:
        raise ValueError(f"Chunk seeds are non-negative integers, got {seed}.")
    return Path(folder) / f"chunk_{seed:06d}.npz"


def write_chunk(folder: str | Path, seed: int, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write one chunk atomically (a temporary file renamed into place) and return its path.

    Raises
    ------
    FileExistsError
        If the chunk exists: a bank never overwrites what it holds.
    """
    path = chunk_path(folder, seed)
    if path.exists():
        raise FileExistsError(f"{path} exists; a bank never overwrites a chunk.")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:  # a path would get ".npz" appended
            np.savez(handle, **arrays)

    return atomic_write(path, write, overwrite=False)


def check_bank_folder(folder: str | Path) -> Path:
    """Refuse, before any work, a bank folder that is a file or would have to be made in one.

    Returns
    -------
    Path
        The folder (not created: the first chunk written creates it).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; a bank is a folder of chunk files.")
    above = folder.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise NotADirectoryError(
            f"{folder}: {above} is a file, so no bank folder can be made in it."
        )
    return folder


def generate_bank(
    folder: str | Path,
    make_chunk: Callable[[int], Mapping[str, np.ndarray]],
    seeds: Iterable[int],
    *,
    progress: bool = True,
) -> list[Path]:
    """Simulate the chunks of these seeds that the bank does not hold yet.

    Parameters
    ----------
    folder : str or Path
        The bank folder (created if needed).
    make_chunk : callable
        ``make_chunk(seed) -> {name: array}``: the examples of one chunk.
    seeds : iterable of int
        One chunk per seed; chunks already on disk are skipped, so an interrupted run resumes.
    progress : bool
        Show a progress bar over the chunks.

    Returns
    -------
    list of Path
        The chunks written by this call.

    Raises
    ------
    NotADirectoryError
        Before any work, when ``folder`` is a file or lies inside one.
    ValueError
        A negative seed.
    """
    check_bank_folder(folder)
    seeds = seeds if isinstance(seeds, range) else list(seeds)  # a range stays lazy
    for seed in (seeds[0], seeds[-1]) if len(seeds) else ():
        chunk_path(folder, seed)  # refuses a negative seed before any work
    written = []
    for seed in tqdm(seeds, desc="bank chunks", unit="chunk", disable=not progress):
        if chunk_path(folder, seed).exists():
            continue
        written.append(write_chunk(folder, seed, make_chunk(seed)))
    return written


def _example_count(arrays: Mapping[str, np.ndarray], path: Path) -> int:
    lengths = {len(value) for value in arrays.values() if value.ndim > 0}
    if not lengths:
        raise ValueError(f"{path} holds no per-example arrays; it is not a bank chunk.")
    if len(lengths) != 1:
        raise ValueError(f"{path}: per-example arrays disagree on the example count {lengths}.")
    count = lengths.pop()
    if count < 1:
        raise ValueError(f"{path} holds no examples.")
    return count


def _read_chunk(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one chunk file, or a ValueError naming it (damaged, foreign, pickled)."""
    if not path.is_file():
        raise ValueError(f"{path} is not a file; a bank holds chunk files (chunk_<seed>.npz).")
    check_size(f"the bank chunk {path}", (path.stat().st_size,), itemsize=1)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not a chunk of named arrays")
        with data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path} is not a readable bank chunk ({error}); remove it and generate it again."
        ) from error
    for key, value in arrays.items():
        numbers = value.dtype.kind in "biuf"
        if not (numbers or value.dtype.kind == "U") or (numbers and not np.isfinite(value).all()):
            raise ValueError(
                f"{path}: array {key!r} holds {value.dtype} values or NaN / infinite numbers; "
                "remove the chunk and generate it again."
            )
    return arrays


class ExampleBank:
    """The finished chunks of a bank, in memory; :meth:`refresh` reads only the new ones.

    Chunks stay separate arrays (no concatenated copy), so a bank that is still being written costs
    one read per chunk during training.

    Parameters
    ----------
    folder : str or Path
        A bank folder with at least one chunk.

    Raises
    ------
    FileNotFoundError
        If the folder holds no chunk.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._paths: set[Path] = set()
        self._chunks: list[dict[str, np.ndarray]] = []
        self._offsets = np.zeros(1, dtype=np.int64)
        self.refresh()
        if not self._chunks:
            raise FileNotFoundError(
                f"No {CHUNK_GLOB} in {self.folder}; generate the bank first "
                "(generate_bank, the generate step of the task's training)."
            )

    def refresh(self) -> int:
        """Read chunks written since the last call; returns how many were new."""
        new = 0
        for path in sorted(self.folder.glob(CHUNK_GLOB)):
            if path in self._paths:
                continue
            arrays = _read_chunk(path)
            if self._chunks and set(arrays) != set(self._chunks[0]):
                raise ValueError(
                    f"{path} holds arrays {sorted(arrays)}, the bank {sorted(self._chunks[0])}."
                )
            _example_count(arrays, path)
            self._chunks.append(arrays)
            self._paths.add(path)
            new += 1
        counts = [_example_count(chunk, self.folder) for chunk in self._chunks]
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return new

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def chunks(self) -> int:
        """Number of chunks read."""
        return len(self._chunks)

    @property
    def example_size(self) -> int:
        """Values per example, over all its per-example arrays (a grid of 96 x 96: 9216)."""
        first = self._chunks[0]
        return sum(int(np.prod(v.shape[1:], dtype=np.int64)) for v in first.values() if v.ndim)

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """The per-example arrays of the examples at these bank indices (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"Bank indices must lie in [0, {len(self)}).")
        chunk = np.searchsorted(self._offsets, index, side="right") - 1
        local = index - self._offsets[chunk]
        keys = [k for k, v in self._chunks[0].items() if v.ndim > 0]
        return {
            key: np.stack([self._chunks[c][key][i] for c, i in zip(chunk, local, strict=True)])
            for key in keys
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-example array of the bank, concatenated over chunks."""
        keys = [k for k, v in self._chunks[0].items() if v.ndim > 0]
        return {key: np.concatenate([chunk[key] for chunk in self._chunks]) for key in keys}

    def count_by(self, key: str, default: str) -> dict[str, int]:
        """Examples per value of a chunk-level (0-d) array; chunks without it count as ``default``.

        For example ``count_by("prior", "broad")`` gives the examples per aberration prior.
        """
        counts: dict[str, int] = {}
        for chunk, start, stop in zip(
            self._chunks, self._offsets[:-1], self._offsets[1:], strict=True
        ):
            value = str(chunk[key]) if key in chunk else default
            counts[value] = counts.get(value, 0) + int(stop - start)
        return counts
