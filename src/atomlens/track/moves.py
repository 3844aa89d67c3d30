"""Moves between lattice sites: hops and vacancy migrations, read from the sites' occupancy.

In every frame the sites that empty and the sites that fill are paired one-to-one at least total
cost (:func:`_pair_frame`); moves are expected in one neighbour shell, learned from the series
(:func:`_shell_costs`); a move is kept when its atom stays on the new site (:func:`_moves`).
The rules are :mod:`atomlens.track.events`'s docstring; this module also holds the event-row
helpers the other kinds share (:func:`_row`, :func:`_holder`, :func:`_streak`, :func:`_assign`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from atomlens.track.sites import Sites

#: Detections (or frames) that make full confidence in a stay.
FULL = 3
#: The cost of leaving an emptied or a filled site unpaired: a move that costs less than twice
#: this (its shell's cost, a tenth of its length as a share of the reach, its penalties) is
#: preferred to two unexplained changes.
UNPAIRED = 1.0
#: Site-pair distances further apart than this are different neighbour shells [spacings].
SHELL_GAP = 0.1
#: The cost of a move in a shell where sites empty and fill together no more often than chance
#: (the shell where they do so most often costs nothing).
SHELL_COST = 3.0


def _row(frame, kind, particle, other, particles, place, start, end, confidence) -> dict:
    nan = (math.nan, math.nan)
    start = nan if start is None else start
    end = nan if end is None else end
    return {
        "frame": int(frame),
        "kind": kind,
        "particle": int(particle),
        "other": int(other),
        "particles": " ".join(str(int(p)) for p in particles),
        "y": float(place[0]),
        "x": float(place[1]),
        "y_from": float(start[0]),
        "x_from": float(start[1]),
        "y_to": float(end[0]),
        "x_to": float(end[1]),
        "confidence": float(np.clip(confidence, 0.0, 1.0)),
    }


def _holder(sites: Sites) -> dict[tuple[int, int], int]:
    """(frame index, site) -> the particle on it."""
    table = sites.table[sites.table["site"] >= 0]
    index = np.searchsorted(sites.frames, table["frame"].to_numpy())
    return dict(zip(zip(index.tolist(), table["site"].tolist(), strict=True),
                    table["particle"].tolist(), strict=True))  # fmt: skip


def _streak(column: np.ndarray, start: int, step: int) -> int:
    """Consecutive True values of ``column`` from ``start`` in direction ``step`` (at most FULL)."""
    count, k = 0, start
    while 0 <= k < len(column) and column[k] and count < FULL:
        count, k = count + 1, k + step
    return count


def _assign(cost: np.ndarray, alone: float = UNPAIRED) -> list[tuple[int, int]]:
    """One-to-one pairs of rows and columns of least total cost, where leaving a row or a
    column unpaired costs ``alone`` (infinite costs are never paired)."""
    n, m = cost.shape
    big = 1e6
    full = np.full((n + m, m + n), big)
    full[:n, :m] = np.where(np.isfinite(cost), cost, big)
    full[:n, m:][np.diag_indices(min(n, n))] = alone
    full[n:, :m][np.diag_indices(m)] = alone
    full[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(full)
    return [(i, j) for i, j in zip(rows, cols, strict=True) if i < n and j < m and full[i, j] < big]


def _changes(sites: Sites, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The sites that empty and the sites that fill between frame indices ``k - 1`` and ``k``
    (both observed in both frames)."""
    occupied, observed = sites.occupied, sites.observed
    both = observed[k] & observed[k - 1]
    emptied = np.flatnonzero(occupied[k - 1] & ~occupied[k] & both)
    filled = np.flatnonzero(~occupied[k - 1] & occupied[k] & both)
    return emptied, filled


def _shells(sites: Sites, reach: float) -> np.ndarray:
    """The neighbour shells of the sites within ``reach``: (n, 3) rows of the shortest and
    longest distance of a shell [px] and the number of site pairs in it."""
    if len(sites.positions) < 2:
        return np.zeros((0, 3))
    pairs = cKDTree(sites.positions).query_pairs(reach, output_type="ndarray")
    gaps = sites.positions[pairs[:, 0]] - sites.positions[pairs[:, 1]]
    distance = np.sort(np.hypot(gaps[:, 0], gaps[:, 1]))
    if not len(distance):
        return np.zeros((0, 3))
    cut = np.flatnonzero(np.diff(distance) > SHELL_GAP * sites.spacing) + 1
    return np.array([(d[0], d[-1], len(d)) for d in np.split(distance, cut)])


def _shell_costs(sites: Sites, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """The extra cost of a move in each neighbour shell: ``(bounds, costs)``, ``bounds`` the
    upper distance of every shell [px].

    Every frame's emptied and filled sites within ``reach`` of each other are counted per shell
    and divided by the shell's number of site pairs. Chance coincidences (a missed detection
    next to a move) spread over the shells by their number of pairs; real moves pile up in the
    shell the atoms hop in (the next site of their own element: 1 spacing in graphene,
    sqrt(3) in hBN and the TMDs). The rates are shrunk towards the mean rate by a prior of one
    site pair per site (a shell of a few pairs, such as the distances of a stray site, keeps
    near the mean rate; a short series with few changes keeps near equal costs). A shell at
    the highest rate costs nothing, one at a share w of it costs ``SHELL_COST`` (1 - w).
    """
    shells = _shells(sites, reach)
    if not len(shells):
        return np.zeros(0), np.zeros(0)
    counts = np.zeros(len(shells))
    for k in range(1, len(sites.frames)):
        emptied, filled = _changes(sites, k)
        if len(emptied) and len(filled):
            gaps = sites.positions[emptied][:, None] - sites.positions[filled][None]
            distance = np.hypot(gaps[..., 0], gaps[..., 1]).ravel()
            which = np.searchsorted(shells[:, 1], distance[distance <= reach] - 1e-9)
            np.add.at(counts, np.minimum(which, len(shells) - 1), 1)
    prior = float(len(sites.positions))
    mean = (counts.sum() + 1.0) / shells[:, 2].sum()
    rate = (counts + mean * prior) / (shells[:, 2] + prior)
    return shells[:, 1], SHELL_COST * (1.0 - rate / rate.max())


def _stay(column: np.ndarray, start: int, moved: set[int]) -> tuple[int, bool]:
    """How long a site stays occupied from frame index ``start`` [frames], and whether its
    atom then moved on.

    ``column`` is the site's occupancy, ``moved`` the frame indices at which a move out of it
    was found. A single empty frame that no move explains, with the site occupied again
    after it, is a missed detection: the stay goes on through it.
    """
    k = start
    while k < len(column):
        if column[k]:
            k += 1
        elif k not in moved and k + 1 < len(column) and column[k + 1]:
            k += 2
        else:
            break
    return k - start, k < len(column) and k in moved


def _pair_frame(
    sites: Sites,
    k: int,
    reach: float,
    shells: tuple,
    pool: list[int],
    explained: set,
    holder: dict,
    shown_empty: np.ndarray | None = None,
) -> list:
    """The moves that end in frame index ``k``: the sites that empty (now, or one frame before
    and still empty: ``pool``) paired one-to-one with the sites that fill within reach.

    A site occupied two frames before, empty one frame before and occupied now fills only when
    a move took its atom away, or when the counts showed it empty (``shown_empty`` (F, S),
    :func:`atomlens.track.evidence.read_counts`); otherwise that frame is a missed detection.

    Returns ``(a, b, lag, mover, arrived, same, back)`` per move, ``lag`` 1 when ``a`` emptied
    a frame before ``k``. ``pool`` is updated to this frame's unpaired emptied sites.
    """
    occupied, observed = sites.occupied, sites.observed
    emptied, filled = _changes(sites, k)
    if k >= 2:  # full, empty, full with no move out: a missed detection, not a fill
        shown = np.zeros(occupied.shape[1], bool) if shown_empty is None else shown_empty[k - 1]
        filled = np.array([b for b in filled if not occupied[k - 2, b] or shown[b]
                           or (k - 1, b) in explained], dtype=int)  # fmt: skip
    old = [a for a in pool if not occupied[k, a] and observed[k, a]]
    sources = np.r_[emptied, old].astype(int)
    late = np.r_[np.zeros(len(emptied)), np.ones(len(old))]
    pool[:] = [int(a) for a in emptied]
    if not (len(sources) and len(filled)):
        return []
    gaps = sites.positions[sources][:, None] - sites.positions[filled][None]
    distance = np.hypot(gaps[..., 0], gaps[..., 1])
    mover = [holder.get((k - 1 - int(t), int(a)), -1) for a, t in zip(sources, late, strict=True)]
    arrived = [holder.get((k, int(b)), -1) for b in filled]
    same = np.equal.outer(mover, arrived) & (np.asarray(mover)[:, None] >= 0)
    back = occupied[min(k + 1, len(occupied) - 1), sources] & (k + 1 < len(occupied))
    # the cost of the pair's shell, the distance only to break ties within a shell
    bounds, extra = shells
    shell = np.minimum(np.searchsorted(bounds, distance - 1e-9), max(len(bounds) - 1, 0))
    cost = extra[shell] if len(bounds) else np.zeros(distance.shape)
    cost = cost + 0.1 * distance / reach + 0.5 * (late + back)[:, None] - 0.3 * same
    cost[distance > reach] = np.inf
    if k == 1:  # the filled site may have been missed in the first frame, the emptied one in
        cost[back] = np.inf  # the second: two missed detections, no move
    pairs = []
    for i, j in _assign(cost):
        a, b, lag = int(sources[i]), int(filled[j]), int(late[i])
        if lag == 0:
            pool.remove(a)
        explained.add((k - lag, a))
        pairs.append((a, b, lag, mover[i], arrived[j], bool(same[i, j]), bool(back[i])))
    return pairs


def _moves(
    sites: Sites, hold: int, max_hop: float, shown_empty: np.ndarray | None = None
) -> tuple[list[dict], set]:
    """Hops and vacancy migrations: a site empties and a site within reach fills (module
    docstring); returns the events and the (frame index, site) of every emptying they explain.
    ``shown_empty``: (F, S) sites the counts showed empty (:func:`_pair_frame`).

    A move is reported when the atom stays on its new site for ``hold`` frames, or until the
    series ends, or until it moves on (its leaving is itself paired with a move): a vacancy
    that migrates on at once leaves its atom on the new site for one frame only.
    """
    occupied, count = sites.occupied, len(sites.frames)
    holder, reach = _holder(sites), max_hop * sites.spacing
    shells = _shell_costs(sites, reach)
    explained: set[tuple[int, int]] = set()
    pool: list[int] = []
    found = []
    for k in range(1, count):
        found += [
            (k, *pair)
            for pair in _pair_frame(sites, k, reach, shells, pool, explained, holder, shown_empty)
        ]
    rows = []
    for k, a, b, lag, mover, arrived, same, back in found:
        held = _streak(occupied[:, a], k - 1 - lag, -1)
        stay, moved_on = _stay(occupied[:, b], k, {f for f, s in explained if s == b})
        if held < 1 or not (stay >= min(hold, count - k) or moved_on):
            continue
        confidence = min(1.0, held / 2) * min(1.0, stay / 2)
        confidence *= (1.0 if same else 0.75) * (0.8 if lag else 1.0)
        confidence *= 0.5 if back and not same else 1.0
        known = occupied[: k - 1 - lag, b].any()
        frame = sites.frames[k]
        end = sites.raw(b, frame)
        rows.append(
            _row(frame, "vacancy_migration" if known else "hop", arrived, -1,
                 sorted({p for p in (mover, arrived) if p >= 0}), end, sites.raw(a, frame), end,
                 confidence)
        )  # fmt: skip
    return rows, explained
