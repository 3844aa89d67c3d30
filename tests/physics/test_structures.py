import math

import numpy as np
import pytest
from ase.build import surface
from scipy.spatial import cKDTree

from atomlens.physics.structures.defects import (
    adatoms,
    grain_boundary,
    interstitial_columns,
    substitute,
    surface_edge,
    vacancies,
)
from atomlens.physics.structures.lattice import (
    column_labels,
    columns,
    field,
    orient,
    random_crop,
)
from atomlens.physics.structures.materials import MATERIALS, ZONE_AXES, material
from atomlens.physics.structures.random_structures import (
    amorphous_film,
    nanoparticle_on_support,
    random_structure,
)


def _assert_field(atoms, shape, pixel_size):
    width, height = shape[1] * pixel_size, shape[0] * pixel_size
    cell = atoms.cell.array
    assert cell[:2, :2] == pytest.approx(np.diag([width, height]))
    assert np.allclose(cell - np.diag(np.diag(cell)), 0)
    x, y, z = atoms.positions.T
    assert np.all((x >= 0) & (x < width) & (y >= 0) & (y < height))
    assert np.all((z >= 0) & (z <= cell[2, 2]))


def _nearest(table, species=None):
    """Shortest distance between projected columns (of one species) [Å]."""
    if species is not None:
        table = table[table.species == species]
    xy = table[["x_A", "y_A"]].to_numpy()
    return cKDTree(xy).query(xy, k=2)[0][:, 1].min()


def _directions(table, species, spacing):
    """Angles [deg, mod 90] of the vectors between neighbouring columns of one species."""
    xy = table[table.species == species][["x_A", "y_A"]].to_numpy()
    pairs = cKDTree(xy).query_pairs(spacing * 1.05, output_type="ndarray")
    step = xy[pairs[:, 1]] - xy[pairs[:, 0]]
    return np.degrees(np.arctan2(step[:, 1], step[:, 0])) % 90


# ------------------------------------------------------------------------------ material library


def test_unknown_material_lists_known_names():
    with pytest.raises(ValueError, match=r"Unknown material 'unobtainium'.*SrTiO3"):
        material("unobtainium")


@pytest.mark.parametrize(
    ("name", "lengths"),
    [
        ("Si", [5.431] * 3),
        ("GaAs", [5.653] * 3),
        ("Au", [4.078] * 3),
        ("Pt", [3.924] * 3),
        ("CeO2", [5.411] * 3),
        ("SrTiO3", [3.905] * 3),
        ("TiO2", [4.594, 4.594, 2.959]),
        ("ZnO", [3.250, 3.250, 5.207]),
        ("graphene", [2.46, 2.46, 3.35]),
        ("MoS2", [3.16, 3.16, 6.15]),
    ],
)
def test_lattice_constants(name, lengths):
    assert material(name).cell.lengths() == pytest.approx(lengths, abs=1e-9)


def test_every_library_entry_orients_to_an_orthorhombic_cell():
    for name in MATERIALS:
        for zone in ZONE_AXES[name]:
            cell = orient(name, zone).cell.array
            assert np.allclose(cell, np.diag(np.diag(cell))), (name, zone)
            assert np.all(np.diag(cell) > 0)


def test_transition_metal_dichalcogenide_geometry():
    mos2 = material("MoS2")
    sulphur = np.sort(mos2.positions[mos2.numbers == 16, 2])
    assert sulphur[1] - sulphur[0] == pytest.approx(3.172)
    bonds = np.linalg.norm(mos2.positions[mos2.numbers == 16] - mos2.positions[0], axis=1)
    assert bonds == pytest.approx([2.41, 2.41], abs=0.01)  # Mo-S bond in MoS2


def test_material_accepts_atoms_and_cif(tmp_path):
    path = tmp_path / "sto.cif"
    material("SrTiO3").write(path)
    from_file = material(path)
    assert from_file.cell.lengths() == pytest.approx([3.905] * 3)
    assert sorted(from_file.get_chemical_symbols()) == ["O", "O", "O", "Sr", "Ti"]
    atoms = material("Au")
    copy = material(atoms)
    copy.positions += 1.0
    assert atoms.positions[0] == pytest.approx([0, 0, 0])
    table = columns(field(path, (40, 40), 0.1, shift=(0.5, 0.5)))
    assert set(table.species) == {"Sr", "Ti-O", "O"}


# --------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize(
    ("name", "zone", "species", "distance"),
    [
        ("Si", (1, 1, 0), None, 5.431 / 4),  # dumbbell 1.36 Å
        ("Si", (0, 0, 1), None, 5.431 * math.sqrt(2) / 4),
        ("GaAs", (1, 1, 0), None, 5.653 / 4),
        ("SrTiO3", (0, 0, 1), "Sr", 3.905),
        ("SrTiO3", (0, 0, 1), None, 3.905 / 2),
        ("Au", (0, 0, 1), None, 4.078 / 2),  # 2.04 Å
        ("Au", (1, 1, 0), None, 4.078 * math.sqrt(6) / 4),
        ("Au", (1, 1, 1), None, 4.078 / math.sqrt(6)),
        ("CeO2", (0, 0, 1), "Ce", 5.411 / 2),
        ("CeO2", (0, 0, 1), None, 5.411 * math.sqrt(2) / 4),
        ("TiO2", (0, 0, 1), "Ti", 4.594 / math.sqrt(2)),
        ("ZnO", (0, 0, 0, 1), None, 3.25 / math.sqrt(3)),
        ("graphene", (0, 0, 1), None, 2.46 / math.sqrt(3)),  # C-C 1.42 Å
        ("MoS2", (0, 0, 1), None, 3.16 / math.sqrt(3)),
    ],
)
def test_projected_column_spacing(name, zone, species, distance):
    table = columns(field(name, (120, 120), 0.15, zone_axis=zone, cells=2, rotation=23.0))
    assert _nearest(table, species) == pytest.approx(distance, abs=2e-3)


def test_zone_axis_lies_along_z():
    for name, zone, period in [
        ("Si", (1, 1, 1), 5.431 * math.sqrt(3)),
        ("Au", (1, 1, 2), 4.078 * math.sqrt(6)),
        ("TiO2", (1, 1, 0), 4.594 * math.sqrt(2)),
        ("ZnO", (1, 1, -2, 0), 3.25),  # [11-20] = a1 + a2
    ]:
        assert orient(name, zone).cell[2, 2] == pytest.approx(period)


def test_four_index_zone_axis_equals_three_index():
    assert orient("ZnO", (1, 1, -2, 0)).cell.array == pytest.approx(orient("ZnO", (1, 1, 0)).cell)
    assert orient("ZnO", (1, 0, -1, 0)).cell.array == pytest.approx(orient("ZnO", (2, 1, 0)).cell)
    with pytest.raises(ValueError, match="t = -"):
        orient("ZnO", (1, 1, 1, 0))


@pytest.mark.parametrize("hkl", [(0, 0, 1), (1, 1, 0), (1, 1, 1)])
def test_cubic_zone_axis_is_the_plane_normal(hkl):
    slab = surface(material("Si"), hkl, 1)
    unit = orient("Si", hkl)
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    ratio = unit.cell[0, 0] * unit.cell[1, 1] / area  # a rectangle of the same plane lattice
    assert ratio == pytest.approx(round(ratio)) and round(ratio) in (1, 2)
    assert unit.cell[2, 2] == pytest.approx(5.431 * np.linalg.norm(hkl))


def test_oblique_zone_axis_still_tiles():
    unit = orient("Au", (2, 3, 1))
    assert len(unit) == 4
    table = columns(field("Au", (60, 60), 0.2, zone_axis=(2, 3, 1), cells=3))
    assert len(set(table["count"])) == 1  # every column: 3 repeats of [231], 2 atoms each


# ---------------------------------------------------------------------------------- the field


@pytest.mark.parametrize(
    ("name", "zone", "rotation"),
    [("SrTiO3", (0, 0, 1), 0.0), ("Si", (1, 1, 0), 37.0), ("ZnO", (2, 1, 0), 200.0)],
)
def test_field_box_convention(name, zone, rotation):
    shape, pixel_size = (70, 90), 0.17
    atoms = field(name, shape, pixel_size, zone_axis=zone, thickness=20.0, rotation=rotation)
    _assert_field(atoms, shape, pixel_size)
    assert not atoms.pbc.any()
    assert atoms.cell[2, 2] == pytest.approx(atoms.info["cells"] * orient(name, zone).cell[2, 2])
    assert np.all(atoms.numbers[atoms.get_array("site") >= 0] > 0)


def test_periodic_field_is_marked_periodic():
    atoms = field("SrTiO3", (10, 20), 0.3905, cells=2)
    assert list(atoms.pbc) == [True, True, False]
    assert len(atoms) == 5 * 1 * 2 * 2
    assert list(field("SrTiO3", (10, 20), 0.3905, rotation=90.0).pbc) == [True, True, False]
    assert not field("SrTiO3", (10, 20), 0.3905, rotation=10.0).pbc.any()


def test_thickness_is_rounded_to_whole_cells():
    assert field("Si", (20, 20), 0.2, thickness=20.0).info["cells"] == 4  # 20 / 5.431 = 3.7
    assert field("Si", (20, 20), 0.2, thickness=1.0).info["cells"] == 1
    assert field("Si", (20, 20), 0.2).info["cells"] == 1


def test_rotation_by_90_degrees_keeps_a_four_fold_projection():
    shape, pixel_size = (100, 100), 0.1
    centre = (5.0, 5.0)
    tables = [
        columns(field("SrTiO3", shape, pixel_size, cells=2, rotation=r, shift=centre))
        for r in (0.0, 90.0)
    ]
    first, second = (t[np.hypot(t.x_A - 5, t.y_A - 5) < 4.0] for t in tables)
    assert len(first) == len(second) > 10
    distance, match = cKDTree(second[["x_A", "y_A"]]).query(first[["x_A", "y_A"]])
    assert distance.max() < 1e-6
    assert list(first.species) == list(second.species.iloc[match])


def test_rotation_and_shift_map_a_known_column():
    angle, (dy, dx) = 30.0, (12.0, 10.0)
    table = columns(field("SrTiO3", (200, 200), 0.1, rotation=angle, shift=(dy, dx)))
    sr = table[table.species == "Sr"][["x_A", "y_A"]].to_numpy()
    a = 3.905
    for lattice in [(0, 0), (1, 0), (0, 1), (2, -1)]:
        x, y = lattice[0] * a, lattice[1] * a
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        expected = np.array([c * x - s * y + dx, s * x + c * y + dy])
        assert np.min(np.linalg.norm(sr - expected, axis=1)) < 1e-6


def test_random_rotation_and_shift_reproduce_with_a_seed():
    make = lambda seed: field("Si", (50, 50), 0.2, rotation="random", shift="random", rng=seed)  # noqa: E731
    first, again, other = make(1), make(1), make(2)
    assert first.positions == pytest.approx(again.positions)
    assert first.info["rotation_deg"] != other.info["rotation_deg"]


def test_random_crop_keeps_the_convention():
    big = field("Au", (200, 200), 0.1, cells=2)
    crop = random_crop(big, (64, 80), 0.1, rng=3)
    _assert_field(crop, (64, 80), 0.1)
    assert 0 < len(crop) < len(big)
    with pytest.raises(ValueError, match="larger than the field"):
        random_crop(big, (300, 80), 0.1)


# ------------------------------------------------------------------------------------ columns


def test_columns_of_strontium_titanate():
    cells, pixel_size, shift = 3, 0.1, (0.4, 0.7)
    atoms = field("SrTiO3", (80, 80), pixel_size, cells=cells, shift=shift)
    table = columns(atoms, pixel_size=pixel_size)
    counts = table.groupby("species")["count"].agg(["min", "max"])
    assert counts.loc["Sr"].tolist() == [cells, cells]
    assert counts.loc["Ti-O"].tolist() == [2 * cells, 2 * cells]
    assert counts.loc["O"].tolist() == [cells, cells]
    assert set(table.species) == {"Sr", "Ti-O", "O"}
    assert table.loc[table.species == "Ti-O", "Z"].unique().tolist() == [22]
    assert table.loc[table.species == "Ti-O", "Z_sum"].unique().tolist() == [cells * (22 + 8)]
    assert table["count"].sum() == len(atoms)
    sr = table[table.species == "Sr"]
    cells_from_origin = (sr[["y_A", "x_A"]].to_numpy() - shift) / 3.905
    assert np.abs(cells_from_origin - np.round(cells_from_origin)).max() < 1e-9
    assert table.y.to_numpy() == pytest.approx(table.y_A.to_numpy() / pixel_size)
    assert table.x.to_numpy() == pytest.approx(table.x_A.to_numpy() / pixel_size)


def test_column_labels_index_the_table_rows():
    atoms = field("GaAs", (60, 60), 0.15, zone_axis=(1, 1, 0), cells=2, rotation=11.0)
    labels, table = column_labels(atoms), columns(atoms)
    assert labels.max() + 1 == len(table)
    means = np.array([atoms.positions[labels == k, :2].mean(axis=0) for k in range(len(table))])
    assert means == pytest.approx(table[["x_A", "y_A"]].to_numpy())
    assert np.all(np.diff(table.y_A.round(3)) >= 0)


def test_columns_of_an_empty_field():
    table = columns(field("Au", (10, 10), 0.1)[[]], pixel_size=0.1)
    assert len(table) == 0
    assert {"y", "x", "y_A", "x_A", "Z", "species", "count", "Z_sum"} <= set(table.columns)


# ------------------------------------------------------------------------------------ defects


@pytest.fixture
def sto():
    return field("SrTiO3", (80, 80), 0.1, cells=3, shift=(0.4, 0.7))


def _rows(atoms):
    return {(z, *np.round(p, 6)) for z, p in zip(atoms.numbers, atoms.positions, strict=True)}


def test_vacancies_remove_the_requested_atoms_and_nothing_else(sto):
    before = sto.copy()
    result, removed = vacancies(sto, count=10, element="O", rng=0)
    assert len(result) == len(sto) - 10 and len(removed) == 10
    assert set(removed.symbol) == {"O"}
    assert _rows(result) | _rows(sto[removed["index"].to_numpy()]) == _rows(sto)
    assert sto.positions == pytest.approx(before.positions)  # input untouched
    result, removed = vacancies(sto, fraction=0.1, rng=0)
    assert len(removed) == round(0.1 * len(sto))
    again, removed_again = vacancies(sto, fraction=0.1, rng=0)
    assert removed_again.equals(removed) and again.positions == pytest.approx(result.positions)


def test_vacancies_of_whole_columns(sto):
    table = columns(sto)
    result, removed = vacancies(sto, count=4, element="Sr", whole_columns=True, rng=1)
    assert removed.column.nunique() == 4
    assert len(removed) == 4 * 3
    assert set(table.loc[removed.column.unique(), "species"]) == {"Sr"}
    assert (columns(result).species == "Sr").sum() == (table.species == "Sr").sum() - 4


def test_substitute_changes_only_the_chosen_element(sto):
    result, changed = substitute(sto, "Sr", "La", fraction=0.25, rng=2)
    differ = result.numbers != sto.numbers
    assert differ.sum() == len(changed) == round(0.25 * (sto.numbers == 38).sum())
    assert np.all(sto.numbers[differ] == 38) and np.all(result.numbers[differ] == 57)
    assert result.positions == pytest.approx(sto.positions)
    assert np.all(sto.numbers[changed["index"]] == 38)


def test_adatoms_keep_their_distance():
    host = field("Si", (200, 200), 0.1, cells=2)
    result, added = adatoms(host, "Pt", 12, min_distance=2.5, rng=3)
    assert len(result) == len(host) + 12
    new = result.positions[added["index"]]
    assert new[:, 2] == pytest.approx(np.full(12, host.positions[:, 2].max() + 2.0))
    assert cKDTree(result.positions).query(new, k=2)[0][:, 1].min() >= 2.5
    assert result.get_array("adatom").sum() == 12
    assert np.all(result.get_array("site")[added["index"]] == -1)
    _assert_field(result, (200, 200), 0.1)
    with pytest.raises(ValueError, match="Could place only"):
        adatoms(host, "Pt", 500, min_distance=3.0, rng=3)
    fewer, placed = adatoms(host, "Pt", 500, min_distance=3.0, allow_fewer=True, rng=3)
    assert 10 < len(placed) < 500 and len(fewer) == len(host) + len(placed)


def test_adatoms_on_the_entrance_side_keep_z_positive(sto):
    result, added = adatoms(sto, "Au", 3, side="entrance", rng=4)
    assert result.positions[:, 2].min() == pytest.approx(0.0)
    assert added.z_A.to_numpy() == pytest.approx(np.zeros(3))


def test_interstitial_columns_sit_between_columns(sto):
    result, added = interstitial_columns(sto, "Li", 3, min_distance=1.2, rng=5)
    assert len(added) == 3
    new = result.numbers == 3
    distance = cKDTree(sto.positions[:, :2]).query(result.positions[new, :2])[0]
    assert distance.min() >= 1.2
    assert new.sum() == added["count"].sum()


def test_grain_boundary_has_two_orientations_and_no_clashes():
    angle = 20.0
    atoms, record = grain_boundary(
        "SrTiO3", (160, 160), 0.15, angle=angle, cells=2, line_angle=90.0, offset=0.0, rng=6
    )
    _assert_field(atoms, (160, 160), 0.15)
    grain = atoms.get_array("grain")
    assert set(grain) == {0, 1}
    for k, expected in [(0, angle / 2), (1, 90 - angle / 2)]:
        directions = _directions(columns(atoms[grain == k]), "Sr", 3.905)
        assert np.median(directions) == pytest.approx(expected, abs=0.5)
    close = cKDTree(atoms.positions).query_pairs(record["min_distance_A"] * 0.999)
    assert not close
    assert record["min_distance_A"] == pytest.approx(0.75 * 3.905 / 2)


def test_nanoparticle_sits_on_the_support():
    atoms, record = nanoparticle_on_support(
        (160, 160), 0.2, element="Au", radius=9.0, support_thickness=15.0, rng=7
    )
    _assert_field(atoms, (160, 160), 0.2)
    region = atoms.get_array("region")
    particle, film = atoms.positions[region == 1], atoms.positions[region == 0]
    assert np.all(atoms.numbers[region == 1] == 79) and np.all(atoms.numbers[region == 0] == 6)
    assert particle[:, 2].min() - film[:, 2].max() == pytest.approx(2.0)
    assert film[:, 2].max() < 15.0
    assert len(particle) == record["particle_atoms"] > 100
    assert np.linalg.norm(np.ptp(particle[:, :2], axis=0)) < 2 * 1.3 * 9.0 * math.sqrt(2)


def test_nanoparticle_in_vacuum_along_a_chosen_zone_axis():
    atoms, record = nanoparticle_on_support(
        (100, 100),
        0.2,
        element="Pt",
        radius=6.0,
        form="sphere",
        zone_axis=(0, 0, 1),
        rotation=0.0,
        support=None,
        rng=1,
    )
    assert record["support_atoms"] == 0 and set(atoms.get_array("region")) == {1}
    assert atoms.positions[:, 2].min() == pytest.approx(2.0)
    assert set(columns(atoms)["count"]) <= set(range(1, 7))  # [001] columns: a / 2 apart in z
    assert _nearest(columns(atoms)) == pytest.approx(3.924 / 2)


def test_amorphous_film_density_and_hard_core():
    film = amorphous_film((100, 120), 0.2, 20.0, min_distance=1.4, rng=8)
    assert len(film) == round(0.1 * 20 * 24 * 20)
    box = np.diag(film.cell.array) + np.array([0, 0, 10])
    assert cKDTree(film.positions, boxsize=box).query(film.positions, k=2)[0][:, 1].min() >= 1.4


def test_surface_edge_leaves_vacuum():
    host = field("SrTiO3", (300, 300), 0.1, cells=2, rotation=10.0)
    result, record = surface_edge(host, vacuum_fraction=0.4, angle=0.0, rng=9)
    assert record["vacuum_fraction"] == 0.4
    assert result.positions[:, 0].max() < 0.6 * 30.0
    assert len(result) == pytest.approx(0.6 * len(host), rel=0.05)
    assert set(np.bincount(column_labels(result))) <= {2, 4}  # whole columns kept
    rough, _ = surface_edge(host, vacuum_fraction=0.4, angle=0.0, roughness=3.0, rng=9)
    assert len(rough) < len(result) and not rough.pbc.any()


def test_random_structures_follow_the_field_convention_and_reproduce():
    kinds = set()
    for seed in range(24):
        atoms, record = random_structure((96, 128), 0.15, rng=seed)
        kinds.add(record["kind"])
        _assert_field(atoms, (96, 128), 0.15)
    assert {"crystal", "grain_boundary", "edge", "nanoparticle"} <= kinds
    first, again = random_structure((64, 64), 0.2, 5), random_structure((64, 64), 0.2, 5)
    assert first[1] == again[1]
    assert first[0].positions == pytest.approx(again[0].positions)
    assert list(first[0].numbers) == list(again[0].numbers)


# -------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: field("SrTiO3", (10, 10), 0.1, thickness=0.0), r"thickness=.*\(0, 10000\] Å"),
        (lambda: field("SrTiO3", (10, 10), -0.1), r"pixel_size=.*Å/px"),
        (lambda: field("SrTiO3", (10, 0), 0.1), "shape must be two positive integers"),
        (lambda: field("SrTiO3", (10, 10), 0.1, cells=0), r"cells=.*\[1, 1000\]"),
        (lambda: field("SrTiO3", (10, 10), 0.1, zone_axis=(0, 0, 0)), r"\[000\]"),
        (lambda: field("SrTiO3", (10, 10), 0.1, rotation="spin"), "'random'"),
        (lambda: field("SrTiO3", (10, 10), 0.1, shift=(1.0, 2.0, 3.0)), r"shift must be"),
        (
            lambda: vacancies(field("Au", (20, 20), 0.2), fraction=1.5),
            r"fraction=\.\.\. of vacancies must lie in \[0, 1\]",
        ),
        (
            lambda: vacancies(field("Au", (20, 20), 0.2), fraction=-0.1),
            r"fraction=\.\.\. of vacancies must lie in \[0, 1\]",
        ),
        (lambda: vacancies(field("Au", (20, 20), 0.2)), "exactly one of fraction and count"),
        (lambda: vacancies(field("Au", (20, 20), 0.2), count=3, element="O"), "No O atoms"),
        (lambda: substitute(field("Au", (20, 20), 0.2), "Au", "Xx", count=1), "Unknown chemical"),
        (lambda: nanoparticle_on_support((20, 20), 0.2, form="cube"), "form must be"),
        (lambda: amorphous_film((20, 20), 0.2, 10.0, density=1.0), "cannot keep"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_columns_give_the_ordered_share_of_each_column():
    """A column of one crystal atom (Sr) and one amorphous atom (C) is 38/44 ordered."""
    from ase import Atoms

    atoms = Atoms("SrCO", positions=[(1, 1, 0), (1.1, 1, 3), (4, 4, 0)], cell=[6, 6, 6])
    atoms.set_array("ordered", np.array([True, False, True]))
    table = columns(atoms)
    assert table["ordered"].round(4).tolist() == [round(38 / 44, 4), 1.0]
    atoms.set_array("ordered", None)
    assert "ordered" not in columns(atoms)
