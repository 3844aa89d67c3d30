"""Frame-parallel maps over image stacks and lists of files, on Dask.

A stack (frames, rows, cols) is cut into blocks of whole frames along the frame axis; a
function runs on every block as one Dask task, on local threads, local processes, in the
calling thread (``"synchronous"``, for debugging), or on a dask.distributed cluster given by
its address (``"tcp://host:8786"``). Results come back in frame order, whatever order the
tasks finish in, so a map gives exactly what a serial loop over the blocks gives.

Memory stays bounded for stacks larger than memory: a stack may be a dask array whose blocks
are read from the file only when their task runs (:func:`open_stack` makes one from a .npy or
TIFF file without reading it), and at most a few blocks per worker are in flight at a time
(a window); with ``sink=``, every block's result is handed over in order as soon as it and
all before it are done, and not kept.

Importing this module imports neither dask nor distributed; the functions do when called.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SCHEDULERS",
    "check_scheduler",
    "frame_blocks",
    "is_lazy",
    "map_blocks",
    "map_files",
    "open_stack",
    "threads_per_worker",
    "usable_cores",
]

#: The local schedulers; any other string must be a dask.distributed address.
SCHEDULERS = ("threads", "processes", "synchronous")
#: Blocks per worker in one window of tasks (results are handed on to a sink, and a lazy
#: stack's blocks read, a window at a time; tasks on a cluster are sent a window at a time):
#: each window ends with a worker waiting for the other's last block, so fewer, larger
#: windows waste less (100 frames of 512 x 512 px on 2 processes: 114 s with 4 per worker,
#: 102 s with 16, one run each on a machine whose speed varied by about 10 %). A stack in
#: memory on a local pool, with no sink, is one window.
WINDOW_PER_WORKER = 16


def check_scheduler(scheduler: object, workers: object) -> tuple[str | Any, int | None]:
    """A valid (scheduler, workers) pair, or ``ValueError`` saying what to pass.

    Parameters
    ----------
    scheduler : str, distributed.Client or None
        ``"threads"``, ``"processes"``, ``"synchronous"``, a dask.distributed scheduler
        address (``"tcp://127.0.0.1:8786"``, anything with ``://``) or a connected
        ``distributed.Client``. None with ``workers`` given means ``"threads"``.
    workers : int or None
        Local workers (threads or processes); default the usable CPU cores. Not for a
        cluster, which has its own.

    Returns
    -------
    (scheduler, workers)
        The scheduler in lower case (an address or client unchanged) and the workers.

    Examples
    --------
    >>> check_scheduler(None, 2)
    ('threads', 2)
    >>> check_scheduler("tcp://127.0.0.1:8786", None)
    ('tcp://127.0.0.1:8786', None)
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1
    ):
        raise ValueError(f"workers=... must be an integer >= 1 (local workers), got {workers!r}.")
    workers = None if workers is None else int(workers)
    if scheduler is None:
        return "threads", workers
    if _is_client(scheduler):
        return scheduler, _no_workers(workers, "a dask.distributed Client")
    if isinstance(scheduler, str) and "://" in scheduler:
        return scheduler, _no_workers(workers, f"the cluster at {scheduler}")
    if isinstance(scheduler, str) and scheduler.lower() in SCHEDULERS:
        return scheduler.lower(), workers
    raise ValueError(
        f"scheduler=... must be one of {', '.join(map(repr, SCHEDULERS))} or the address of a "
        f"dask.distributed scheduler such as 'tcp://127.0.0.1:8786'; got {scheduler!r}."
    )


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: a container may see more in
    ``os.cpu_count``), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def threads_per_worker(scheduler: str | Any, workers: int | None) -> int | None:
    """The CPU cores each local worker has to itself: the cores over the workers, at least 1.

    None for the synchronous scheduler (the one worker is the caller) and for a cluster (its
    workers know their own cores). ``scheduler`` and ``workers`` as :func:`check_scheduler`
    returns them.

    Examples
    --------
    >>> threads_per_worker("processes", 10_000)  # more workers than cores
    1
    >>> threads_per_worker("tcp://127.0.0.1:8786", None) is None
    True
    """
    if not isinstance(scheduler, str) or scheduler not in ("threads", "processes"):
        return None
    cores = usable_cores()
    return max(1, cores // (workers or cores))


def _no_workers(workers: int | None, what: str) -> None:
    if workers is not None:
        raise ValueError(
            f"workers={workers} sets local workers; {what} has its own: scale the cluster "
            "instead, or leave workers=None."
        )
    return None


def _is_client(value: object) -> bool:
    return type(value).__name__ == "Client" and type(value).__module__.startswith("distributed")


def is_lazy(array: object) -> bool:
    """Whether ``array`` is a dask array (read block by block, not held in memory)."""
    return type(array).__module__.startswith("dask.array") and hasattr(array, "to_delayed")


def map_blocks(
    func: Callable[..., Any],
    stack: Any,
    *,
    scheduler: str | Any = "threads",
    workers: int | None = None,
    frames_per_task: int | None = None,
    progress: bool = False,
    desc: str = "frames",
    sink: Callable[[Any], None] | None = None,
    **options: Any,
) -> list[Any]:
    """``func(block, start, **options)`` on every block of frames of a stack, on Dask.

    Parameters
    ----------
    func : callable
        Called with a block (ndarray (k, rows, cols), frames ``start`` to ``start + k - 1``),
        the block's first frame number and ``options``. Must be importable by name (a
        module-level function) for processes and clusters.
    stack : ndarray or dask array (frames, rows, cols)
        A dask array is read block by block where its task runs (see :func:`open_stack`).
    scheduler, workers
        As :func:`check_scheduler` takes them.
    frames_per_task : int, optional
        Frames per task; default 1 for an array in memory, the dask array's chunks otherwise.
    progress : bool
        A progress bar over frames (tqdm).
    desc : str
        The bar's label.
    sink : callable, optional
        Receives every block's result in frame order as soon as it and all before it are done;
        the results are then not kept (the return value is empty). For chunked writing.
    **options
        Passed to ``func`` unchanged (sent once per task to processes and clusters).

    Returns
    -------
    list
        ``func``'s results in block order (empty with ``sink``).
    """
    scheduler, workers = check_scheduler(scheduler, workers)
    if len(np.shape(stack)) != 3:
        raise ValueError(f"stack must be 3-D (frames, rows, cols), got shape {np.shape(stack)}.")
    tasks, sizes = _block_tasks(func, stack, frames_per_task, options)
    # a stack in memory on a local pool needs no windows (nothing is read or handed on
    # early, and each window would end with a worker idle): one window of every block
    whole = sink is None and not is_lazy(stack) and scheduler in SCHEDULERS
    label = (progress, desc, "frame")
    return _compute(tasks, sizes, scheduler, workers, label, sink, whole=whole)


def map_files(
    func: Callable[..., Any],
    paths: Sequence[str | os.PathLike],
    *,
    scheduler: str | Any = "threads",
    workers: int | None = None,
    progress: bool = False,
    desc: str = "files",
    sink: Callable[[Any], None] | None = None,
    **options: Any,
) -> list[Any]:
    """``func(path, **options)`` on every file, in parallel on Dask, results in the paths' order.

    Parameters as :func:`map_blocks`; each file is one task (read it inside ``func``).
    """
    import dask

    scheduler, workers = check_scheduler(scheduler, workers)
    run = uuid.uuid4().hex[:12]  # keys unique to this call (a cluster may serve others)
    tasks = [
        dask.delayed(func, pure=False)(str(path), **options, dask_key_name=f"{desc}-{run}-{i}")
        for i, path in enumerate(paths)
    ]
    return _compute(tasks, [1] * len(tasks), scheduler, workers, (progress, desc, "file"), sink)


def _block_tasks(
    func: Callable[..., Any], stack: Any, frames_per_task: int | None, options: dict[str, Any]
) -> tuple[list[Any], list[int]]:
    """One delayed call of ``func`` per block of frames, and the frames in each."""
    import dask

    if frames_per_task is not None and (
        isinstance(frames_per_task, bool) or not isinstance(frames_per_task, int)
        or frames_per_task < 1
    ):  # fmt: skip
        raise ValueError(f"frames_per_task=... must be an integer >= 1, got {frames_per_task!r}.")
    shared = dask.delayed(options, pure=False) if options else None
    call = dask.delayed(_call_with, pure=False)
    if is_lazy(stack):
        stack = stack.rechunk({0: frames_per_task or stack.chunks[0], 1: -1, 2: -1})
        blocks = list(stack.to_delayed(optimize_graph=True).ravel())
        sizes = list(stack.chunks[0])
    else:
        step = frames_per_task or 1
        starts = range(0, stack.shape[0], step)
        blocks = [stack[s : s + step] for s in starts]
        sizes = [len(block) for block in blocks]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    run = uuid.uuid4().hex[:12]  # keys unique to this call (a cluster may serve others)
    tasks = [
        call(func, block, start, shared, dask_key_name=f"{func.__name__}-{run}-{i}")
        for i, (block, start) in enumerate(zip(blocks, starts, strict=True))
    ]
    return tasks, sizes


def _call_with(
    func: Callable[..., Any], block: Any, start: int, options: dict[str, Any] | None
) -> Any:
    return func(np.asarray(block), start, **(options or {}))


def _compute(
    tasks: list[Any],
    sizes: list[int],
    scheduler: str | Any,
    workers: int | None,
    label: tuple[bool, str, str],
    sink: Callable[[Any], None] | None,
    whole: bool = False,
) -> list[Any]:
    """The tasks' results in order, computed a window at a time (all at once with ``whole``);
    ``label``: whether to show a progress bar, its label and unit; ``sizes``: the units of
    each task."""
    from tqdm.auto import tqdm

    progress, desc, unit = label
    results: list[Any] = []
    with _runner(scheduler, workers) as (run, slots):
        window = max(1, len(tasks) if whole else WINDOW_PER_WORKER * slots)
        with tqdm(total=sum(sizes), desc=desc, unit=unit, disable=not progress) as bar:
            for begin in range(0, len(tasks), window):
                part = slice(begin, begin + window)
                done = run(tasks[part], dict(zip(_keys(tasks[part]), sizes[part], strict=True)),
                           bar)  # fmt: skip
                for result in done:
                    if sink is None:
                        results.append(result)
                    else:
                        sink(result)
    return results


def _keys(tasks: list[Any]) -> list[str]:
    return [str(task.key) for task in tasks]


@contextmanager
def _runner(scheduler: str | Any, workers: int | None) -> Iterator[tuple[Callable, int]]:
    """A function computing a list of delayed tasks (updating a progress bar), and the slots."""
    if isinstance(scheduler, str) and scheduler in SCHEDULERS:
        with _local_pool(scheduler, workers) as (pool, slots):
            yield _local_run(scheduler, pool, slots), slots
        return
    from distributed import Client

    client = scheduler if _is_client(scheduler) else None
    with Client(scheduler, set_as_default=False) if client is None else _kept(client) as client:
        slots = max(1, sum(client.nthreads().values()))
        yield _cluster_run(client), slots


@contextmanager
def _kept(client: Any) -> Iterator[Any]:
    yield client  # the caller's client stays open


@contextmanager
def _local_pool(scheduler: str, workers: int | None) -> Iterator[tuple[Any, int]]:
    """One thread or process pool for all windows (dask would start one per compute call)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    if scheduler == "synchronous":
        yield None, 1
        return
    slots = workers or usable_cores()
    if scheduler == "threads":
        pool = ThreadPoolExecutor(slots)
    else:  # spawn: no fork of a process holding threads (torch, BLAS)
        pool = ProcessPoolExecutor(slots, mp_context=multiprocessing.get_context("spawn"))
    with pool:
        yield pool, slots


def _local_run(scheduler: str, pool: Any, slots: int) -> Callable:
    import dask
    from dask.callbacks import Callback

    class _Bar(Callback):
        def __init__(self, bar: Any, sizes: dict[str, int]):
            super().__init__()
            self.bar, self.sizes = bar, sizes

        def _posttask(self, key, result, dsk, state, id) -> None:
            self.bar.update(self.sizes.get(str(key), 0))

    def run(tasks: list[Any], sizes: dict[str, int], bar: Any) -> list[Any]:
        # one task per hand-out: dask's process scheduler otherwise hands tasks out in chunks
        # of 6, so with 2 workers and a window of 8 frames one worker ran 6 while the other
        # idled after 2 (20 frames of 512 x 512 px: 31 s instead of 19 s)
        extra = {} if pool is None else {"pool": pool, "num_workers": slots, "chunksize": 1}
        with _Bar(bar, sizes):
            return list(dask.compute(*tasks, scheduler=scheduler, **extra))

    return run


def _cluster_run(client: Any) -> Callable:
    def run(tasks: list[Any], sizes: dict[str, int], bar: Any) -> list[Any]:
        futures = client.compute(tasks)
        results = []
        for future, frames in zip(futures, sizes.values(), strict=True):  # in order
            results.append(future.result())
            bar.update(frames)
        return results

    return run


def frame_blocks(stack: Any) -> Iterator[np.ndarray]:
    """A stack's frames in order, a block at a time: 64 frames of an array, or one chunk of a
    dask array, computed in the calling thread."""
    if not is_lazy(stack):
        yield from (stack[i : i + 64] for i in range(0, len(stack), 64))
        return
    start = 0
    for size in stack.chunks[0]:
        yield np.asarray(stack[start : start + size].compute(scheduler="synchronous"))
        start += size


def open_stack(path: str | os.PathLike, frames_per_chunk: int = 1) -> tuple[Any, float | None]:
    """A stack file as a dask array read frame by frame, and its pixel size [Å/px] or None.

    .npy files are memory-mapped and TIFF files read page by page where their task runs, so a
    stack larger than memory can be mapped over; other formats are read whole by
    :func:`atomlens.io.read` first.

    Parameters
    ----------
    path : str or PathLike
        The stack (frames, rows, cols).
    frames_per_chunk : int
        Frames per dask chunk (one task of :func:`map_blocks`).

    Returns
    -------
    (dask array, float or None)
    """
    import dask.array as da

    path = Path(path)
    pixel_size, shape, dtype = _declared(path)
    suffix = path.suffix.lower()
    if len(shape) == 3 and suffix in (".npy", ".tif", ".tiff") and _by_frame(path, shape, dtype):
        import dask

        read = dask.delayed(_read_frames, pure=True)
        parts = [
            da.from_delayed(read(str(path), s, min(s + frames_per_chunk, shape[0])),
                            (min(frames_per_chunk, shape[0] - s), *shape[1:]), dtype=dtype)
            for s in range(0, shape[0], frames_per_chunk)
        ]  # fmt: skip
        return da.concatenate(parts, axis=0), pixel_size
    from atomlens.io import read

    data = np.asarray(read(path).data)
    chunks = (frames_per_chunk, *data.shape[1:]) if data.ndim == 3 else data.shape
    return da.from_array(data, chunks=chunks), pixel_size


def _declared(path: Path) -> tuple[float | None, tuple[int, ...], np.dtype]:
    """The pixel size, shape and dtype a file declares, its data not read."""
    from atomlens.io._lazy import placeholder
    from atomlens.io._read import _open, _to_imagedata

    file = _open(path, None)
    signal = file.signals[file.chosen]
    shape, dtype = tuple(signal["data"].shape), np.dtype(signal["data"].dtype)
    signal["data"] = placeholder(shape, dtype)
    image = _to_imagedata(file, loaded=False)
    pixel = None if image.pixel_size is None else float(sum(image.pixel_size) / 2)
    if image.kind == "diffraction":
        raise ValueError(f"{path} holds a diffraction pattern, not an image of columns.")
    return pixel, tuple(image.data.shape), dtype


def _by_frame(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> bool:
    """Whether the file's frames can be read one at a time as they are (else read whole)."""
    if dtype.names or not dtype.isnative or dtype.kind not in "uif":
        return False  # colour records, foreign byte order, complex: read() converts or refuses
    if path.suffix.lower() == ".npy":
        return np.load(path, mmap_mode="r", allow_pickle=False).shape == shape
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return tuple(series.shape) == shape and len(series.pages) == shape[0]


def _read_frames(path: str, start: int, stop: int) -> np.ndarray:
    """Frames ``start`` to ``stop - 1`` of a .npy (memory-mapped) or TIFF (by page) stack."""
    if path.lower().endswith(".npy"):
        return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop])
    import tifffile

    frames = np.asarray(tifffile.imread(path, key=range(start, stop)))
    return frames.reshape(stop - start, *frames.shape[-2:])
