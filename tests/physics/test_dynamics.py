import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk, graphene, mx2
from scipy.spatial import cKDTree

from atomlens.physics.dynamics.models import DynamicsModel, simulate_series
from atomlens.physics.dynamics.trajectories import EVENT_KINDS, Series

CC_BOND = 2.46 / np.sqrt(3)  # graphene nearest-neighbour distance [Å]


def cut_to_box(unit: Atoms, width: float, height: float, thickness: float) -> Atoms:
    """Repeat a 2D unit cell and keep the atoms inside [0, W) x [0, H), centred in z."""
    a, b = unit.cell[0, :2], unit.cell[1, :2]
    n = int(np.ceil(2 * max(width, height) / min(np.linalg.norm(a), abs(b[1])))) + 1
    i, j = np.mgrid[-n : n + 1, -n : n + 1]
    shifts = i.reshape(-1, 1) * a + j.reshape(-1, 1) * b
    xy = (unit.positions[None, :, :2] + shifts[:, None, :]).reshape(-1, 2) + 0.25
    z = np.tile(unit.positions[:, 2], len(shifts)) + thickness / 2
    numbers = np.tile(unit.numbers, len(shifts))
    keep = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    positions = np.column_stack([xy[keep], z[keep]])
    return Atoms(numbers=numbers[keep], positions=positions, cell=[width, height, thickness])


def graphene_field(width: float = 30.0, height: float = 30.0) -> Atoms:
    return cut_to_box(graphene(a=2.46), width, height, 8.0)


def remove(field: Atoms, indices) -> tuple[Atoms, Atoms]:
    """The field without ``indices`` and the removed atoms (to pass as vacancies)."""
    kept = field.copy()
    missing = field[list(indices)]
    del kept[list(indices)]
    return kept, missing


def central_atoms(field: Atoms, count: int, spacing: float) -> list[int]:
    """Indices of ``count`` atoms at least ``spacing`` apart and away from the edges."""
    centre = np.diag(field.cell)[:2] / 2
    order = np.argsort(np.linalg.norm(field.positions[:, :2] - centre, axis=1))
    chosen = []
    for index in order[::7]:
        xy = field.positions[index, :2]
        if all(np.linalg.norm(xy - field.positions[c, :2]) >= spacing for c in chosen):
            chosen.append(int(index))
        if len(chosen) == count:
            return chosen
    raise AssertionError("field too small")


def adatom_field(count: int, size: float, seed: int) -> Atoms:
    xy = np.random.default_rng(seed).uniform(0, size, (count, 2))
    field = Atoms(
        numbers=np.full(count, 6),
        positions=np.column_stack([xy, np.full(count, 3.0)]),
        cell=[size, size, 6.0],
    )
    field.new_array("adatom", np.ones(count, bool))
    return field


def frame_positions(series: Series) -> np.ndarray:
    """(frames, particles, 2) positions of a series in which no particle appears or leaves."""
    table = series.tracks.sort_values(["frame", "particle"])
    return table[["y_A", "x_A"]].to_numpy().reshape(series.frames, -1, 2)


def occupation(series: Series) -> np.ndarray:
    """(frames, sites) number of atoms on each site."""
    lattice = series.tracks[series.tracks["site"] >= 0]
    counts = np.zeros((series.frames, len(series.sites)), int)
    np.add.at(counts, (lattice["frame"].to_numpy(), lattice["site"].to_numpy()), 1)
    return counts


def site_of(series: Series, events: pd.DataFrame, end: str) -> np.ndarray:
    """Site index of an event end ('from' or 'to'), found from its position without drift."""
    yx = events[[f"y_{end}_A", f"x_{end}_A"]].to_numpy() - series.drift_A[events["frame"]]
    distance, site = cKDTree(series.sites).query(yx)
    assert distance.max(initial=0) < 1e-6
    return site


def test_thermal_jitter_has_the_given_std_and_no_events():
    field = graphene_field()
    series = simulate_series(field, 20, DynamicsModel(thermal_sigma=0.1), np.random.default_rng(0))
    deviation = frame_positions(series) - field.positions[None, :, [1, 0]]
    assert deviation.mean(axis=(0, 1)) == pytest.approx([0, 0], abs=0.003)
    assert deviation.std(axis=(0, 1)) == pytest.approx([0.1, 0.1], rel=0.03)
    assert series.events.empty
    assert list(series.events.columns) == [
        "frame",
        "particle",
        "kind",
        "y_from_A",
        "x_from_A",
        "y_to_A",
        "x_to_A",
        "other",
    ]


def test_adatom_mean_squared_displacement_grows_as_4_d_t():
    diffusion, frames = 0.5, 20
    field = adatom_field(2000, 400.0, seed=1)
    model = DynamicsModel(adatom_diffusion=diffusion)
    positions = frame_positions(simulate_series(field, frames, model, np.random.default_rng(1)))
    for lag in (1, 5, 10, frames - 1):
        squared = ((positions[lag] - positions[0]) ** 2).mean(axis=0)  # per axis: 2 D t
        assert squared.sum() == pytest.approx(4 * diffusion * lag, rel=0.1)
        assert squared == pytest.approx([2 * diffusion * lag] * 2, rel=0.15)


def test_thick_crystal_is_frozen_by_default_and_its_adatoms_diffuse():
    crystal = bulk("Au", "fcc", a=4.08, cubic=True).repeat((5, 5, 5))  # 20 Å thick
    crystal.positions += 1.0
    crystal, missing = remove(crystal, [62, 311])
    field = crystal + Atoms("Au2", positions=[[5, 5, 22.5], [12, 14, 22.5]])
    field.cell = [20.4, 20.4, 25.0]
    flags = np.r_[np.zeros(len(crystal), bool), True, True]
    field.new_array("adatom", flags)
    model = DynamicsModel(hop_rate=0.5, vacancy_migration=0.5, adatom_diffusion=0.3)
    frozen = simulate_series(field, 10, model, 2, vacancies=missing)
    moved = frame_positions(frozen) - field.positions[None, :, [1, 0]]
    assert np.all(moved[:, ~flags] == 0)
    assert np.all(np.abs(moved[-1, flags]) > 0)
    assert frozen.events.empty
    assert frozen.site_capacity.max() == 5  # columns of 5 stacked atoms
    mobile = simulate_series(field, 10, model, 2, vacancies=missing, mobile=np.ones(len(field)))
    assert (mobile.events["kind"] != "appear").all() and len(mobile.events) > 0


def test_hops_are_binomial_and_land_on_empty_neighbour_sites():
    rate, frames = 0.02, 600
    full = graphene_field(50.0, 50.0)
    field, missing = remove(full, central_atoms(full, 24, spacing=6.0))
    series = simulate_series(field, frames, DynamicsModel(hop_rate=rate), 3, vacancies=missing)
    hops = series.events
    assert set(hops["kind"]) == {"hop"}
    occupied = occupation(series)
    assert occupied.max() == 1 and (occupied.sum(axis=1) == len(field)).all()
    # expected: rate x number of atoms with an empty neighbour site at the start of each frame
    pairs = cKDTree(series.sites).query_pairs(1.1 * CC_BOND, output_type="ndarray")
    adjacent = np.zeros((len(series.sites),) * 2)
    adjacent[pairs[:, 0], pairs[:, 1]] = adjacent[pairs[:, 1], pairs[:, 0]] = 1
    next_to_empty = (occupied[:-1] == 0) @ adjacent > 0
    trials = int((occupied[:-1] * next_to_empty).sum())
    assert trials > 60 * (frames - 1)
    assert abs(len(hops) - rate * trials) < 4 * np.sqrt(trials * rate * (1 - rate))
    source, target = site_of(series, hops, "from"), site_of(series, hops, "to")
    before = hops["frame"].to_numpy() - 1
    assert (occupied[before, target] == 0).all()  # previously empty
    assert (occupied[before, source] == 1).all()
    length = np.linalg.norm(series.sites[target] - series.sites[source], axis=1)
    assert length == pytest.approx(np.full(len(hops), CC_BOND), abs=1e-6)
    landed = series.tracks.set_index(["frame", "particle"]).loc[
        list(zip(hops["frame"], hops["particle"], strict=True)), "site"
    ]
    assert (landed.to_numpy() == target).all()


def test_vacancy_migration_conserves_atoms_and_moves_the_vacancy_by_one_bond():
    rate, frames = 0.3, 100
    full = graphene_field()
    field, missing = remove(full, central_atoms(full, 1, spacing=0))
    model = DynamicsModel(vacancy_migration=rate)
    series = simulate_series(field, frames, model, 4, vacancies=missing)
    occupied = occupation(series)
    assert (occupied.sum(axis=1) == len(field)).all()
    assert ((occupied == 0).sum(axis=1) == 1).all()  # one vacancy, always
    vacancy = series.sites[np.argmin(occupied, axis=1)]
    steps = np.linalg.norm(np.diff(vacancy, axis=0), axis=1)
    moves = steps > 0
    assert steps[moves] == pytest.approx(np.full(moves.sum(), CC_BOND), abs=1e-6)
    assert abs(moves.sum() - rate * (frames - 1)) < 4 * np.sqrt(frames * rate * (1 - rate))
    events = series.events
    assert set(events["kind"]) == {"vacancy_migration"} and len(events) == moves.sum()
    assert (site_of(series, events, "from") == np.argmin(occupied, axis=1)[events["frame"]]).all()


def test_appear_and_leave_change_the_count_by_exactly_the_recorded_events():
    appear, leave, frames = 3.0, 0.05, 200
    model = DynamicsModel(appear_rate=appear, leave_rate=leave, adatom_element="Si")
    series = simulate_series(graphene_field(), frames, model, 5)
    tracks, events = series.tracks, series.events
    count = tracks.groupby("frame").size().reindex(range(frames), fill_value=0).to_numpy()
    kinds = events.pivot_table(index="frame", columns="kind", aggfunc="size", fill_value=0)
    kinds = kinds.reindex(range(frames), fill_value=0)
    assert (np.diff(count) == (kinds["appear"] - kinds["leave"]).to_numpy()[1:]).all()
    expected = appear * (frames - 1)
    assert abs(kinds["appear"].sum() - expected) < 4 * np.sqrt(expected)
    adatoms = tracks[tracks["adatom"]].groupby("frame").size().reindex(range(frames), fill_value=0)
    trials = adatoms.to_numpy()[:-1].sum()
    assert abs(kinds["leave"].sum() - leave * trials) < 4 * np.sqrt(trials * leave)
    span = tracks.groupby("particle")["frame"].agg(["min", "max", "size"])
    assert (span["size"] == span["max"] - span["min"] + 1).all()  # never comes back
    born = events[events["kind"] == "appear"].set_index("particle")
    gone = events[events["kind"] == "leave"].set_index("particle")
    assert (span.loc[born.index, "min"] == born["frame"]).all()
    assert (span.loc[gone.index, "max"] == gone["frame"] - 1).all()
    new = tracks[tracks["particle"].isin(born.index)]
    assert set(new["species"]) == {"Si"} and new["adatom"].all() and new["in_view"].all()


def test_merges_happen_exactly_for_adatoms_closer_than_merge_distance():
    distance, frames = 1.5, 30
    field = adatom_field(300, 60.0, seed=6)
    model = DynamicsModel(adatom_diffusion=0.3, merge_distance=distance)
    series = simulate_series(field, frames, model, 6)
    merges = series.events
    assert set(merges["kind"]) == {"merge"} and len(merges) > 20
    start = merges[["y_from_A", "x_from_A"]].to_numpy()
    gap = np.linalg.norm(start - merges[["y_to_A", "x_to_A"]].to_numpy(), axis=1)
    assert (gap < distance).all()
    positions = frame_positions(series)
    cluster = series.tracks.sort_values(["frame", "particle"])["cluster"].to_numpy()
    cluster = cluster.reshape(frames, -1)
    for frame in range(frames):
        pairs = cKDTree(positions[frame]).query_pairs(distance * 0.999, output_type="ndarray")
        assert (cluster[frame, pairs[:, 0]] == cluster[frame, pairs[:, 1]]).all()
        merged = (merges["frame"] == frame).sum()
        before = len(field) if frame == 0 else len(set(cluster[frame - 1]))
        assert len(set(cluster[frame])) == before - merged
        assert np.allclose(
            positions[frame, merges["particle"][merges["frame"] == frame]],
            start[merges["frame"] == frame],
        )
    for row in merges[merges["frame"] > 0].itertuples():  # the later cluster joins the earlier
        assert cluster[row.frame - 1, row.other] < cluster[row.frame - 1, row.particle]
        assert cluster[row.frame, row.other] == cluster[row.frame, row.particle]
    offsets = positions[:, :, None] - positions[:, None, :]  # bound atoms move rigidly
    bound = cluster[:-1, :, None] == cluster[:-1, None, :]
    assert np.allclose(offsets[1:][bound], offsets[:-1][bound])


def test_drift_moves_every_atom_by_frame_times_drift():
    drift, frames = (0.05, -0.12), 30
    field = graphene_field()
    series = simulate_series(field, frames, DynamicsModel(drift=drift), 7)
    expected = np.arange(frames)[:, None] * np.array(drift)
    assert series.drift_A == pytest.approx(expected)
    moved = frame_positions(series) - field.positions[None, :, [1, 0]]
    assert np.allclose(moved, expected[:, None, :])
    last = series.tracks[series.tracks["frame"] == frames - 1]
    atoms = series.atoms(frames - 1)
    assert 0 < len(atoms) == last["in_view"].sum() < len(field)  # drifted out at x = 0
    assert set(atoms.get_array("particle")) == set(last["particle"][last["in_view"]])
    assert len(series.atoms(frames - 1, margin=5.0)) == len(field)
    assert np.all(atoms.positions[:, 0] >= 0) and np.allclose(atoms.cell, field.cell)


EVERYTHING = DynamicsModel(
    thermal_sigma=0.05,
    hop_rate=0.02,
    vacancy_migration=0.2,
    adatom_diffusion=0.2,
    appear_rate=1.0,
    leave_rate=0.03,
    merge_distance=1.2,
    drift=(0.03, 0.02),
)


def busy_series(seed) -> tuple[Atoms, Series]:
    full = graphene_field(36.0, 36.0)
    field, missing = remove(full, central_atoms(full, 6, spacing=6.0))
    field = field + adatom_field(20, 36.0, seed=8)
    flags = np.r_[np.zeros(len(field) - 20, bool), np.ones(20, bool)]
    return field, simulate_series(field, 60, EVERYTHING, seed, adatom=flags, vacancies=missing)


def test_particle_ids_are_unique_per_frame_and_stable():
    field, series = busy_series(9)
    tracks = series.tracks
    assert not tracks.duplicated(["frame", "particle"]).any()
    assert (tracks["frame"].diff().fillna(0) >= 0).all()
    first = tracks[tracks["frame"] == 0]
    assert first["particle"].tolist() == list(range(len(field)))
    assert (first["Z"].to_numpy() == field.numbers).all()
    per_particle = tracks.groupby("particle")
    assert (per_particle[["Z", "species", "adatom"]].nunique() == 1).all().all()
    lattice = tracks[~tracks["adatom"]]
    assert (lattice.groupby("particle").size() == series.frames).all()
    assert (lattice["site"] >= 0).all() and (tracks[tracks["adatom"]]["site"] == -1).all()
    assert set(series.events["kind"]) == set(EVENT_KINDS)


def test_replaying_the_events_reproduces_every_frame():
    _, series = busy_series(10)
    tracks, events = series.tracks, series.events
    occupied = occupation(series)
    alive = set(tracks.loc[tracks["frame"] == 0, "particle"])
    counts = occupied[0].copy()
    for frame in range(1, series.frames):
        now = events[events["frame"] == frame]
        moves = now[now["kind"].isin(["hop", "vacancy_migration"])]
        np.add.at(counts, site_of(series, moves, "from"), -1)
        np.add.at(counts, site_of(series, moves, "to"), 1)
        assert (counts == occupied[frame]).all()
        alive |= set(now.loc[now["kind"] == "appear", "particle"])
        alive -= set(now.loc[now["kind"] == "leave", "particle"])
        assert alive == set(tracks.loc[tracks["frame"] == frame, "particle"])
    assert_moves_follow_the_tracks(series)
    merged = events[events["kind"] == "merge"]
    flags = tracks.groupby("particle")["adatom"].first()
    assert flags[merged["particle"]].all() and flags[merged["other"]].all()


def assert_moves_follow_the_tracks(series: Series) -> None:
    """Each lattice move starts on the particle's site of the previous frame and ends on its
    site of this frame, which was empty before: no atom moves twice, no site takes two atoms."""
    moves = series.events[series.events["kind"].isin(["hop", "vacancy_migration"])]
    assert not moves.duplicated(["frame", "particle"]).any()
    site = series.tracks.set_index(["frame", "particle"])["site"]
    before = site.loc[list(zip(moves["frame"] - 1, moves["particle"], strict=True))].to_numpy()
    after = site.loc[list(zip(moves["frame"], moves["particle"], strict=True))].to_numpy()
    assert (before == site_of(series, moves, "from")).all()
    assert (after == site_of(series, moves, "to")).all()
    assert (occupation(series)[moves["frame"] - 1, after] == 0).all()


def test_dense_vacancies_each_atom_moves_at_most_once_per_frame():
    full = graphene_field(20.0, 20.0)
    chosen = np.random.default_rng(14).choice(len(full), len(full) // 4, replace=False)
    field, missing = remove(full, chosen)
    model = DynamicsModel(hop_rate=0.5, vacancy_migration=0.5)
    series = simulate_series(field, 20, model, 14, vacancies=missing)
    assert len(series.events) > 20 * len(missing) * 0.3
    assert_moves_follow_the_tracks(series)
    assert (occupation(series).sum(axis=1) == len(field)).all()


def test_same_seed_same_series():
    a = busy_series(11)[1]
    b = busy_series(np.random.default_rng(11))[1]
    c = busy_series(12)[1]
    pd.testing.assert_frame_equal(a.tracks, b.tracks)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert not a.tracks["x_A"].equals(c.tracks["x_A"])


def test_mos2_stacks_sulphur_into_sites_and_hops_within_its_sublattice():
    full = cut_to_box(mx2("MoS2", a=3.18), 30.0, 30.0, 10.0)
    sulphur = np.flatnonzero(full.numbers == 16)
    molybdenum = np.flatnonzero(full.numbers == 42)
    field, missing = remove(full, [sulphur[len(sulphur) // 2], molybdenum[len(molybdenum) // 3]])
    model = DynamicsModel(hop_rate=0.2, vacancy_migration=0.2)
    series = simulate_series(field, 40, model, 13, vacancies=missing)
    assert len(series.sites) == len(molybdenum) + len(sulphur) // 2
    assert sorted(set(series.site_capacity)) == [1, 2]
    events = series.events
    assert len(events) > 10
    length = np.linalg.norm(
        series.sites[site_of(series, events, "to")] - series.sites[site_of(series, events, "from")],
        axis=1,
    )
    assert length == pytest.approx(np.full(len(events), 3.18), abs=1e-3)  # same-element neighbours
    tracks = series.tracks
    capacity = series.site_capacity
    site_element = np.zeros(len(series.sites), int)
    site_element[cKDTree(series.sites).query(full.positions[:, [1, 0]])[1]] = full.numbers
    assert (tracks["Z"].to_numpy() == site_element[tracks["site"]]).all()
    assert (occupation(series) <= capacity).all()
    assert set(tracks.loc[tracks["Z"] == 16, "z_A"].round(6)) == set(
        full.positions[sulphur, 2].round(6)
    )


def test_atoms_and_pixels_follow_the_image_conventions():
    field = Atoms("CSi", positions=[[1.5, 0.3, 4.0], [0.6, 2.7, 4.0]], cell=[3.0, 3.0, 8.0])
    series = simulate_series(field, 2, DynamicsModel(), 0)
    atoms = series.atoms(1)
    assert atoms.get_chemical_symbols() == ["C", "Si"]
    assert np.allclose(atoms.positions, field.positions)
    assert (atoms.get_array("particle") == [0, 1]).all() and not atoms.get_array("adatom").any()
    pixels = series.to_pixels(0.15)
    assert pixels.loc[0, ["y", "x"]].tolist() == pytest.approx([2.0, 10.0])  # row 2, column 10
    assert "y" not in series.tracks


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hop_rate": 1.5}, "hop_rate .* \\[0, 1\\], got 1.5"),
        ({"leave_rate": -0.1}, "leave_rate"),
        ({"vacancy_migration": float("nan")}, "vacancy_migration"),
        ({"thermal_sigma": -0.1}, "thermal_sigma must be >= 0 Å"),
        ({"adatom_diffusion": -1.0}, "adatom_diffusion"),
        ({"appear_rate": -2.0}, "appear_rate"),
        ({"merge_distance": float("inf")}, "merge_distance"),
        ({"hop_distance": 0.0}, "hop_distance must be > 0"),
        ({"drift": (0.1, 0.2, 0.3)}, "drift must be \\(vy, vx\\)"),
        ({"adatom_element": "Xx"}, "adatom_element"),
    ],
)
def test_bad_model_parameters_raise(options, message):
    with pytest.raises(ValueError, match=message):
        DynamicsModel(**options)


def test_bad_inputs_raise():
    field = graphene_field(10.0, 10.0)
    with pytest.raises(ValueError, match="frames must be an integer >= 1, got 0"):
        simulate_series(field, 0, DynamicsModel(), 0)
    with pytest.raises(ValueError, match="frames must be an integer"):
        simulate_series(field, 2.5, DynamicsModel(), 0)
    with pytest.raises(ValueError, match="orthorhombic box"):
        simulate_series(graphene(a=2.46, vacuum=5.0), 3, DynamicsModel(), 0)
    empty_cell = field.copy()
    empty_cell.cell = [10.0, 10.0, 0.0]
    with pytest.raises(ValueError, match="orthorhombic box"):
        simulate_series(empty_cell, 3, DynamicsModel(), 0)
    with pytest.raises(ValueError, match="adatom must hold one flag per atom"):
        simulate_series(field, 3, DynamicsModel(), 0, adatom=[True, False])
    with pytest.raises(ValueError, match="frame must lie in"):
        simulate_series(field, 3, DynamicsModel(), 0).atoms(3)
    with pytest.raises(ValueError, match="pixel_size"):
        simulate_series(field, 3, DynamicsModel(), 0).to_pixels(0)
    with pytest.raises(ValueError, match="adatom_element"):
        simulate_series(Atoms(cell=[5, 5, 5]), 3, DynamicsModel(appear_rate=1.0), 0)
