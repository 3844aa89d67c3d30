"""Behaviour recognition on planted events (a hop, a vacancy migration, a vacancy created, an
adatom arriving and leaving, two adatoms bonding), no events on a static jittering lattice, bad
input refused, and a simulated series against its ground-truth events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from atomlens.core.validation import InputError, ParameterError
from atomlens.track import EVENT_KINDS, events, lattice_sites, site_features, track

SPACING = 10.0
SITES = np.stack(np.mgrid[:8, :8], -1).reshape(-1, 2) * SPACING


def detections(paths: dict[int, dict[int, tuple]], jitter=0.3, drift=(0.0, 0.0), seed=0):
    """Detections of ``{atom: {frame: (y, x)}}`` with jitter and a drift per frame [px]."""
    rng = np.random.default_rng(seed)
    rows = [(f, *(np.add(p, np.multiply(drift, f)) + rng.normal(0, jitter, 2)))
            for path in paths.values() for f, p in path.items()]  # fmt: skip
    return pd.DataFrame(rows, columns=["frame", "y", "x"]).sort_values("frame", kind="stable")


def lattice_paths(frames=12, empty=()) -> dict[int, dict[int, tuple]]:
    return {k: {f: tuple(s) for f in range(frames)} for k, s in enumerate(SITES) if k not in empty}


def site(k: int) -> tuple[float, float]:
    return tuple(SITES[k])


def test_a_static_jittering_lattice_has_no_events():
    tracks = track(detections(lattice_paths(), drift=(2.0, -1.0)), pixel_size=0.1)
    found = events(tracks)
    assert found.empty, found
    assert list(found.columns) == [
        "frame", "kind", "particle", "other", "particles", "y", "x", "y_from", "x_from",
        "y_to", "x_to", "y_A", "x_A", "confidence",
    ]  # fmt: skip
    assert found.attrs["sites"] == 64


def test_a_hop_into_a_vacancy_and_a_vacancy_migration():
    # site 27 is empty from the start; atom 28 hops into it at frame 4 (a hop: 27 was never
    # seen occupied); then atom 36 fills the vacancy 28 it left at frame 8 (a migration)
    paths = lattice_paths(empty=(27,))
    paths[28] = {f: site(28 if f < 4 else 27) for f in range(12)}
    paths[36] = {f: site(36 if f < 8 else 28) for f in range(12)}
    tracks = track(detections(paths, drift=(1.5, 0.5)), pixel_size=0.1)
    found = events(tracks)
    assert found["kind"].tolist() == ["hop", "vacancy_migration"], found
    hop, migration = found.iloc[0], found.iloc[1]
    drift = np.array([1.5, 0.5])
    assert hop["frame"] == 4 and migration["frame"] == 8
    np.testing.assert_allclose(hop[["y_from", "x_from"]].astype(float), site(28) + 4 * drift,
                               atol=0.5)  # fmt: skip
    np.testing.assert_allclose(hop[["y_to", "x_to"]].astype(float), site(27) + 4 * drift, atol=0.5)
    np.testing.assert_allclose(migration[["y_to", "x_to"]].astype(float), site(28) + 8 * drift,
                               atol=0.5)  # fmt: skip
    np.testing.assert_allclose(found["y_A"], 0.1 * found["y"])
    assert (found["confidence"] > 0.5).all() and (found["confidence"] <= 1).all()
    moving = tracks[(tracks["frame"] == 5) & (np.hypot(tracks["y"] - 27.5 - 7.5,
                    tracks["x"] - 30 - 2.5) < 3)]["particle"]  # fmt: skip
    assert hop["particle"] in set(moving)
    features = site_features(tracks).set_index("particle")
    assert features.loc[hop["particle"], "hops"] == 1
    assert abs(float(features.loc[hop["particle"], "hop_angles"])) > 175  # along -x
    assert features.loc[hop["particle"], "hop_rate"] == pytest.approx(1 / 12)
    assert features["hops"].sum() == 2


def test_a_vacancy_created_an_adatom_arriving_and_leaving():
    paths = lattice_paths()
    paths[19] = {f: site(19) for f in range(5)}  # the atom of site 19 is gone from frame 5
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(0, 3.0, (5, 2)), axis=0) + np.array([35.0, 45.0])  # a walk
    paths[100] = {f: tuple(walk[f - 3]) for f in range(3, 8)}  # arrives at 3, gone from 8
    found = events(track(detections(paths)))
    kinds = dict(zip(found["kind"], found["frame"], strict=True))
    assert kinds == {"vacancy_creation": 5, "adatom_arrive": 3, "adatom_leave": 8}, found
    created = found[found["kind"] == "vacancy_creation"].iloc[0]
    assert np.hypot(created["y"] - 20, created["x"] - 30) < 1
    arrive = found[found["kind"] == "adatom_arrive"].iloc[0]
    assert np.hypot(arrive["y"] - walk[0, 0], arrive["x"] - walk[0, 1]) < 1.5


def test_two_adatoms_form_a_cluster():
    paths = lattice_paths(frames=10)
    # two adatoms jumping between square centres (still ones would be taken for lattice atoms)
    # far apart until frame 4, one column spacing apart (bonded) from frame 5 on
    xa = [15, 25, 15, 25, 35, 45, 45, 45, 45, 45]
    xb = [65, 55, 65, 55, 65, 55, 55, 55, 55, 55]
    ya = [35, 35, 35, 35, 35, 35, 45, 35, 45, 35]
    paths[100] = {f: (ya[f], xa[f]) for f in range(10)}
    paths[101] = {f: (ya[f], xb[f]) for f in range(10)}
    found = events(track(detections(paths, jitter=0.2)))
    clusters = found[found["kind"].str.startswith("cluster")]
    assert clusters["kind"].tolist() == ["cluster_form"], found
    assert clusters["frame"].iloc[0] == 5
    assert len(clusters["particles"].iloc[0].split()) == 2


def test_min_confidence_and_sites():
    paths = lattice_paths(empty=(27,))
    paths[28] = {f: site(28 if f < 4 else 27) for f in range(12)}
    tracks = track(detections(paths))
    assert len(events(tracks)) == 1 and events(tracks, min_confidence=1.0).empty is bool(
        events(tracks)["confidence"].iloc[0] < 1.0
    )
    sites = lattice_sites(tracks)
    assert len(sites.positions) == 64  # the vacancy 27 is found once the atom sat on it
    assert sites.occupied.shape == (12, 64)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ("tracks.csv", InputError, "DataFrame"),
        (pd.DataFrame({"frame": [0, 1], "y": [0.0, 1.0], "x": [0.0, 1.0]}), InputError,
         "particle"),
        (pd.DataFrame({"frame": [0, 0, 1], "particle": [0, 0, 0], "y": [0.0, 5.0, 0.0],
                       "x": [0.0, 0.0, 0.0]}), InputError, "twice"),
        (pd.DataFrame({"frame": [0, 1], "particle": [0, 0], "y": [0.0, np.inf],
                       "x": [0.0, 1.0]}), InputError, "finite"),
    ],
)  # fmt: skip
def test_bad_tracks_are_refused(bad, error, message):
    with pytest.raises(error, match=message):
        events(bad)


@pytest.mark.parametrize(
    "option", [{"hold": 0}, {"hold": 2.5}, {"max_hop": 0.5}, {"bond": np.nan},
               {"min_confidence": 2}, {"radius": 0.7}, {"min_frames": 1}],
)  # fmt: skip
def test_bad_options_are_refused(option):
    tracks = track(detections(lattice_paths(frames=4)))
    with pytest.raises(ParameterError):
        events(tracks, **option)


def test_adatoms_of_a_simulated_series_match_its_ground_truth():
    """SeriesSampler's fields have no vacancies (so no hops); its adatoms appear and leave.
    On the true columns, most are found, and all arrivals found but one are true appearances,
    apart from adatoms walking in and out of view at the edge (confidence near 0). The one:
    an adatom that sits on a lattice column for five frames (its track and the column's
    swap) and moves on reads as arriving then (adatom pieces are cut at stays)."""
    from atomlens.data import SeriesSampler

    simulated = SeriesSampler(frames=16, size=96, distortions="none").sample(0, seed=3000000)
    truth = simulated.tracks[simulated.tracks["in_view"]]
    columns = truth[truth["site"] >= 0].groupby(["frame", "site"], as_index=False)[["y", "x"]]
    table = pd.concat([columns.mean().drop(columns="site"),
                       truth.loc[truth["site"] < 0, ["frame", "y", "x"]]])  # fmt: skip
    found = events(track(table, pixel_size=simulated.pixel_size))
    assert set(found["kind"]) <= set(EVENT_KINDS)
    assert not found["kind"].isin(["hop", "vacancy_migration", "vacancy_creation"]).any(), found
    true = simulated.events[simulated.events["kind"] == "appear"]
    spacing = found.attrs["spacing_px"]
    arrivals = found[found["kind"] == "adatom_arrive"]
    hits, false = 0, []
    for row in arrivals.itertuples():
        near = true[(true["frame"] - row.frame).abs() <= 1]
        distance = np.hypot(near["y_to"] - row.y, near["x_to"] - row.x)
        hit = bool((distance < 0.5 * spacing).any())
        hits += hit
        false += [] if hit else [row.confidence]
    assert len(true) >= 5 and hits >= 0.5 * len(true), (found, true)
    # the pausing adatom, and at most one more at the edge of the field (confidence near 0)
    assert len(false) <= 2 and sum(c >= 0.1 for c in false) <= 1, (found, true)


def honeycomb(cells: int = 8, bond: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Sites (n, 2) [px] of a honeycomb lattice (bond length ``bond``) and their sublattice."""
    i, j = np.mgrid[:cells, :cells].reshape(2, -1)
    corner = np.stack([1.5 * bond * i, np.sqrt(3) * bond * (j + 0.5 * i)], -1) + 20.0
    sites = np.concatenate([corner, np.add(corner, (bond, 0.0))])
    return sites, np.r_[np.zeros(len(corner), int), np.ones(len(corner), int)]


def planted_moves(sites, empty, moves, frames, missed=()):
    """Detections of a lattice with vacancies ``empty`` and moves ``(frame, from, to)`` (the
    atom is on the new site from that frame on); ``missed`` (frame, site) are not detected."""
    where = {s: s for s in range(len(sites)) if s not in empty}
    path = {}
    for f in range(frames):
        for frame, start, end in moves:
            if frame == f:
                atom = next(a for a, s in where.items() if s == start)
                where[atom] = end
        path[f] = dict(where)
    rng = np.random.default_rng(0)
    rows = [(f, *(sites[s] + rng.normal(0, 0.3, 2))) for f in range(frames)
            for s in path[f].values() if (f, s) not in missed]  # fmt: skip
    return pd.DataFrame(rows, columns=["frame", "y", "x"])


def found_moves(found, sites) -> list[tuple[int, int, int]]:
    """(frame, from, to) of the hops and vacancy migrations found, as site indices."""
    moves = found[found["kind"].isin(["hop", "vacancy_migration"])]
    nearest = cKDTree(sites)
    return [(int(r.frame), int(nearest.query([r.y_from, r.x_from])[1]),
             int(nearest.query([r.y_to, r.x_to])[1])) for r in moves.itertuples()]  # fmt: skip


def test_moves_to_the_next_site_of_a_sublattice_beat_a_missed_neighbour():
    """In hBN and the TMDs an atom moves to the next site of its own sublattice, sqrt(3) bond
    lengths away; a missed detection on the new site's nearest neighbour (1 bond length) in the
    same frame must not take the move (before: the move was lost, or read from that site)."""
    sites, sublattice = honeycomb()
    tree = cKDTree(sites)
    start = [18, 21, 43]  # three vacancies on sublattice 0, far apart
    assert (sublattice[start] == 0).all()
    middle, moves, empty, came = sites.mean(axis=0), [], list(start), [-1, -1, -1]
    for step in range(3):
        for v, vacancy in enumerate(empty):
            close = tree.query_ball_point(sites[vacancy], 1.8 * 10.0)
            donors = [s for s in close if sublattice[s] == 0 and s not in (*empty, came[v])]
            donor = min(donors, key=lambda s: np.hypot(*(sites[s] - middle)))
            moves.append((3 + 4 * step + v, donor, vacancy))
            empty[v], came[v] = donor, vacancy
    # the atoms next to the first move's new site, missed in the frame of the move
    first = moves[0]
    neighbours = [s for s in tree.query_ball_point(sites[first[2]], 11.0) if s != first[2]]
    missed = {(first[0], neighbours[0])}
    detections = planted_moves(sites, start, moves, frames=18, missed=missed)
    found = events(track(detections, pixel_size=0.1))
    assert sorted(found_moves(found, sites)) == sorted(moves), found
    assert not (found["kind"] == "vacancy_creation").any(), found


def test_a_vacancy_that_moves_on_at_once_and_a_missed_detection_on_the_new_site():
    """A move whose atom leaves its new site in the next frame by another move, and a move
    whose atom is missed on its new site in the frame after it, are both moves (before: the
    ``hold`` rule dropped them)."""
    moves = [(4, 28, 27), (5, 27, 28), (9, 36, 27)]
    detections = planted_moves(SITES, [27], moves, frames=14, missed={(10, 27)})
    found = events(track(detections, pixel_size=0.1))
    assert found_moves(found, SITES) == moves, found


def test_two_missed_detections_at_the_start_are_no_move():
    """A site missed in the first frame and its neighbour missed in the second look like an
    atom moving between them in frame 1 (before: a hop was reported)."""
    detections = planted_moves(SITES, [], [], frames=10, missed={(0, 27), (1, 28)})
    found = events(track(detections, pixel_size=0.1))
    assert found_moves(found, SITES) == [], found


def test_an_adatom_arriving_next_to_a_missed_lattice_atom():
    """A lattice atom missed in the frame an adatom appears next to it: the linker continues
    the atom's track on the adatom for that frame. The arrival is the adatom's first
    detection (before: one frame late, one spacing away, read from the adatom's own track)."""
    paths = lattice_paths(frames=14)
    paths[27] = {f: site(27) for f in range(14) if f != 4}  # missed in frame 4
    centres = [(35, 35), (35, 45), (45, 45), (45, 35), (35, 35), (35, 45)]
    paths[100] = {f: centres[f - 4] for f in range(4, 10)}  # from frame 4 to 9
    found = events(track(detections(paths, jitter=0.2)))
    arrive = found[found["kind"] == "adatom_arrive"]
    leave = found[found["kind"] == "adatom_leave"]
    assert arrive["frame"].tolist() == [4] and leave["frame"].tolist() == [10], found
    assert np.hypot(arrive["y"].iloc[0] - 35, arrive["x"].iloc[0] - 35) < 1.5
    assert not found["kind"].isin(["hop", "vacancy_migration", "vacancy_creation"]).any()
