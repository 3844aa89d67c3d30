"""The frame-to-frame assignment: the cheapest one-to-one set of links, against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from atomlens.track.link import UNLINKED, assign


def total_cost(chosen, rows, cols, cost, n_rows: int, n_cols: int) -> float:
    """The links' costs plus UNLINKED for every row and column left without one."""
    linked = len(chosen)
    return float(cost[list(chosen)].sum()) + UNLINKED * (n_rows + n_cols - 2 * linked)


def brute_force(rows, cols, cost, n_rows: int, n_cols: int) -> float:
    """The least total cost over every one-to-one subset of the candidate links."""
    best = total_cost((), rows, cols, cost, n_rows, n_cols)
    for size in range(1, len(rows) + 1):
        for subset in itertools.combinations(range(len(rows)), size):
            if len(set(rows[list(subset)])) == size and len(set(cols[list(subset)])) == size:
                best = min(best, total_cost(subset, rows, cols, cost, n_rows, n_cols))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_assign_finds_the_cheapest_one_to_one_links(seed):
    # a few rows and columns, links sharing ends in groups and alone, some dearer than
    # leaving both ends unlinked, a duplicate candidate now and then
    rng = np.random.default_rng(seed)
    n_rows, n_cols = rng.integers(2, 6, size=2)
    links = int(rng.integers(1, 10))
    rows = rng.integers(0, n_rows, links)
    cols = rng.integers(0, n_cols, links)
    cost = rng.uniform(0.0, 3.0 * UNLINKED, links)
    chosen = assign(rows, cols, cost, int(n_rows), int(n_cols))
    assert len(set(rows[chosen])) == len(chosen) == len(set(cols[chosen]))  # one-to-one
    assert total_cost(chosen, rows, cols, cost, n_rows, n_cols) == pytest.approx(
        brute_force(rows, cols, cost, n_rows, n_cols), abs=1e-9
    )


def test_a_link_alone_is_taken_only_below_twice_the_unlinked_cost():
    rows, cols = np.array([0, 1]), np.array([0, 1])
    cost = np.array([2 * UNLINKED - 0.01, 2 * UNLINKED + 0.01])
    assert assign(rows, cols, cost, 2, 2).tolist() == [0]


def test_no_candidates_choose_nothing():
    empty = np.zeros(0, dtype=int)
    assert assign(empty, empty, np.zeros(0), 3, 3).tolist() == []


def test_linking_more_tracks_than_the_first_allocation_keeps_every_identity():
    """Thousands of tracks (the state arrays grow past their first size), half of them born in
    the last frame: each column keeps one particle, each newcomer gets a new one."""
    from atomlens.track.link import link

    grid = np.stack(np.mgrid[0:600:10, 0:400:10], -1).reshape(-1, 2).astype(float)  # 2400
    newcomers = grid[::2] + 5.0
    frames = [grid, grid + 0.3, np.vstack([grid + 0.6, newcomers])]
    frame = np.concatenate([np.full(len(p), t) for t, p in enumerate(frames)])
    result = link(frame, np.vstack(frames), search_range=2.0, fast_range=4.0, memory=2)
    n = len(grid)
    assert np.array_equal(result.particle[:n], np.arange(n))
    assert np.array_equal(result.particle[n : 2 * n], np.arange(n))
    assert np.array_equal(result.particle[2 * n : 3 * n], np.arange(n))
    assert np.array_equal(result.particle[3 * n :], n + np.arange(len(newcomers)))
    assert np.all(result.kind[n : 3 * n] == "lattice")
