"""Defects, nanoparticles on amorphous supports, and random structures for training.

Every function takes its randomness from a ``numpy.random.Generator`` (or a seed), returns a new
``ase.Atoms`` (the input is never changed) and, with it, a record of what it did: a DataFrame of
the atoms touched (positions ``y_A``, ``x_A``, ``z_A`` [Å]) or a dict of the parameters drawn.
Structures follow the field convention of :mod:`atomlens.physics.structures`. Removing or changing
atoms keeps ``pbc`` (the box becomes a periodic supercell with the defect); cutting an edge or
joining grains makes the field non-periodic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from scipy.spatial import cKDTree

from atomlens.physics import structures
from atomlens.physics.structures import (
    LAYERED,
    MATERIALS,
    ZONE_AXES,
    MaterialLike,
    Rng,
    _as_rng,
    _draw_rotation,
    _frame,
    _rotation_z,
    _supercell_matrix,
    _unit_for,
    _validate_fraction,
    _validate_positive,
    _validate_shape,
    _zone_vector,
    column_labels,
    field,
)

#: Elements that :func:`random_structure` substitutes into a host.
DOPANTS = tuple("B C N Si S Ca Mn Fe Co Ni Ga Se Zr Nb Mo In Ba La Er Hf W Re Pt Au Pb Bi".split())
#: Elements that :func:`random_structure` puts on surfaces and in interstitial columns.
ADATOMS = ("C", "O", "Si", "Fe", "Co", "Se", "Mo", "W", "Re", "Pt", "Au")
#: fcc metals for nanoparticles.
NANOPARTICLE_METALS = ("Au", "Pt", "Pd", "Ag", "Cu")


def _number(element: str | int) -> int:
    if isinstance(element, str):
        if element not in atomic_numbers:
            raise ValueError(f"Unknown chemical symbol {element!r}.")
        return atomic_numbers[element]
    if not 0 < int(element) < len(chemical_symbols):
        raise ValueError(f"Unknown atomic number {element!r}.")
    return int(element)


def _atom_table(atoms: Atoms, index: np.ndarray) -> pd.DataFrame:
    positions = atoms.positions[index]
    numbers = atoms.numbers[index]
    return pd.DataFrame(
        {
            "index": np.asarray(index, dtype=int),
            "symbol": [chemical_symbols[z] for z in numbers],
            "Z": numbers.astype(int),
            "y_A": positions[:, 1],
            "x_A": positions[:, 0],
            "z_A": positions[:, 2],
        }
    )


def _how_many(available: int, fraction: float | None, count: int | None, what: str) -> int:
    if (fraction is None) == (count is None):
        raise ValueError(f"Give exactly one of fraction and count for {what}.")
    if fraction is not None:
        return math.floor(_validate_fraction(fraction) * available + 0.5)
    if int(count) != count or not 0 <= count <= available:
        raise ValueError(f"count must be an integer in [0, {available}] for {what}, got {count!r}.")
    return int(count)


def _element_mask(atoms: Atoms, element: str | int | None) -> np.ndarray:
    if element is None:
        return np.ones(len(atoms), dtype=bool)
    mask = atoms.numbers == _number(element)
    if not mask.any():
        present = sorted(set(atoms.get_chemical_symbols()))
        raise ValueError(f"No {element} atoms in the structure; it holds {', '.join(present)}.")
    return mask


def vacancies(
    atoms: Atoms,
    *,
    fraction: float | None = None,
    count: int | None = None,
    element: str | int | None = None,
    whole_columns: bool = False,
    tolerance: float = 0.3,
    rng: Rng = None,
) -> tuple[Atoms, pd.DataFrame]:
    """Remove atoms, or whole projected columns, chosen at random.

    Parameters
    ----------
    atoms : ase.Atoms
    fraction, count : float or int
        How many to remove: a fraction in [0, 1] (rounded) or a number; give one.
    element : str or int, optional
        Remove only atoms of this element (or, with ``whole_columns``, its atoms in the chosen
        columns that contain it).
    whole_columns : bool
        Count and remove projected columns (see :func:`~atomlens.physics.structures.columns`)
        instead of single atoms.
    tolerance : float
        Column tolerance [Å].
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    atoms : ase.Atoms
        Without the removed atoms.
    removed : pandas.DataFrame
        ``index`` (in the input), ``symbol``, ``Z``, ``y_A``, ``x_A``, ``z_A`` [Å], and ``column``
        when ``whole_columns``.
    """
    rng = _as_rng(rng)
    candidates = _element_mask(atoms, element)
    if whole_columns:
        labels = column_labels(atoms, tolerance)
        pool = np.unique(labels[candidates])
        chosen = rng.choice(pool, _how_many(len(pool), fraction, count, "vacancies"), False)
        removed = np.flatnonzero(candidates & np.isin(labels, chosen))
    else:
        pool = np.flatnonzero(candidates)
        chosen = rng.choice(pool, _how_many(len(pool), fraction, count, "vacancies"), False)
        removed = np.sort(chosen)
    table = _atom_table(atoms, removed)
    if whole_columns:
        table["column"] = labels[removed]
    keep = np.ones(len(atoms), dtype=bool)
    keep[removed] = False
    return atoms[keep], table


def substitute(
    atoms: Atoms,
    old: str | int,
    new: str | int,
    *,
    fraction: float | None = None,
    count: int | None = None,
    rng: Rng = None,
) -> tuple[Atoms, pd.DataFrame]:
    """Replace randomly chosen atoms of one element by another.

    Parameters
    ----------
    atoms : ase.Atoms
    old, new : str or int
        Element replaced and element put in its place.
    fraction, count : float or int
        Of the ``old`` atoms: a fraction in [0, 1] (rounded) or a number; give one.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    atoms : ase.Atoms
        A copy with the substitutions (positions and the other arrays unchanged).
    changed : pandas.DataFrame
        The changed atoms as they were (``index``, ``symbol``, ``Z``, positions [Å]) and
        ``new_symbol``.
    """
    rng = _as_rng(rng)
    pool = np.flatnonzero(_element_mask(atoms, old))
    chosen = np.sort(rng.choice(pool, _how_many(len(pool), fraction, count, "substitute"), False))
    result = atoms.copy()
    result.numbers[chosen] = _number(new)
    table = _atom_table(atoms, chosen)
    table["new_symbol"] = chemical_symbols[_number(new)]
    return result, table


def _append(atoms: Atoms, numbers: np.ndarray, positions: np.ndarray, **values) -> Atoms:
    """A copy of atoms with more atoms; their per-atom arrays get ``values``, else -1 (integer
    arrays: site, grain, region), False (boolean) or 0."""
    extra = Atoms(numbers=numbers, positions=positions)
    for name, array in atoms.arrays.items():
        if name not in ("numbers", "positions"):
            default = -1 if np.issubdtype(array.dtype, np.signedinteger) else 0
            fill = np.full((len(extra), *array.shape[1:]), values.get(name, default), array.dtype)
            extra.set_array(name, fill)
    for name in values:
        if name not in atoms.arrays:
            raise ValueError(f"Unknown per-atom array {name!r}.")
    result = atoms.copy()
    result.extend(extra)
    return result


def _free_points(
    occupied: np.ndarray,
    count: int,
    size: np.ndarray,
    min_distance: float,
    rng: np.random.Generator,
    *,
    level: float | None = None,
    allow_fewer: bool = False,
    what: str = "points",
) -> np.ndarray:
    """Up to count random (x, y) in [0, size) at least min_distance from each other and from the
    occupied points: (x, y), or (x, y, z) with the new points at z = level."""
    tree = cKDTree(occupied) if len(occupied) else None
    found = np.zeros((0, 2))
    for _ in range(30):
        if len(found) >= count:
            break
        trial = rng.uniform(0, 1, (max(64, 8 * count), 2)) * size
        if tree is not None:
            query = trial if level is None else np.c_[trial, np.full(len(trial), level)]
            trial = trial[tree.query(query, distance_upper_bound=min_distance)[0] >= min_distance]
        if len(found) and len(trial):
            trial = trial[cKDTree(found).query(trial)[0] >= min_distance]
        clashes = cKDTree(trial).query_pairs(min_distance, output_type="ndarray")
        keep = np.ones(len(trial), bool)
        keep[clashes[:, 1]] = False
        found = np.vstack([found, trial[keep][: count - len(found)]])
    if len(found) < count and not allow_fewer:
        raise ValueError(
            f"Could place only {len(found)} of {count} {what} at least {min_distance} Å apart; "
            "ask for fewer, lower min_distance, or pass allow_fewer=True."
        )
    return found


def adatoms(
    atoms: Atoms,
    element: str | int,
    count: int,
    *,
    min_distance: float = 1.5,
    height: float = 2.0,
    side: str = "exit",
    allow_fewer: bool = False,
    rng: Rng = None,
) -> tuple[Atoms, pd.DataFrame]:
    """Add single atoms at random places on a surface of the field.

    Parameters
    ----------
    atoms : ase.Atoms
        A field (orthorhombic cell).
    element : str or int
    count : int
    min_distance : float
        Smallest distance to any other atom [Å].
    height : float
        Height above the outermost atoms [Å].
    side : {'exit', 'entrance'}
        The surface of largest z (where the beam leaves; it travels along +z) or of smallest z.
    allow_fewer : bool
        Place as many as fit instead of raising ValueError.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    atoms : ase.Atoms
        With the adatoms (``site`` -1) appended, shifted up if needed so that every z >= 0, and
        the cell height grown to hold them.
    added : pandas.DataFrame
        ``index`` (in the result), ``symbol``, ``Z``, ``y_A``, ``x_A``, ``z_A`` [Å].
    """
    rng = _as_rng(rng)
    min_distance = _validate_positive(min_distance, "min_distance")
    height = _validate_positive(height, "height")
    if side not in ("exit", "entrance"):
        raise ValueError(f"side must be 'exit' or 'entrance', got {side!r}.")
    count = _validate_count(count)
    z = atoms.positions[:, 2]
    level = (z.max() + height if side == "exit" else z.min() - height) if len(atoms) else 0.0
    xy = _free_points(
        atoms.positions,
        count,
        atoms.cell.lengths()[:2],
        min_distance,
        rng,
        level=level,
        allow_fewer=allow_fewer,
        what="adatoms",
    )
    positions = np.c_[xy, np.full(len(xy), level)]
    source = atoms.copy()
    if "adatom" not in source.arrays:
        source.set_array("adatom", np.zeros(len(source), bool))
    result = _append(source, np.full(len(xy), _number(element)), positions, adatom=True)
    _fit_box(result)
    return result, _atom_table(result, np.arange(len(atoms), len(result)))


def _validate_count(count: int) -> int:
    if int(count) != count or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}.")
    return int(count)


def _fit_box(atoms: Atoms) -> None:
    """Shift atoms up so that z >= 0 and grow the cell height to the highest atom, in place."""
    if not len(atoms):
        return
    low = atoms.positions[:, 2].min()
    if low < 0:
        atoms.positions[:, 2] -= low
    cell = atoms.cell.array.copy()
    cell[2, 2] = max(cell[2, 2], atoms.positions[:, 2].max())
    atoms.set_cell(cell)


def interstitial_columns(
    atoms: Atoms,
    element: str | int,
    count: int,
    *,
    min_distance: float = 1.2,
    spacing: float = 3.0,
    occupancy: float = 1.0,
    allow_fewer: bool = False,
    rng: Rng = None,
) -> tuple[Atoms, pd.DataFrame]:
    """Add columns of atoms in the open channels between the projected columns.

    Parameters
    ----------
    atoms : ase.Atoms
        A field.
    element : str or int
    count : int
        Number of new columns.
    min_distance : float
        Smallest projected distance to any atom and between new columns [Å].
    spacing : float
        Distance between the new atoms along z [Å]; they span the slab's z range.
    occupancy : float
        Fraction in [0, 1] of the sites along z that are filled (at least one per column).
    allow_fewer : bool
        Place as many columns as fit instead of raising ValueError.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    atoms : ase.Atoms
        With the new atoms (``site`` -1).
    added : pandas.DataFrame
        One row per new column: ``y_A``, ``x_A`` [Å], ``symbol``, ``count``.
    """
    rng = _as_rng(rng)
    min_distance = _validate_positive(min_distance, "min_distance")
    spacing = _validate_positive(spacing, "spacing")
    occupancy = _validate_fraction(occupancy, "occupancy")
    size = atoms.cell.lengths()[:2]
    xy = _free_points(
        atoms.positions[:, :2],
        _validate_count(count),
        size,
        min_distance,
        rng,
        allow_fewer=allow_fewer,
        what="interstitial columns",
    )
    z = atoms.positions[:, 2]
    low, high = (z.min(), z.max()) if len(atoms) else (0.0, 0.0)
    levels = np.arange(low + spacing / 2, high + 1e-9, spacing)
    levels = levels if len(levels) else np.array([(low + high) / 2])
    filled = rng.random((len(xy), len(levels))) < occupancy
    filled[np.arange(len(xy)), rng.integers(0, len(levels), len(xy))] = True
    column, level = np.nonzero(filled)
    positions = np.c_[xy[column], levels[level]]
    result = _append(atoms, np.full(len(positions), _number(element)), positions)
    _fit_box(result)
    table = pd.DataFrame(
        {
            "y_A": xy[:, 1],
            "x_A": xy[:, 0],
            "symbol": chemical_symbols[_number(element)],
            "count": filled.sum(axis=1),
        }
    )
    return result, table


def _line(
    size: np.ndarray, angle: float | None, offset: float | None, rng: np.random.Generator
) -> tuple[float, np.ndarray, np.ndarray]:
    """A straight line [deg, (x, y) point, unit normal] near the box centre."""
    angle = float(rng.uniform(0, 180)) if angle is None else float(angle)
    normal = np.array([-math.sin(math.radians(angle)), math.cos(math.radians(angle))])
    offset = float(rng.uniform(-0.2, 0.2) * size.min()) if offset is None else float(offset)
    return angle, size / 2 + offset * normal, normal


def _resolve_clashes(
    first: np.ndarray, second: np.ndarray, min_distance: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Keep-masks removing, for each pair closer than min_distance, one atom at random."""
    keep_first, keep_second = np.ones(len(first), bool), np.ones(len(second), bool)
    pairs = cKDTree(first).sparse_distance_matrix(
        cKDTree(second), min_distance, output_type="ndarray"
    )
    for i, j, _ in pairs[np.argsort(pairs["v"])]:
        if keep_first[i] and keep_second[j]:
            if rng.random() < 0.5:
                keep_first[i] = False
            else:
                keep_second[j] = False
    return keep_first, keep_second


def grain_boundary(
    material: MaterialLike,
    shape: Sequence[int],
    pixel_size: float,
    *,
    zone_axis: Sequence[int] = (0, 0, 1),
    angle: float = 10.0,
    thickness: float | None = None,
    cells: int | None = None,
    rotation: float | str = 0.0,
    line_angle: float | None = None,
    offset: float | None = None,
    min_distance: float | None = None,
    rng: Rng = None,
) -> tuple[Atoms, dict]:
    """Two grains of one crystal, turned by +-angle / 2 about z, meeting along a straight line.

    Parameters
    ----------
    material : str, path or ase.Atoms
        The crystal.
    shape : (int, int)
        Image shape (rows, cols) [px].
    pixel_size : float
        [Å].
    zone_axis, thickness, cells
        As for :func:`~atomlens.physics.structures.field`.
    angle : float
        Misorientation [deg]: grain 0 is turned by rotation + angle / 2, grain 1 by
        rotation - angle / 2, each with a random shift.
    rotation : float or 'random'
        Mean in-plane rotation [deg].
    line_angle : float, optional
        Direction of the boundary line from +x towards +y [deg]; random if None.
    offset : float, optional
        Distance of the line from the box centre along its normal [Å]; random (within 20 % of the
        box) if None.
    min_distance : float, optional
        Of each pair of atoms from different grains closer than this [Å], one is removed; default
        0.75 of the crystal's shortest interatomic distance.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    atoms : ase.Atoms
        Non-periodic field with a ``grain`` array (0 or 1).
    record : dict
        The parameters drawn and the number of atoms removed at the boundary.
    """
    rng = _as_rng(rng)
    if not math.isfinite(angle):
        raise ValueError(f"angle must be finite [deg], got {angle!r}.")
    base = _draw_rotation(rotation, rng)
    rows, cols = _validate_shape(shape)
    size = np.array([cols, rows]) * _validate_positive(pixel_size, "pixel_size")
    options = dict(zone_axis=zone_axis, thickness=thickness, cells=cells, shift="random", rng=rng)
    grains = [
        field(material, shape, pixel_size, rotation=base + s * angle / 2, **options)
        for s in (1, -1)
    ]
    line_angle, point, normal = _line(size, line_angle, offset, rng)
    grains = [
        g[((g.positions[:, :2] - point) @ normal < 0) == (k == 0)] for k, g in enumerate(grains)
    ]
    if min_distance is None:
        min_distance = 0.75 * _shortest_distance(material, zone_axis)
    min_distance = _validate_positive(min_distance, "min_distance")
    masks = _resolve_clashes(grains[0].positions, grains[1].positions, min_distance, rng)
    removed = sum(int((~m).sum()) for m in masks)
    for k, mask in enumerate(masks):
        grains[k] = grains[k][mask]
        grains[k].set_array("grain", np.full(len(grains[k]), k))
    atoms = grains[0] + grains[1]
    atoms.pbc = False
    atoms.info.pop("shift_A", None)
    atoms.info["rotation_deg"] = base
    record = {
        "type": "grain_boundary",
        "angle_deg": float(angle),
        "rotation_deg": base,
        "line_angle_deg": line_angle,
        "line_point_A": [float(point[1]), float(point[0])],
        "min_distance_A": min_distance,
        "removed": removed,
    }
    return atoms, record


def _shortest_distance(material: MaterialLike, zone_axis: Sequence[int]) -> float:
    """Shortest interatomic distance of the crystal [Å]."""
    unit = _unit_for(material, zone_axis)
    block = unit.repeat((3, 3, 3))
    distances = cKDTree(block.positions).query(block.positions, k=2)[0][:, 1]
    return float(distances.min())


def amorphous_film(
    shape: Sequence[int],
    pixel_size: float,
    thickness: float,
    *,
    element: str | int = "C",
    density: float = 0.1,
    min_distance: float = 1.4,
    rng: Rng = None,
) -> Atoms:
    """Random atoms at a given density with a hard-core minimum distance, periodic in x and y.

    Parameters
    ----------
    shape : (int, int)
        Image shape (rows, cols) [px].
    pixel_size : float
        [Å].
    thickness : float
        [Å]; atoms fill 0 <= z < thickness.
    element : str or int
    density : float
        [atoms / Å^3]; 0.1 is amorphous carbon of about 2 g/cm^3.
    min_distance : float
        [Å]; distances are measured across the periodic x and y faces.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    ase.Atoms
        A field, pbc (True, True, False), with ``site`` -1.
    """
    rng = _as_rng(rng)
    rows, cols = _validate_shape(shape)
    pixel_size = _validate_positive(pixel_size, "pixel_size")
    thickness = _validate_positive(thickness, "thickness")
    density = _validate_positive(density, "density", "atoms / Å^3")
    min_distance = _validate_positive(min_distance, "min_distance")
    size = np.array([cols * pixel_size, rows * pixel_size, thickness])
    count = round(density * size.prod())
    if count * math.pi / 6 * min_distance**3 > 0.35 * size.prod():
        raise ValueError(
            f"{density} atoms / Å^3 cannot keep {min_distance} Å apart at random (packing > 35 %); "
            "lower the density or min_distance."
        )
    positions = _hard_core(count, size, min_distance, rng)
    atoms = Atoms(numbers=np.full(len(positions), _number(element)), positions=positions)
    atoms.set_cell(np.diag(size))
    atoms.pbc = (True, True, False)
    atoms.set_array("site", np.full(len(atoms), -1))
    return atoms


def _hard_core(
    count: int, size: np.ndarray, min_distance: float, rng: np.random.Generator
) -> np.ndarray:
    """count uniform points with every pair >= min_distance apart (periodic in x, y).

    Points that clash are dropped (the later of each pair) and redrawn, each from 4 candidates,
    until all fit: close to random sequential addition, but vectorised.
    """
    box = np.array([size[0], size[1], size[2] + 2 * min_distance])
    points = np.zeros((0, 3))
    for _ in range(100):
        missing = count - len(points)
        if missing == 0:
            break
        trial = rng.uniform(0, 1, (missing, 4, 3)) * size
        if len(points):
            free = cKDTree(points, boxsize=box).query(
                trial.reshape(-1, 3), distance_upper_bound=min_distance
            )[0]
            free = (free >= min_distance).reshape(missing, 4)
        else:
            free = np.ones((missing, 4), bool)
        has = free.any(axis=1)
        new = trial[has, free[has].argmax(axis=1)]
        pairs = cKDTree(new, boxsize=box).query_pairs(min_distance, output_type="ndarray")
        keep = np.ones(len(new), bool)
        keep[pairs[:, 1]] = False
        points = np.vstack([points, new[keep]])
    return points


def _particle(
    element: MaterialLike, radius: float, form: str, zone_axis: Sequence[int], rotation: float
) -> Atoms:
    """A crystal cut as a sphere or truncated octahedron, centred at the origin, zone axis on z."""
    crystal = structures.material(element)
    cell = crystal.cell.array
    reach = radius * (1.3 if form == "octahedron" else 1.0)
    n = [math.ceil(reach / length) + 1 for length in np.linalg.norm(cell, axis=1)]
    grid = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in n], indexing="ij"), -1)
    r = ((grid.reshape(-1, 3) @ cell)[:, None] + crystal.positions).reshape(-1, 3)
    numbers = np.tile(crystal.numbers, len(r) // len(crystal))
    if form == "sphere":
        inside = np.linalg.norm(r, axis=1) <= radius
    else:
        if not np.allclose(cell, np.diag(np.diag(cell))) or np.ptp(np.diag(cell)) > 1e-6:
            raise ValueError("A truncated octahedron needs a cubic crystal; use form='sphere'.")
        inside = (np.abs(r).sum(axis=1) <= math.sqrt(3) * radius) & (
            np.abs(r).max(axis=1) <= 2 / math.sqrt(3) * radius
        )
    turn = _rotation_z(rotation) @ _frame(
        _supercell_matrix(cell, _zone_vector(cell, zone_axis)) @ cell
    )
    return Atoms(numbers=numbers[inside], positions=r[inside] @ turn.T)


def nanoparticle_on_support(
    shape: Sequence[int],
    pixel_size: float,
    *,
    element: MaterialLike = "Au",
    radius: float = 10.0,
    form: str = "octahedron",
    zone_axis: Sequence[int] | None = None,
    rotation: float | str = "random",
    support: str | int | None = "C",
    support_thickness: float = 30.0,
    density: float = 0.1,
    min_distance: float = 1.4,
    gap: float = 2.0,
    rng: Rng = None,
) -> tuple[Atoms, dict]:
    """A crystalline nanoparticle lying on an amorphous film.

    Parameters
    ----------
    shape : (int, int)
        Image shape (rows, cols) [px].
    pixel_size : float
        [Å].
    element : str, path or ase.Atoms
        The particle's crystal (an fcc metal from :data:`NANOPARTICLE_METALS` for example).
    radius : float
        [Å]: the sphere's radius, or the distance of the {111} faces of the truncated octahedron
        from its centre ({100} faces at 2 / sqrt(3) of it, the regular Archimedean solid).
    form : {'octahedron', 'sphere'}
        Truncated octahedron (cubic crystals only) or sphere.
    zone_axis : sequence of ints, optional
        The particle's zone axis along the beam; random from the library's if None.
    rotation : float or 'random'
        In-plane rotation [deg].
    support : str or int, optional
        Element of the amorphous film; None for a particle in vacuum.
    support_thickness : float
        [Å].
    density, min_distance
        Of the film [atoms / Å^3], [Å] (see :func:`amorphous_film`).
    gap : float
        Distance between the film's top atom and the particle's lowest [Å].
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    atoms : ase.Atoms
        Non-periodic field, film at 0 <= z < support_thickness, the particle above (on the exit
        side), cut to the box; array ``region`` is 0 for the film and 1 for the particle.
    record : dict
        The parameters drawn, the particle's centre (y, x, z) [Å] and the atom counts.
    """
    rng = _as_rng(rng)
    rows, cols = _validate_shape(shape)
    size = np.array([cols, rows]) * _validate_positive(pixel_size, "pixel_size")
    radius = _validate_positive(radius, "radius")
    gap = _validate_positive(gap, "gap")
    if form not in ("octahedron", "sphere"):
        raise ValueError(f"form must be 'octahedron' or 'sphere', got {form!r}.")
    if zone_axis is None:
        axes = ZONE_AXES.get(str(element), ((0, 0, 1),))
        zone_axis = axes[rng.integers(len(axes))]
    angle = _draw_rotation(rotation, rng)
    particle = _particle(element, radius, form, zone_axis, angle)
    if support is None:
        film = Atoms(cell=np.diag([*size, 0.0]))
        film.set_array("site", np.zeros(0, int))
    else:
        film = amorphous_film(
            shape,
            pixel_size,
            support_thickness,
            element=support,
            density=density,
            min_distance=min_distance,
            rng=rng,
        )
    centre = np.r_[rng.uniform(np.minimum(radius, size / 2), np.maximum(size - radius, size / 2))]
    top = film.positions[:, 2].max() if len(film) else 0.0
    low = particle.positions[:, 2].min() if len(particle) else 0.0
    centre = np.r_[centre, top + gap - low]
    particle.positions += centre
    inside = np.all((particle.positions[:, :2] >= 0) & (particle.positions[:, :2] < size), axis=1)
    particle = particle[inside]
    film.set_array("region", np.zeros(len(film), int))
    atoms = _append(film, particle.numbers, particle.positions, region=1)
    atoms.pbc = False
    _fit_box(atoms)
    record = {
        "type": "nanoparticle",
        "element": str(element),
        "form": form,
        "radius_A": radius,
        "zone_axis": [int(i) for i in zone_axis],
        "rotation_deg": angle,
        "centre_A": [float(centre[1]), float(centre[0]), float(centre[2])],
        "particle_atoms": len(particle),
        "support": None if support is None else str(support),
        "support_thickness_A": float(support_thickness) if support is not None else 0.0,
        "support_atoms": len(film),
    }
    return atoms, record


def surface_edge(
    atoms: Atoms,
    *,
    vacuum_fraction: float | tuple[float, float] = (0.2, 0.5),
    angle: float | None = None,
    roughness: float = 0.0,
    tolerance: float = 0.3,
    rng: Rng = None,
) -> tuple[Atoms, dict]:
    """Cut the field along a straight line so that part of it is vacuum (a crystal edge).

    Parameters
    ----------
    atoms : ase.Atoms
        A field.
    vacuum_fraction : float or (float, float)
        Fraction of the box area left empty, or a range to draw it from uniformly.
    angle : float, optional
        Direction of the edge's outward normal from +x towards +y [deg]; random if None.
    roughness : float
        Each projected column near the edge is kept or dropped as if the edge lay up to this much
        deeper [Å], drawn per column, which makes a ragged edge.
    tolerance : float
        Column tolerance [Å] for the roughness.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    atoms : ase.Atoms
        The atoms on the inner side, non-periodic. Whole columns are kept or removed.
    record : dict
        ``normal_angle_deg``, ``vacuum_fraction``, ``line_point_A`` (y, x) [Å], ``removed``.
    """
    rng = _as_rng(rng)
    if not (math.isfinite(roughness) and roughness >= 0):
        raise ValueError(f"roughness must be >= 0 [Å], got {roughness!r}.")
    low, high = np.broadcast_to(np.asarray(vacuum_fraction, float), (2,))
    fraction = _validate_fraction(float(rng.uniform(low, high)) if high > low else float(low))
    angle = float(rng.uniform(0, 360)) if angle is None else float(angle)
    normal = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    size = atoms.cell.lengths()[:2]
    grid = np.stack(np.meshgrid(*[np.linspace(0, s, 65) for s in size]), -1).reshape(-1, 2)
    threshold = float(np.quantile(grid @ normal, 1 - fraction))
    depth = atoms.positions[:, :2] @ normal
    if roughness > 0:
        labels = column_labels(atoms, tolerance)
        depth = depth + rng.uniform(0, roughness, labels.max() + 1)[labels]
    keep = depth < threshold
    result = atoms[keep]
    result.pbc = False
    point = size / 2 + (threshold - (size / 2) @ normal) * normal
    record = {
        "type": "edge",
        "normal_angle_deg": angle,
        "vacuum_fraction": fraction,
        "roughness_A": float(roughness),
        "line_point_A": [float(point[1]), float(point[0])],
        "removed": int((~keep).sum()),
    }
    return result, record


def _draw_crystal(
    shape: Sequence[int], pixel_size: float, rng: np.random.Generator, kind: str
) -> tuple[Atoms, dict]:
    name = str(rng.choice(MATERIALS))
    axes = ZONE_AXES[name]
    zone = axes[rng.integers(len(axes))]
    depth = _unit_for(name, zone).cell[2, 2]
    cells = 1 if name in LAYERED else int(rng.integers(1, max(1, int(40 // depth)) + 1))
    options = dict(zone_axis=zone, cells=cells, rotation="random", rng=rng)
    record: dict = {"material": name, "zone_axis": list(zone), "cells": cells}
    if kind == "grain_boundary":
        angle = float(rng.uniform(5, 40))
        atoms, record["grain_boundary"] = grain_boundary(
            name, shape, pixel_size, angle=angle, **options
        )
    else:
        atoms = field(name, shape, pixel_size, shift="random", **options)
        record["shift_A"] = atoms.info["shift_A"]
    record.update(rotation_deg=atoms.info["rotation_deg"], thickness_A=atoms.info["thickness_A"])
    if kind == "edge":
        atoms, record["edge"] = surface_edge(atoms, roughness=float(rng.uniform(0, 3)), rng=rng)
    return atoms, record


def _draw_defects(atoms: Atoms, rng: np.random.Generator) -> tuple[Atoms, list[dict]]:
    drawn = []
    present = sorted(set(atoms.get_chemical_symbols()))
    if len(atoms) and rng.random() < 0.5:
        element, whole = str(rng.choice(present)), bool(rng.random() < 0.3)
        fraction = float(rng.uniform(0, 0.05 if whole else 0.1))
        atoms, table = vacancies(
            atoms, fraction=fraction, element=element, whole_columns=whole, rng=rng
        )
        drawn.append(
            dict(
                type="vacancies",
                element=element,
                fraction=fraction,
                whole_columns=whole,
                count=len(table),
            )
        )
    if len(atoms) and rng.random() < 0.3:
        old = str(rng.choice(sorted(set(atoms.get_chemical_symbols()))))
        new = str(rng.choice([d for d in DOPANTS if d != old]))
        fraction = float(rng.uniform(0, 0.1))
        atoms, table = substitute(atoms, old, new, fraction=fraction, rng=rng)
        drawn.append(dict(type="substitute", old=old, new=new, fraction=fraction, count=len(table)))
    area = atoms.cell[0, 0] * atoms.cell[1, 1]
    for kind, chance in (("adatoms", 0.3), ("interstitial_columns", 0.1)):
        if rng.random() < chance:
            element = str(rng.choice(ADATOMS))
            wanted = int(rng.integers(1, 2 + area / (150 if kind == "adatoms" else 600)))
            add = adatoms if kind == "adatoms" else interstitial_columns
            atoms, table = add(atoms, element, wanted, allow_fewer=True, rng=rng)
            drawn.append({"type": kind, "element": element, "count": len(table)})
    return atoms, drawn


def random_structure(
    shape: Sequence[int], pixel_size: float, rng: Rng = None
) -> tuple[Atoms, dict]:
    """A random field for training: a material, zone axis, rotation, thickness and defects.

    Draws one of: a crystal (70 %), a grain boundary (10 %), a crystal edge (10 %) or an fcc
    nanoparticle on amorphous carbon (10 %). The crystal's material and zone axis come from
    :data:`~atomlens.physics.structures.ZONE_AXES`, its rotation is uniform, its thickness 1 to
    about 40 Å (one layer for 2D materials). Crystals then get, independently, vacancies (50 %,
    up to 10 % of one element's atoms or 5 % of its columns), substitutions (30 %, up to 10 % of
    one element, by a member of :data:`DOPANTS`), adatoms (30 %) and interstitial columns (10 %).

    Parameters
    ----------
    shape : (int, int)
        Image shape (rows, cols) [px].
    pixel_size : float
        [Å].
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    atoms : ase.Atoms
        The field.
    record : dict
        What was drawn (JSON-serialisable): ``kind``, ``material``, ``zone_axis``,
        ``rotation_deg``, ``cells``, ``thickness_A``, ``defects`` and the records of the grain
        boundary, edge or nanoparticle.
    """
    rng = _as_rng(rng)
    _validate_shape(shape)
    pixel_size = _validate_positive(pixel_size, "pixel_size")
    kind = str(
        rng.choice(["crystal", "grain_boundary", "edge", "nanoparticle"], p=[0.7, 0.1, 0.1, 0.1])
    )
    record: dict = {"kind": kind, "shape": [int(n) for n in shape], "pixel_size_A": pixel_size}
    if kind == "nanoparticle":
        size = min(shape) * pixel_size
        atoms, record["nanoparticle"] = nanoparticle_on_support(
            shape,
            pixel_size,
            element=str(rng.choice(NANOPARTICLE_METALS)),
            radius=float(rng.uniform(4, max(5, 0.35 * size))),
            form=str(rng.choice(["octahedron", "sphere"])),
            support_thickness=float(rng.uniform(5, 20)),
            rng=rng,
        )
        return atoms, record
    atoms, crystal = _draw_crystal(shape, pixel_size, rng, kind)
    record.update(crystal)
    atoms, record["defects"] = _draw_defects(atoms, rng)
    return atoms, record
