"""Defects: vacancies, substitutions, adatoms, interstitial columns, grain boundaries, edges.

Every function takes its randomness from a ``numpy.random.Generator`` (or a seed), returns a new
``ase.Atoms`` (the input is never changed) and, with it, a record of what it did: a DataFrame of
the atoms touched (positions ``y_A``, ``x_A``, ``z_A`` [Å]) or a dict of the parameters drawn.
Structures follow the field convention of :mod:`atomlens.physics.structures.lattice`. Removing or
changing atoms keeps ``pbc`` (the box becomes a periodic supercell with the defect); cutting an edge
or joining grains makes the field non-periodic.

Amorphous films, nanoparticles on supports and random training structures live in
:mod:`atomlens.physics.structures.random_structures`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from scipy.spatial import cKDTree

from atomlens.physics.structures.lattice import (
    Rng,
    as_rng,
    column_labels,
    draw_rotation,
    field,
    oriented_unit,
    validate_fraction,
    validate_positive,
    validate_shape,
)
from atomlens.physics.structures.materials import MaterialLike


def element_number(element: str | int) -> int:
    """Atomic number of an element given by symbol or number, else ValueError."""
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
        return math.floor(validate_fraction(fraction, f"fraction=... of {what}") * available + 0.5)
    if int(count) != count or not 0 <= count <= available:
        raise ValueError(f"count must be an integer in [0, {available}] for {what}, got {count!r}.")
    return int(count)


def _element_mask(atoms: Atoms, element: str | int | None) -> np.ndarray:
    if element is None:
        return np.ones(len(atoms), dtype=bool)
    mask = atoms.numbers == element_number(element)
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
        Count and remove projected columns (see
        :func:`~atomlens.physics.structures.lattice.columns`) instead of single atoms.
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
    rng = as_rng(rng)
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
    rng = as_rng(rng)
    pool = np.flatnonzero(_element_mask(atoms, old))
    chosen = np.sort(rng.choice(pool, _how_many(len(pool), fraction, count, "substitute"), False))
    result = atoms.copy()
    result.numbers[chosen] = element_number(new)
    table = _atom_table(atoms, chosen)
    table["new_symbol"] = chemical_symbols[element_number(new)]
    return result, table


def append_atoms(atoms: Atoms, numbers: np.ndarray, positions: np.ndarray, **values) -> Atoms:
    """A copy of atoms with more atoms; their per-atom arrays get ``values``, else -1 (integer
    arrays: site, grain, region), False (boolean) or 0.

    ``numbers`` are atomic numbers (N,), ``positions`` (N, 3) as ase (x, y, z) [Å].
    """
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
    rng = as_rng(rng)
    min_distance = validate_positive(min_distance, "min_distance")
    height = validate_positive(height, "height")
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
    result = append_atoms(source, np.full(len(xy), element_number(element)), positions, adatom=True)
    fit_box(result)
    return result, _atom_table(result, np.arange(len(atoms), len(result)))


def _validate_count(count: int) -> int:
    if int(count) != count or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}.")
    return int(count)


def fit_box(atoms: Atoms) -> None:
    """Shift atoms up so that z >= 0 and grow the cell height to the highest atom [Å], in place."""
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
    rng = as_rng(rng)
    min_distance = validate_positive(min_distance, "min_distance")
    spacing = validate_positive(spacing, "spacing")
    occupancy = validate_fraction(occupancy, "occupancy")
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
    result = append_atoms(atoms, np.full(len(positions), element_number(element)), positions)
    fit_box(result)
    table = pd.DataFrame(
        {
            "y_A": xy[:, 1],
            "x_A": xy[:, 0],
            "symbol": chemical_symbols[element_number(element)],
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
        As for :func:`~atomlens.physics.structures.lattice.field`.
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
    rng = as_rng(rng)
    if not math.isfinite(angle):
        raise ValueError(f"angle must be finite [deg], got {angle!r}.")
    base = draw_rotation(rotation, rng)
    rows, cols = validate_shape(shape)
    size = np.array([cols, rows]) * validate_positive(pixel_size, "pixel_size")
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
    min_distance = validate_positive(min_distance, "min_distance")
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
    unit = oriented_unit(material, zone_axis)
    block = unit.repeat((3, 3, 3))
    distances = cKDTree(block.positions).query(block.positions, k=2)[0][:, 1]
    return float(distances.min())


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
    rng = as_rng(rng)
    if not (math.isfinite(roughness) and roughness >= 0):
        raise ValueError(f"roughness must be >= 0 [Å], got {roughness!r}.")
    low, high = np.broadcast_to(np.asarray(vacuum_fraction, float), (2,))
    fraction = validate_fraction(float(rng.uniform(low, high)) if high > low else float(low))
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
