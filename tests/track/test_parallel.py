"""Frame-parallel locate and track on Dask: the serial tables, row for row, on every scheduler."""

import os
import sys
import time

import cloudpickle
import dask.array as da
import numpy as np
import pandas as pd
import pytest

import atomlens
from atomlens.core.parallel import (
    check_scheduler,
    map_blocks,
    open_stack,
    threads_per_worker,
)
from atomlens.core.validation import InputError
from atomlens.data import SeriesSampler
from atomlens.io import write_tiff
from atomlens.locate.register import aligned_mean


@pytest.fixture(scope="module")
def series():
    """6 frames of 96 x 96 px, shot noise, moving atoms."""
    return SeriesSampler(frames=6, size=96, distortions="shot").sample(0, seed=3000000)


@pytest.fixture(scope="module")
def serial(series):
    return atomlens.locate(series.frames, pixel_size=series.pixel_size)


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.attrs == expected.attrs


@pytest.mark.parametrize(("scheduler", "workers"), [("threads", 2), ("processes", 2), (None, 1)])
def test_local_schedulers_give_the_serial_table(series, serial, scheduler, workers):
    got = atomlens.locate(
        series.frames, pixel_size=series.pixel_size, scheduler=scheduler, workers=workers
    )
    assert_same(got, serial)
    assert got["frame"].tolist() == sorted(got["frame"]) and got["frame"].nunique() == 6


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_a_lazy_stack_gives_the_serial_table(tmp_path, series, serial, suffix):
    path = tmp_path / f"series{suffix}"
    if suffix == ".npy":
        np.save(path, series.frames)
    else:
        write_tiff(path, series.frames, pixel_size=series.pixel_size)
    stack, pixel_size = open_stack(path, frames_per_chunk=4)
    assert stack.chunks[0] == (4, 2)  # read four frames at a time, never whole
    assert pixel_size == (None if suffix == ".npy" else pytest.approx(series.pixel_size))
    got = atomlens.locate(stack, pixel_size=series.pixel_size, scheduler="synchronous")
    assert_same(got, serial)


def test_track_on_dask_gives_the_serial_tracks(series):
    expected = atomlens.track(series.frames, pixel_size=series.pixel_size)
    got = atomlens.track(series.frames, pixel_size=series.pixel_size, workers=2)
    assert_same(got, expected)
    # a table of detections has nothing to locate: the options are checked, then ignored
    again = atomlens.track(expected[["frame", "y", "x", "intensity"]], scheduler="threads")
    assert again["particle"].tolist() == expected["particle"].tolist()


def test_a_local_cluster_with_two_workers_gives_the_serial_table(series, serial):
    distributed = pytest.importorskip("distributed")
    # processes=False: two worker threads in this process (starting worker processes costs
    # seconds); the tasks still go through the scheduler and the workers
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            assert len(client.scheduler_info()["workers"]) == 2
            by_address = atomlens.locate(
                series.frames, pixel_size=series.pixel_size, scheduler=cluster.scheduler_address
            )
            by_client = atomlens.locate(
                series.frames, pixel_size=series.pixel_size, scheduler=client
            )
            ran_on = client.run(lambda: True)  # one answer per worker
    assert_same(by_address, serial)
    assert_same(by_client, serial)
    assert len(ran_on) == 2


@pytest.mark.parametrize("scheduler", ["thread", "gpu", "", 3])
def test_an_unknown_scheduler_is_refused_with_the_choices(series, scheduler):
    with pytest.raises(ValueError, match=r"scheduler=\.\.\. must be one of 'threads'.*tcp://"):
        atomlens.locate(series.frames, pixel_size=series.pixel_size, scheduler=scheduler)


@pytest.mark.parametrize("workers", [0, -2, 1.5, True, "2"])
def test_workers_below_one_or_not_an_integer_are_refused(series, workers):
    with pytest.raises(ValueError, match=r"workers=\.\.\. must be an integer >= 1"):
        atomlens.locate(series.frames, pixel_size=series.pixel_size, workers=workers)
    with pytest.raises(ValueError, match="workers"):
        atomlens.track(series.frames, workers=workers)


def test_workers_with_a_cluster_address_are_refused():
    with pytest.raises(ValueError, match="has its own"):
        check_scheduler("tcp://127.0.0.1:8786", 4)
    assert check_scheduler("Processes", 2) == ("processes", 2)


def test_the_streamed_mean_of_a_still_lazy_stack_is_numpys_bit_for_bit():
    # locate's mean frame of a lazy stack (registered on its middle frame: no drift, no shift)
    y, x = np.mgrid[:40, :48]
    lattice = 1e5 + 1e4 * np.cos(np.pi * y / 5) ** 8 * np.cos(np.pi * x / 5) ** 8
    stack = lattice + np.random.default_rng(1).normal(0, 1e2, size=(37, 40, 48))
    lazy = da.from_array(stack, chunks=(8, -1, -1))
    assert np.array_equal(aligned_mean(lazy), stack.mean(axis=0))


def test_a_constant_frame_of_a_lazy_stack_is_named(tmp_path, series):
    frames = series.frames.copy()
    frames[3] = 7.0
    np.save(tmp_path / "bad.npy", frames)
    stack, _ = open_stack(tmp_path / "bad.npy")
    with pytest.raises(InputError, match="frame 3 of the stack is constant"):
        atomlens.locate(stack, pixel_size=0.2, workers=1)


def _slow_first(block: np.ndarray, start: int, delay: float) -> tuple[int, float]:
    time.sleep(delay if start == 0 else 0.0)  # the first block finishes last
    return start, float(block.sum())


def test_results_come_in_frame_order_and_a_sink_gets_them_in_order():
    stack = np.arange(7 * 16 * 16, dtype=float).reshape(7, 16, 16)
    expected = [(i, float(stack[i].sum())) for i in range(7)]
    assert map_blocks(_slow_first, stack, workers=3, delay=0.2) == expected
    received = []
    kept = map_blocks(_slow_first, stack, workers=3, sink=received.append, delay=0.2)
    assert kept == [] and received == expected
    pairs = map_blocks(_slow_first, stack, scheduler="synchronous", frames_per_task=3, delay=0)
    assert [start for start, _ in pairs] == [0, 3, 6]


def _pid_after(block: np.ndarray, start: int, delay: float) -> int:
    time.sleep(delay)
    return os.getpid()


def test_local_workers_get_the_cores_they_have_to_themselves(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # a container's host
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert threads_per_worker("processes", 2) == 4
    assert threads_per_worker("threads", None) == 1  # a worker per core
    assert threads_per_worker("threads", 16) == 1
    assert threads_per_worker("synchronous", None) is None
    assert threads_per_worker("tcp://127.0.0.1:8786", None) is None


def test_two_process_workers_share_the_frames():
    # dask's process scheduler hands tasks out in chunks of 6 by default: of 8
    # frames one worker ran 6 while the other idled after 2 (31 s instead of 19 s for 20 frames)
    stack = np.zeros((8, 4, 4))
    # pytest imports this module by path (importlib mode), so a worker process cannot import it:
    # send its functions by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        pids = map_blocks(_pid_after, stack, scheduler="processes", workers=2, delay=0.5)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert max(pids.count(pid) for pid in set(pids)) <= 5
