"""Global one-to-one linking of drift-corrected detections, frame by frame.

Each frame ``t`` is linked to the tracks in two stages, each a linear assignment problem solved
exactly (sparse LAPJV, :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`) on
every connected group of candidate links, with a cost for leaving a track or a detection
unlinked (the augmented matrix of Jaqaman et al., Nat. Methods 5, 695 (2008)):

1. **lattice links**: tracks seen in frame ``t - 1`` that are not mobile (below) to detections
   of ``t`` within the search range ``r``, cost (d / r)^2 (trackpy's sum of squared
   displacements);
2. **the motion stage**, for what stage 1 left unlinked:

   - *gap closing*: a track last seen in ``t - k``, 2 <= k <= ``memory`` + 1, to a detection
     within ``r`` of its last position, cost (d / r)^2 + 0.1 (k - 1), so an atom missed for a
     few frames keeps its identity;
   - *hops*: a track seen in ``t - 1`` to a detection within ``fast_range`` (a neighbouring
     lattice site), cost :data:`HOP_COST` + (d / fast_range)^2, the dearest link, taken only
     where nothing closer explains the detection (and within 0.71 ``fast_range``);
   - *fast movers*: a mobile track (its last two links were both long: hops or fast steps; a
     single hop on the lattice does not make an atom mobile) seen in ``t - k``, k <=
     ``memory`` + 1, to a detection within ``fast_range`` of either its last position or its
     constant-velocity prediction (last position plus k times its last velocity), cost
     (d / fast_range)^2 + 0.1 (k - 1). A fast adatom's first two steps are linked as hops.

   Leaving a track or a detection unlinked costs 1 each, so every admissible link beats leaving
   both ends unlinked (a hop only within 0.71 ``fast_range``), and the assignment decides
   between competing links by total cost.

3. **brightness**: when the detections' integrated intensities are given, a link between
   intensities more than ``free_ratio`` times apart also costs :data:`BRIGHTNESS_WEIGHT` x
   (|ln(I_detection / I_track)| - ln free_ratio)^2, at most :data:`BRIGHTNESS_CAP` (I_track: the
   track's last detection). ``free_ratio`` is the scatter of one column's intensity from frame to
   frame, measured on the series itself (:func:`intensity_scatter`), at least 2. A heavy adatom
   passing a light lattice column (W over graphene: ten times brighter) then keeps its own
   detection instead of swapping identities with the column, while the scatter of faint
   columns' fitted intensities at low dose costs nothing.

A detection left unlinked starts a track (a birth); a track not continued within ``memory`` + 1
frames has ended (a death). Each link gets a quality in [0, 1]: 1 - d / gate for a lattice
link, divided by the gap k for a closed gap, and halved for hops and fast movers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

__all__ = ["LinkResult", "assign", "link"]

#: Cost of leaving a track or a detection unlinked (per end).
UNLINKED = 1.0
#: Extra cost per frame of a closed gap.
GAP_COST = 0.1
#: Extra cost of a hop (a long link of a track that was not moving). At 1.5 a hop is taken only
#: within 0.71 ``fast_range`` (the link's total, 1.5 + (d / fast_range)^2, must stay under the
#: 2 of leaving both ends unlinked): a column missed for one frame is then less often linked
#: to a neighbour found for the first time. Tuned on other seeds than the reported ones
#: (docs/track.md): against 1.0, IDF1 on located columns 0.706 -> 0.720, on true ones
#: 0.973 -> 0.975, MOTA unchanged; move precision and recall up by under 0.01.
HOP_COST = 1.5
#: A track whose last this many links were all long (hops or fast) is mobile.
MOBILE_STREAK = 2
_FORBIDDEN = 1e9
#: The least intensity ratio a link may have at no cost; the weight of the squared log ratio
#: beyond the free ratio, and the largest brightness cost.
BRIGHTNESS_FREE = 2.0
BRIGHTNESS_WEIGHT = 1.0
BRIGHTNESS_CAP = 2.0


def assign(
    rows: np.ndarray,
    cols: np.ndarray,
    cost: np.ndarray,
    n_rows: int,
    n_cols: int,
) -> np.ndarray:
    """The cheapest one-to-one subset of candidate links; each end may stay unlinked.

    Parameters
    ----------
    rows, cols : ndarray of int
        The candidate links (row ``rows[e]`` to column ``cols[e]``).
    cost : ndarray of float
        The cost of each candidate link; leaving a row or a column unlinked costs
        :data:`UNLINKED`.
    n_rows, n_cols : int

    Returns
    -------
    ndarray of int
        Indices into the candidate links that were chosen.
    """
    if not len(rows):
        return np.zeros(0, dtype=np.int64)
    # a link that shares neither end with another is taken when it beats leaving both ends
    # unlinked; all the others are solved as one assignment problem (its connected groups are
    # independent, so its optimum is theirs: one sparse solve per frame pair took 6.3 s of
    # tracking 100 frames of 3700 columns, one per group 8.7 s, same tracks)
    alone = (np.bincount(rows, minlength=n_rows)[rows] == 1) & (
        np.bincount(cols, minlength=n_cols)[cols] == 1
    )
    chosen = [np.flatnonzero(alone & (cost < 2 * UNLINKED))]
    shared = np.flatnonzero(~alone)
    if len(shared):
        chosen.append(shared[_solve_shared(rows[shared], cols[shared], cost[shared])])
    return np.sort(np.concatenate(chosen))


def _solve_shared(rows: np.ndarray, cols: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The chosen links among links that share ends: the augmented assignment problem, sparse.

    The augmented matrix of Jaqaman et al. (a row or a column may stay unlinked at
    :data:`UNLINKED`), with its lower-right block holding only the transposed candidate links
    (enough for every real assignment to complete), solved by scipy's sparse LAPJV
    (``min_weight_full_bipartite_matching``): a dense Hungarian on the full (a + b)^2 matrix
    took most of a 100-frame run when flickering detections join hundreds of tracks into one
    group. Every edge weighs 1 more than its cost (a full matching has a + b edges, so the
    optimum is the same, and no weight is 0, which a sparse matrix would drop).
    """
    row_ids, r = np.unique(rows, return_inverse=True)
    col_ids, c = np.unique(cols, return_inverse=True)
    a, b = len(row_ids), len(col_ids)
    # one candidate per (row, column): the cheapest (a sparse matrix would add duplicates)
    order = np.lexsort((cost, c, r))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (np.diff(r[order]) != 0) | (np.diff(c[order]) != 0)
    links = order[first]
    lr, lc = r[links], c[links]
    i = np.concatenate([lr, np.arange(a), a + np.arange(b), a + lc])
    j = np.concatenate([lc, b + np.arange(a), np.arange(b), b + lr])
    weight = np.concatenate([cost[links], np.full(a + b, UNLINKED), np.zeros(len(links))]) + 1.0
    graph = csr_matrix((weight, (i, j)), shape=(a + b, b + a))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    matched = np.full(a + b, -1)
    matched[row_ind] = col_ind
    return np.sort(links[matched[lr] == lc])


@dataclass
class LinkResult:
    """Per detection: its track, the quality of the link into it, and of the link out of it."""

    particle: np.ndarray
    quality_in: np.ndarray
    quality_out: np.ndarray
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))


class _Tracks:
    """The state of every track while the frames are linked, as arrays grown by doubling (one
    Python step per link and lists turned into arrays every frame took a third of linking 100
    frames of 3700 columns)."""

    def __init__(self) -> None:
        self.count = 0
        self._last = np.zeros(1024, dtype=np.int64)  # detection index of its last detection
        self._previous = np.zeros(1024, dtype=np.int64)  # the one before (-1 if none)
        self._streak = np.zeros(1024, dtype=np.int64)  # consecutive long links, to the last

    @property
    def last(self) -> np.ndarray:
        return self._last[: self.count]

    @property
    def previous(self) -> np.ndarray:
        return self._previous[: self.count]

    def mobile(self) -> np.ndarray:
        """Per track, whether its last :data:`MOBILE_STREAK` links were all long."""
        return self._streak[: self.count] >= MOBILE_STREAK

    def start(self, detections: np.ndarray) -> np.ndarray:
        """New tracks, one per detection; their ids."""
        needed = self.count + len(detections)
        if needed > len(self._last):
            size = max(needed, 2 * len(self._last))
            for name in ("_last", "_previous", "_streak"):
                grown = np.zeros(size, dtype=np.int64)
                grown[: self.count] = getattr(self, name)[: self.count]
                setattr(self, name, grown)
        ids = np.arange(self.count, needed)
        self._last[ids], self._previous[ids], self._streak[ids] = detections, -1, 0
        self.count = needed
        return ids

    def extend(self, track_ids: np.ndarray, detections: np.ndarray, long: np.ndarray) -> None:
        """Continue the tracks (each once) to the detections; ``long`` marks hops and fast
        steps."""
        self._previous[track_ids] = self._last[track_ids]
        self._last[track_ids] = detections
        self._streak[track_ids] = np.where(long, self._streak[track_ids] + 1, 0)


def link(
    frame: np.ndarray,
    position: np.ndarray,
    search_range: float,
    fast_range: float,
    memory: int,
    intensity: np.ndarray | None = None,
    free_ratio: float = BRIGHTNESS_FREE,
) -> LinkResult:
    """Link drift-corrected detections into tracks (module docstring).

    Parameters
    ----------
    frame : ndarray of int, shape (n,)
        Frame number of each detection, sorted increasing.
    position : ndarray, shape (n, 2)
        Drift-corrected (y, x) [px].
    search_range : float
        The lattice search range ``r`` [px].
    fast_range : float
        The reach of hops and fast movers per frame [px].
    memory : int
        The longest gap closed [frames missing].
    intensity : ndarray, shape (n,), optional
        Integrated intensity of each detection (any positive unit); adds the brightness cost.
    free_ratio : float
        The intensity ratio a link may have at no cost (:func:`intensity_scatter`).

    Returns
    -------
    LinkResult
        ``particle`` numbered from 0 in order of first appearance.
    """
    n = len(frame)
    particle = np.full(n, -1, dtype=np.int64)
    quality_in = np.full(n, np.nan)
    quality_out = np.full(n, np.nan)
    kind = np.full(n, "birth", dtype=object)
    tracks = _Tracks()
    numbers, starts = np.unique(frame, return_index=True)
    stops = np.append(starts[1:], n)
    for t, start, stop in zip(numbers, starts, stops, strict=True):
        here = np.arange(start, stop)
        free = np.ones(len(here), dtype=bool)
        brightness = _Brightness(intensity, tracks, max(free_ratio, BRIGHTNESS_FREE))
        links = [_lattice_links(tracks, frame, position, here, t, search_range, brightness)]
        taken = links[0][0]  # the tracks stage 1 continued
        free[links[0][1]] = False
        reach = _Reach(search_range, fast_range, memory)
        links.append(
            _motion_links(tracks, frame, position, here, free, taken, t, reach, brightness)
        )
        # the two stages continue different tracks to different detections
        for track_ids, local, quality, kinds in links:
            detections = here[local]
            particle[detections] = track_ids
            quality_in[detections] = quality
            quality_out[tracks.last[track_ids]] = quality
            kind[detections] = kinds
            tracks.extend(track_ids, detections, (kinds == "hop") | (kinds == "fast"))
        born = here[particle[here] < 0]
        particle[born] = tracks.start(born)
    return LinkResult(particle, quality_in, quality_out, kind)


@dataclass(frozen=True)
class _Brightness:
    """The brightness cost of links from tracks to detections (module docstring, 3.)."""

    intensity: np.ndarray | None
    tracks: _Tracks
    free: float

    def cost(self, track_ids: np.ndarray, detections: np.ndarray) -> np.ndarray:
        if self.intensity is None or not len(track_ids):
            return np.zeros(len(track_ids))
        last = self.intensity[self.tracks.last[track_ids]]
        ratio = np.log(np.maximum(self.intensity[detections], 1e-12) / np.maximum(last, 1e-12))
        excess = np.maximum(np.abs(ratio) - np.log(self.free), 0.0)
        return np.minimum(BRIGHTNESS_WEIGHT * excess**2, BRIGHTNESS_CAP)


def _lattice_links(tracks, frame, position, here, t, search_range, brightness):
    """Stage 1: the tracks seen in ``t - 1`` that are not mobile, to the detections of ``t``
    within the search range."""
    last_frame = frame[tracks.last]
    active = np.flatnonzero((last_frame == t - 1) & ~tracks.mobile())
    if not len(active) or not len(here):
        return _none()
    last = position[tracks.last[active]]
    pairs = cKDTree(last).sparse_distance_matrix(
        cKDTree(position[here]), search_range, output_type="ndarray"
    )
    rows, cols, distance = pairs["i"], pairs["j"], pairs["v"]
    cost = (distance / search_range) ** 2 + brightness.cost(active[rows], here[cols])
    chosen = assign(rows, cols, cost, len(active), len(here))
    quality = 1.0 - distance[chosen] / search_range
    return active[rows[chosen]], cols[chosen], quality, np.full(len(chosen), "lattice")


def intensity_scatter(
    frame: np.ndarray, position: np.ndarray, intensity: np.ndarray, search_range: float
) -> float:
    """The frame-to-frame scatter of one column's intensity: exp of the 99th percentile of
    |ln(I' / I)| over mutually nearest detections of consecutive frames within a third of the
    search range (nearly all of them the same column seen twice); inf when there are none."""
    numbers, starts = np.unique(frame, return_index=True)
    stops = np.append(starts[1:], len(frame))
    ratios = []
    for k in range(len(numbers) - 1):
        if numbers[k + 1] != numbers[k] + 1:
            continue
        a, b = slice(starts[k], stops[k]), slice(starts[k + 1], stops[k + 1])
        if starts[k] == stops[k] or starts[k + 1] == stops[k + 1]:
            continue
        forward_d, forward = cKDTree(position[b]).query(position[a])
        _, backward = cKDTree(position[a]).query(position[b])
        mutual = (backward[forward] == np.arange(len(forward))) & (forward_d <= search_range / 3)
        first = intensity[a][mutual]
        second = intensity[b][forward[mutual]]
        ratios.append(np.abs(np.log(second / first)))
    if not ratios or not sum(map(len, ratios)):
        return float("inf")
    return float(np.exp(np.percentile(np.concatenate(ratios), 99)))


def _none():
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty, np.zeros(0), np.zeros(0, dtype=object)


@dataclass(frozen=True)
class _Reach:
    """The linking settings: search range and fast range [px], memory [frames]."""

    search_range: float
    fast_range: float
    memory: int


def _motion_links(tracks, frame, position, here, free, taken, t, settings: _Reach, brightness):
    """Stage 2: gaps, hops and fast movers to the detections stage 1 left (module docstring).

    All waiting tracks at once: one batched neighbour query per prediction (the last position,
    and for a mobile track also the one its last velocity gives), the costs as arrays (a
    Python step per candidate link took a third of the linking on long series).
    """
    search_range, fast_range, memory = settings.search_range, settings.fast_range, settings.memory
    targets = np.flatnonzero(free)
    lasts = tracks.last
    since = t - frame[lasts]
    waiting = (since >= 1) & (since <= memory + 1)
    waiting[taken] = False
    candidates = np.flatnonzero(waiting)
    if not len(targets) or not len(candidates):
        return _none()
    last = lasts[candidates]
    gap = t - frame[last]
    mobile = tracks.mobile()[candidates]
    previous = tracks.previous[candidates]
    moving = mobile & (previous >= 0)
    here_now = position[last]
    ahead = here_now.copy()  # where a mobile track's last velocity takes it; else its last place
    before = previous[moving]
    steps = (frame[last[moving]] - frame[before])[:, None]  # frames between the last two
    velocity = (here_now[moving] - position[before]) / steps
    ahead[moving] = here_now[moving] + gap[moving, None] * velocity
    reach = np.where(mobile | (gap == 1), fast_range, search_range)
    tree = cKDTree(position[here[targets]])
    found = [tree.query_ball_point(here_now, reach)]
    if moving.any():
        found.append(tree.query_ball_point(ahead[moving], reach[moving]))
    else:
        found.append([])
    rows = np.concatenate(
        [np.repeat(np.arange(len(candidates)), [len(f) for f in found[0]]),
         np.repeat(np.flatnonzero(moving), [len(f) for f in found[1]])]
    )  # fmt: skip
    cols = np.fromiter(
        (j for part in found for near in part for j in near), dtype=np.int64, count=len(rows)
    )
    if not len(rows):
        return _none()
    pair = np.unique(rows * len(targets) + cols)  # each once, by track, then detection
    rows, cols = pair // len(targets), pair % len(targets)
    target = position[here[targets[cols]]]
    distance = np.minimum(
        np.hypot(*(target - here_now[rows]).T), np.hypot(*(target - ahead[rows]).T)
    )
    keep = distance <= reach[rows]
    rows, cols, distance = rows[keep], cols[keep], distance[keep]
    if not len(rows):
        return _none()
    costs, qualities, kinds = _motion_costs(
        distance, gap[rows], mobile[rows], search_range, fast_range
    )
    costs = costs + brightness.cost(candidates[rows], here[targets[cols]])
    chosen = assign(rows, cols, costs, len(candidates), len(targets))
    return candidates[rows[chosen]], targets[cols[chosen]], qualities[chosen], kinds[chosen]


def _motion_costs(distance, gap, mobile, search_range, fast_range):
    """Cost, quality and kind of stage-2 links (arrays; module docstring): within the search
    range a lattice link (a track missed by stage 1 only through a competitor) or a closed
    gap, else a fast mover's link (mobile tracks) or a hop."""
    near = (distance <= search_range) & ((gap > 1) | ~mobile)
    lattice, gapped = near & (gap == 1), near & (gap > 1)
    fast, hop = ~near & mobile, ~near & ~mobile
    cost, quality = np.empty(len(distance)), np.empty(len(distance))
    kind = np.empty(len(distance), dtype=object)
    d, g = distance / search_range, gap.astype(float)
    cost[lattice], quality[lattice], kind[lattice] = d[lattice] ** 2, 1.0 - d[lattice], "lattice"
    cost[gapped] = d[gapped] ** 2 + GAP_COST * (g[gapped] - 1)
    quality[gapped], kind[gapped] = (1.0 - d[gapped]) / g[gapped], "gap"
    d = distance / fast_range
    cost[fast] = d[fast] ** 2 + GAP_COST * (g[fast] - 1)
    quality[fast], kind[fast] = 0.5 * (1.0 - d[fast]) / g[fast], "fast"
    cost[hop], quality[hop], kind[hop] = HOP_COST + d[hop] ** 2, 0.5 * (1.0 - d[hop]), "hop"
    return cost, quality, kind
