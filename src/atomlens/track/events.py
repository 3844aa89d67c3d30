"""Behaviour recognition: hops, vacancies, adatoms arriving and leaving, adatom clusters.

Everything is read against the lattice sites found in the tracks themselves
(:mod:`atomlens.track.sites`: the medians of still stretches of trajectories, drift removed).
Each detection belongs to a site or is off-lattice; a site is occupied in a frame when one of
the frame's detections belongs to it. The events, with ``hold`` = 2 by default:

- **hop**: in a frame a site A empties and a site B within ``max_hop`` column spacings fills
  (empty in the frame before), and the frame's emptied and filled sites, paired one-to-one at
  least total cost, pair A with B: an atom moved from A to B. Moves are expected in one
  neighbour shell, the next site of the atom's own sublattice (1 spacing in graphene, sqrt(3)
  in hBN and the TMDs); the shell is learned from the series (the shell in which sites empty
  and fill together more often than chance, :func:`_shell_costs`), and a pair in another shell
  costs more, so a missed detection next to the new site does not take the move. The atom
  must stay on B for ``hold`` frames, or until the series ends, or until it moves on by a
  move found in its turn (a vacancy that migrates on at once leaves its atom on B for one
  frame); one frame without it on B that no move explains is a missed detection.
- **vacancy_migration**: such a move into a site that had been occupied before and emptied (a
  vacancy that was seen): the vacancy moves from B to A. A move into a site never seen
  occupied (a vacancy from the start) is a hop. In projection the two are the same motion (an
  atom into an empty neighbouring site); the label says whether the vacancy was known.
- **vacancy_creation**: a site occupied for at least ``hold`` frames that becomes empty and
  stays empty for at least ``hold`` + 1 frames, and not because its atom moved to another site
  (that moves a vacancy, it does not make one).
- **adatom_arrive** / **adatom_leave**: the first / last detection of an adatom piece of a
  trajectory (trajectories are cut where a stay of ``min_frames`` detections on one site
  starts or ends; a piece is an adatom's when most of its detections belong to no site), other
  than in the first / last frame; a leave and an arrival in the same frame within reach of
  each other are one adatom whose trajectory broke, and neither is reported.
- **cluster_form** / **cluster_merge**: two off-lattice atoms that were in different groups in
  the previous frame come within a bond length (``bond`` column spacings) of each other;
  "form" when both were alone, "merge" when one of them was already in a group.

Moves are found in :mod:`atomlens.track.moves`. The frame of an event is the first frame that
shows its result (the first frame at the new
site, the first frame without the atom); places are pixel positions in that frame's
coordinates (drift included, as the tracks' ``y``, ``x``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from atomlens.core.validation import ParameterError
from atomlens.track.evidence import read_counts
from atomlens.track.moves import FULL, _moves, _row
from atomlens.track.sites import MIN_FRAMES, RADIUS, SPREAD, Sites, lattice_sites

__all__ = ["EVENT_COLUMNS", "EVENT_KINDS", "events"]

#: The kinds of event, in the order of the module docstring.
EVENT_KINDS = (
    "hop",
    "vacancy_migration",
    "vacancy_creation",
    "adatom_arrive",
    "adatom_leave",
    "cluster_form",
    "cluster_merge",
)
#: The columns of the events table.
EVENT_COLUMNS = ("frame", "kind", "particle", "other", "particles", "y", "x", "y_from",
                 "x_from", "y_to", "x_to", "y_A", "x_A", "confidence")  # fmt: skip


def _check_number(name: str, value: object, low: float, high: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f"{name}=... must be a number [{unit}], got {value!r}.")
    if not low <= value <= high:
        raise ParameterError(f"{name}=... must lie in [{low}, {high}] {unit}, got {value}.")
    return float(value)


def _runs(values: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the runs of equal consecutive values."""
    if not len(values):
        return []
    return np.split(np.arange(len(values)), np.flatnonzero(np.diff(values) != 0) + 1)


def _creations(sites: Sites, hold: int, moved: set[tuple[int, int]]) -> list[dict]:
    """Sites that lose their atom and stay empty."""
    occupied, observed = sites.occupied, sites.observed
    full = occupied & observed
    empty = ~occupied & observed
    start = np.zeros_like(full)
    start[1:] = empty[1:] & full[:-1]
    last_seen = sites.table[sites.table["site"] >= 0].set_index(["frame", "site"])["particle"]
    last_seen = last_seen[~last_seen.index.duplicated()]
    rows = []
    for k, s in zip(*np.nonzero(start), strict=True):
        if (k, s) in moved:
            continue
        stay = np.argmin(np.r_[empty[k:, s], False])
        held = np.argmin(np.r_[full[k - 1 :: -1, s], False])
        if stay < hold + 1 or held < hold:
            continue
        frame = sites.frames[k]
        particle = int(last_seen.get((sites.frames[k - 1], s), -1))
        confidence = min(1.0, held / FULL) * min(1.0, stay / (2 * FULL))
        place = sites.raw(s, frame)
        rows.append(
            _row(
                frame, "vacancy_creation", particle, -1, [particle], place, place, None, confidence
            )
        )
    return rows


def _lattice_stays(table: pd.DataFrame, min_frames: int) -> np.ndarray:
    """Whether each row of ``table`` (sorted by particle and frame) is part of a stay: at
    least ``min_frames`` successive detections of a track on one site."""
    particle, site = table["particle"].to_numpy(), table["site"].to_numpy()
    new_run = np.r_[True, (particle[1:] != particle[:-1]) | (site[1:] != site[:-1])]
    run = np.cumsum(new_run) - 1
    return (site >= 0) & (np.bincount(run)[run] >= min_frames)


def _free_pieces(sites: Sites, min_frames: int) -> list[np.ndarray]:
    """The rows of ``sites.table`` (sorted by particle and frame) of every adatom piece of a
    track.

    A track is cut where a stay on a site (:func:`_lattice_stays`: a lattice atom) starts or
    ends; every piece between the stays is an adatom piece when most of its detections are
    off-lattice: its first detection is the adatom's arrival, the frame after its last its
    departure. A lattice atom missed for a frame whose track the linker continued on an
    adatom appearing nearby gives a stay followed by the adatom's piece (as a whole track it
    was mostly on the lattice, and the adatom's arrival was lost). An adatom that pauses on a
    site (or on a column) for ``min_frames`` frames and moves on is cut there too: it reads as
    a departure and a later arrival.
    """
    table = sites.table
    particle, site = table["particle"].to_numpy(), table["site"].to_numpy()
    still = _lattice_stays(table, min_frames)
    cut = np.r_[True, (particle[1:] != particle[:-1]) | (still[1:] != still[:-1])]
    pieces = np.split(np.arange(len(table)), np.flatnonzero(cut)[1:])
    return [rows for rows in pieces if not still[rows[0]] and (site[rows] < 0).mean() >= 0.5]


def _adatoms(sites: Sites, reach: float, max_gap: int, min_frames: int) -> list[dict]:
    """Starts and ends of adatom pieces of tracks; pairs that are one broken track dropped."""
    table = sites.table
    first_frame, last_frame = sites.frames[0], sites.frames[-1]
    raw = table[["y_raw", "x_raw"]].to_numpy()
    low, high = raw.min(axis=0), raw.max(axis=0)
    arrive, leave = [], []
    for rows in _free_pieces(sites, min_frames):
        particle = int(table["particle"].iloc[rows[0]])
        frames = table["frame"].to_numpy()[rows]
        count = min(1.0, len(rows) / FULL)
        if frames[0] > first_frame:
            arrive.append((frames[0], particle, raw[rows[0]], count))
        if frames[-1] < last_frame:
            after = sites.frames[np.searchsorted(sites.frames, frames[-1]) + 1]
            leave.append((after, particle, raw[rows[-1]], count))
    paired_a, paired_l = _broken_tracks(arrive, leave, reach, max_gap)
    rows = []
    for kind, found, paired in (("adatom_arrive", arrive, paired_a),
                                ("adatom_leave", leave, paired_l)):  # fmt: skip
        for i, (frame, particle, place, count) in enumerate(found):
            if i in paired:
                continue
            edge = min(float((place - low).min()), float((high - place).min()))
            confidence = count * float(np.clip(edge / (2 * sites.spacing), 0.0, 1.0))
            ends = (None, place) if kind == "adatom_arrive" else (place, None)
            rows.append(_row(frame, kind, particle, -1, [particle], place, *ends, confidence))
    return rows


def _broken_tracks(
    arrive: list[tuple], leave: list[tuple], reach: float, max_gap: int
) -> tuple[set[int], set[int]]:
    """Arrivals and departures that are one adatom whose track broke: in arrival order, each
    arrival takes the nearest unpaired departure within ``reach`` [px] that happened 0 to
    ``max_gap`` - 1 frames before it (the first such departure on a tie).

    The departures near an arrival come from a k-d tree: a loop over all pairs took seconds
    on a long series with a thousand of each.
    """
    paired_a: set[int] = set()
    paired_l: set[int] = set()
    if not arrive or not leave:
        return paired_a, paired_l
    tree = cKDTree(np.array([place for _, _, place, _ in leave]))
    for i, (fa, _, pa, _) in enumerate(arrive):
        best = None
        for j in sorted(tree.query_ball_point(pa, reach * (1 + 1e-9) + 1e-12)):
            fl, _, pl, _ = leave[j]
            if j in paired_l or not 0 <= fa - fl < max_gap:
                continue
            d = float(np.hypot(*(pa - pl)))
            if d <= reach and (best is None or d < best[0]):
                best = (d, j)
        if best is not None:
            paired_a.add(i)
            paired_l.add(best[1])
    return paired_a, paired_l


def _groups(points: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Connected groups of points within ``cutoff`` (labels) and the close pairs."""
    if len(points) < 2:
        return np.arange(len(points)), np.zeros((0, 2), dtype=int)
    pairs = cKDTree(points).query_pairs(cutoff, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), (len(points),) * 2)
    return connected_components(graph, directed=False)[1], pairs


def _clusters(sites: Sites, bond: float) -> list[dict]:
    """Off-lattice atoms coming within a bond length of each other."""
    cutoff = bond * sites.spacing
    off = sites.table[sites.table["site"] < 0]
    previous: dict[int, int] = {}
    sizes: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    rows = []
    for frame in sites.frames:
        now = off[off["frame"] == frame]
        ids = now["particle"].to_numpy()
        label, pairs = _groups(now[["y", "x"]].to_numpy(), cutoff)
        raw = now[["y_raw", "x_raw"]].to_numpy()
        seen = set()
        for i, j in pairs:
            p, q = ids[i], ids[j]
            if p not in previous or q not in previous or previous[p] == previous[q]:
                continue
            key = frozenset((previous[p], previous[q]))
            if key in seen:
                continue
            seen.add(key)
            alone = sizes[previous[p]] == 1 and sizes[previous[q]] == 1
            together = sorted(set(members[previous[p]]) | set(members[previous[q]]))
            gap = float(np.hypot(*(raw[i] - raw[j])))
            rows.append(
                _row(
                    frame,
                    "cluster_form" if alone else "cluster_merge",
                    p,
                    q,
                    together,
                    (raw[i] + raw[j]) / 2,
                    raw[i],
                    raw[j],
                    1.0 - 0.5 * gap / cutoff,
                )
            )
        previous = {int(p): int(g) for p, g in zip(ids, label, strict=True)}
        sizes = dict(zip(*np.unique(label, return_counts=True), strict=True))
        members = {}
        for p, g in previous.items():
            members.setdefault(g, []).append(p)
    return rows


def events(
    tracks: pd.DataFrame,
    *,
    hold: int = 2,
    max_hop: float = 2.0,
    bond: float = 1.25,
    min_frames: int = MIN_FRAMES,
    spread: float = SPREAD,
    radius: float = RADIUS,
    min_confidence: float = 0.0,
    frames: np.ndarray | None = None,
) -> pd.DataFrame:
    """Recognise hops, vacancy creation and migration, adatoms and clusters in tracks.

    Parameters
    ----------
    tracks : DataFrame
        The table of :func:`atomlens.track.track` (``frame``, ``particle``, ``y``, ``x`` [px];
        ``attrs`` with the drift, the spacing and the pixel size).
    hold : int
        Frames an atom must stay on its new site for a move (unless it moves on by another
        move); frames a site must hold its atom before it empties (and stay empty one frame
        longer) for a vacancy creation.
    max_hop : float
        Longest hop [column spacings].
    bond : float
        Distance within which off-lattice atoms are bonded [column spacings].
    min_frames, spread, radius
        How lattice sites are found and detections assigned to them
        (:func:`atomlens.track.sites.lattice_sites`).
    min_confidence : float
        Events with a lower confidence are left out.
    frames : ndarray (frames, rows, cols), optional
        The stack the tracks were located in. A site that no detection of a frame holds but
        where that frame's counts show a column (a missed detection, not an empty site;
        :func:`atomlens.track.evidence.read_counts`) then counts as occupied, so that
        a column missed for a frame reads as no move and no vacancy (tracks that
        :func:`~atomlens.track.track` filled from the counts are tested again: their sites
        are read anew); and a site empty for one frame between two occupied ones, which
        without the counts is taken for a missed detection, fills anew (a move into it can be
        found) where the counts show it empty.

    Returns
    -------
    DataFrame
        One row per event, sorted by frame: ``frame``, ``kind`` (:data:`EVENT_KINDS`),
        ``particle`` (the atom that moved, arrived, left, or last sat on a site that emptied;
        -1 when unknown), ``other`` (the partner of a cluster event, else -1), ``particles``
        (the ids of every atom involved, space-separated), ``y``, ``x`` (the place [px]: the new
        site of a move, the emptied site, the adatom, the middle of a new bond), ``y_from``,
        ``x_from``, ``y_to``, ``x_to`` [px] (a move's old and new site, an adatom's last or
        first position, the two atoms of a new bond; NaN where there is none), ``y_A``, ``x_A``
        [Å] (NaN without a pixel size), ``confidence`` in [0, 1]. ``attrs``: ``sites`` (the
        lattice sites found), ``spacing_px``, ``hold``, ``max_hop``, ``bond``.

    Raises
    ------
    InputError
        Not a tracks table (no particle column, a particle twice in a frame, non-finite
        positions, one frame); ``frames`` not a finite stack that holds every frame of the
        tracks.
    ParameterError
        ``hold`` not a whole number >= 1; ``max_hop``, ``bond``, ``spread``, ``radius`` or
        ``min_confidence`` out of range.

    Examples
    --------
    >>> grid = np.stack(np.mgrid[0:60:10, 0:60:10], -1).reshape(-1, 2).astype(float)
    >>> rows = [(t, i, *grid[i]) for t in range(8) for i in range(36) if i not in (14, 15)]
    >>> rows += [(t, 14, *grid[14 if t < 4 else 15]) for t in range(8)]  # 15: a vacancy
    >>> found = events(pd.DataFrame(rows, columns=["frame", "particle", "y", "x"]))
    >>> found[["frame", "kind", "particle", "y_from", "x_from", "y_to", "x_to"]].values.tolist()
    [[4, 'hop', 14, 20.0, 20.0, 20.0, 30.0]]
    """
    if isinstance(hold, bool) or not isinstance(hold, int | np.integer) or hold < 1:
        raise ParameterError(f"hold=... must be a whole number of frames >= 1, got {hold!r}.")
    max_hop = _check_number("max_hop", max_hop, 1.0, 5.0, "column spacings")
    bond = _check_number("bond", bond, 0.5, 3.0, "column spacings")
    min_confidence = _check_number("min_confidence", min_confidence, 0.0, 1.0, "")
    sites = lattice_sites(tracks, min_frames=min_frames, spread=spread, radius=radius)
    shown_empty = None
    if frames is not None:
        missed, shown_empty = read_counts(sites, frames, tracks)
        sites = dataclasses.replace(sites, occupied=sites.occupied | missed)
    memory = tracks.attrs.get("memory", 3)
    max_gap = int(memory) + 1 if isinstance(memory, int | np.integer) else 4
    moves, moved = _moves(sites, int(hold), max_hop, shown_empty)
    fast = tracks.attrs.get("fast_range") or 2.0 * sites.spacing
    rows = (
        moves
        + _creations(sites, int(hold), moved)
        + _adatoms(sites, 2.0 * fast, max_gap, min_frames)
    )
    rows += _clusters(sites, bond)
    table = pd.DataFrame(rows, columns=[c for c in EVENT_COLUMNS if c not in ("y_A", "x_A")])
    scale = tracks.attrs.get("pixel_size") or math.nan
    table.insert(11, "y_A", table["y"] * scale)
    table.insert(12, "x_A", table["x"] * scale)
    table = table[table["confidence"] >= min_confidence]
    order = table["kind"].map({k: i for i, k in enumerate(EVENT_KINDS)})
    table = table.assign(_order=order).sort_values(["frame", "_order", "particle"])
    table = table.drop(columns="_order").reset_index(drop=True)
    table = table.astype({"frame": np.int64, "particle": np.int64, "other": np.int64})
    table.attrs.update(sites=len(sites.positions), spacing_px=sites.spacing, hold=int(hold),
                       max_hop=max_hop, bond=bond)  # fmt: skip
    return table
