"""Crystal structures seen along a zone axis: orientation, fields, columns.

An atomic model is an ``ase.Atoms`` with the beam along +z. A *field* is what one image sees: an
``ase.Atoms`` whose cell is the orthorhombic box ``[[W, 0, 0], [0, H, 0], [0, 0, T]]`` [Å] with x
along image columns and y along image rows, every atom inside ``0 <= x < W``, ``0 <= y < H``,
``0 <= z <= T``, and ``pbc = (True, True, False)`` only when the content is periodic with that box.
Pixel (row i, column j) of an image of pixel size p has its centre at (y, x) = (i p, j p), so the
field of a (rows, cols) image has H = rows p and W = cols p. Pairs of in-plane lengths are given in
the (row, column) order of ``shape``: (dy, dx).

Each atom carries its atomic number and an integer ``site`` array: its index in the oriented repeat
cell (``-1`` for atoms added later, such as adatoms).

The material library (:func:`~atomlens.physics.structures.materials.material`) lives in
:mod:`atomlens.physics.structures.materials`; defects in
:mod:`atomlens.physics.structures.defects`; amorphous films, nanoparticles and random training
structures in :mod:`atomlens.physics.structures.random_structures`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
from ase import Atoms
from ase.build import make_supercell
from ase.data import chemical_symbols
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from atomlens.core.validation import check_atoms, check_parameter, check_size
from atomlens.physics.structures.materials import MaterialLike, known_name, material

Rng = np.random.Generator | int | None

_EPS = 1e-6  # [Å] positions closer than this to a box face count as on it


def as_rng(rng: Rng) -> np.random.Generator:
    """``rng`` if it is a Generator, else ``numpy.random.default_rng(rng)`` (a seed or None)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def validate_shape(shape: Sequence[int]) -> tuple[int, int]:
    """An image shape (rows, cols) [pixels] as two positive ints, else ValueError."""
    if len(shape) != 2 or any(int(n) != n or n < 1 for n in shape):
        raise ValueError(f"shape must be two positive integers (rows, cols), got {shape!r}.")
    return int(shape[0]), int(shape[1])


def validate_positive(value: float, name: str, unit: str = "Å") -> float:
    """``value`` as a float if it is a finite number > 0, else ValueError naming ``name [unit]``."""
    if not (isinstance(value, int | float | np.number) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number [{unit}], got {value!r}.")
    return float(value)


def validate_fraction(value: float, name: str = "fraction") -> float:
    """``value`` as a float if it lies in [0, 1] (unitless), else ValueError naming ``name``."""
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}.")
    return float(value)


def zone_vector(cell: np.ndarray, zone_axis: Sequence[int]) -> np.ndarray:
    """Integer direction [uvw] in the cell's basis, from three or four (Miller-Bravais) indices.

    ``cell`` holds the lattice vectors as rows [Å] (needed to check a four-index axis).
    """
    uvw = np.asarray(zone_axis)
    if uvw.ndim != 1 or len(uvw) not in (3, 4) or not np.all(np.round(uvw) == uvw):
        raise ValueError(f"zone_axis must be 3 or 4 integers [uvw] / [uvtw], got {zone_axis!r}.")
    uvw = uvw.astype(int)
    if len(uvw) == 4:
        a, b = np.linalg.norm(cell[:2], axis=1)
        gamma = math.degrees(math.acos(np.dot(cell[0], cell[1]) / (a * b)))
        if uvw[2] != -(uvw[0] + uvw[1]) or abs(gamma - 120) > 1e-3 or abs(a - b) > 1e-6:
            raise ValueError(
                f"A four-index zone axis needs t = -(u + v) and a hexagonal cell with gamma = 120 "
                f"deg, got {zone_axis!r} (gamma {gamma:.2f} deg)."
            )
        uvw = np.array([uvw[0] - uvw[2], uvw[1] - uvw[2], uvw[3]])
    if not uvw.any():
        raise ValueError("zone_axis must not be [000].")
    return uvw // math.gcd(*uvw.tolist())


_INTEGERS = np.array([n for n in itertools.product(range(-4, 5), repeat=3) if any(n)])


def _sorted_candidates(cell: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Integer vectors under mask, shortest first; ties go to larger x, then larger y."""
    n = _INTEGERS[mask]
    v = n @ cell
    order = np.lexsort((-v[:, 1].round(6), -v[:, 0].round(6), np.linalg.norm(v, axis=1).round(6)))
    return n[order]


def supercell_matrix(cell: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Rows A1, A2, d: an orthorhombic supercell when one is small, else a reduced oblique one.

    ``cell`` holds the lattice vectors as rows [Å]; ``d`` is the integer zone direction [uvw]; the
    result is an integer 3 x 3 matrix in the cell's basis.
    """
    direction = d @ cell
    unit = direction / np.linalg.norm(direction)
    v = _INTEGERS @ cell
    length = np.linalg.norm(v, axis=1)
    perpendicular = np.abs(v @ unit) < 1e-6 * length
    for a1 in _sorted_candidates(cell, perpendicular):
        both = perpendicular & (np.abs(v @ (a1 @ cell)) < 1e-6 * length * np.linalg.norm(a1 @ cell))
        for a2 in _sorted_candidates(cell, both):
            if 0 < abs(round(np.linalg.det(np.array([a1, a2, d])))) <= 24:
                return np.array([a1, a2, d])
        break
    # Oblique fallback: shortest projected vectors that give the smallest supercell.
    along = np.round((v @ unit) / np.linalg.norm(direction)).astype(int)
    n = _INTEGERS - along[:, None] * d
    projected = np.linalg.norm(v - np.outer(v @ unit, unit), axis=1)
    order = [
        k
        for k in np.lexsort((-(n @ cell)[:, 0].round(6), projected.round(6)))
        if projected[k] > 1e-6
    ]
    a1 = n[order[0]]
    volumes = np.abs(np.round(np.cross(a1, n) @ d))
    best = min((k for k in order if volumes[k] > 0), key=lambda k: (volumes[k], projected[k]))
    return np.array([a1, n[best], d])


def cell_frame(cell: np.ndarray) -> np.ndarray:
    """Rotation (rows e1, e2, e3) taking cell[2] to +z and cell[0]'s in-plane part to +x.

    ``cell`` holds the lattice vectors as rows [Å]; the result is an orthonormal 3 x 3 matrix.
    """
    e3 = cell[2] / np.linalg.norm(cell[2])
    e1 = cell[0] - np.dot(cell[0], e3) * e3
    e1 /= np.linalg.norm(e1)
    return np.array([e1, np.cross(e3, e1), e3])


def _orient(atoms: Atoms, zone_axis: Sequence[int]) -> tuple[Atoms, np.ndarray]:
    cell = atoms.cell.array
    if abs(np.linalg.det(cell)) < 1e-6:
        raise ValueError(
            "The material needs a 3D cell of nonzero volume; give a 2D layer a c vector "
            "(its interlayer spacing) first."
        )
    d = zone_vector(cell, zone_axis)
    matrix = supercell_matrix(cell, d)
    rotation = cell_frame(matrix @ cell)
    if (matrix[1] @ cell) @ rotation[1] < 0:
        matrix[1] *= -1
    unit = make_supercell(atoms, matrix, wrap=False)
    unit.set_cell(unit.cell.array @ rotation.T)
    unit.positions = unit.positions @ rotation.T
    fractional = unit.get_scaled_positions(wrap=False) % 1.0
    fractional[fractional > 1 - 1e-9] = 0.0
    unit.set_scaled_positions(fractional)
    unit.set_array("site", np.arange(len(unit)))
    unit.info["material"] = atoms.info.get("material", atoms.get_chemical_formula())
    unit.info["zone_axis"] = [int(i) for i in zone_axis]
    return unit, rotation


@lru_cache(maxsize=256)
def _oriented_library(name: str, zone_axis: tuple[int, ...]) -> Atoms:
    return _orient(material(name), zone_axis)[0]


def orient(atoms: MaterialLike, zone_axis: Sequence[int] = (0, 0, 1)) -> Atoms:
    """The crystal with zone axis [uvw] along +z, in a repeat cell for tiling.

    Parameters
    ----------
    atoms : str, path or ase.Atoms
        The crystal (see :func:`~atomlens.physics.structures.materials.material`).
    zone_axis : sequence of 3 or 4 ints
        [uvw] in the crystal's own cell, or Miller-Bravais [uvtw] for a hexagonal cell.

    Returns
    -------
    ase.Atoms
        A supercell whose third vector is the shortest lattice vector along [uvw], turned onto +z,
        and whose first vector lies along +x. When a small one exists (all zone axes of
        :data:`~atomlens.physics.structures.materials.ZONE_AXES`) the cell is orthorhombic,
        ``diag(a, b, c)``; otherwise its first two vectors are the shortest that complete the
        lattice and may lean along z. The array ``site`` numbers the atoms of the cell.

    Notes
    -----
    The zone axis is a direction [uvw] of the direct lattice. For cubic crystals it is the normal of
    the plane (hkl) with the same indices, so ``orient(Si, (1, 1, 1))`` looks down the normal of the
    surface that ``ase.build.surface(Si, (1, 1, 1), layers)`` builds; for other lattices it is not.

    Examples
    --------
    >>> orient("Si", (1, 1, 0)).cell.lengths().round(3)
    array([5.431, 7.681, 7.681])
    """
    if isinstance(atoms, str) and (key := known_name(atoms)) is not None:
        return _oriented_library(key, tuple(int(i) for i in zone_axis)).copy()
    return _orient(material(atoms), zone_axis)[0]


def oriented_unit(source: MaterialLike, zone_axis: Sequence[int]) -> Atoms:
    """The repeat cell of ``source`` oriented with ``zone_axis`` along +z (as :func:`orient`) [Å].

    For a library material this is the cached cell itself, not a copy: do not modify it.
    """
    if isinstance(source, str) and (key := known_name(source)) is not None:
        return _oriented_library(key, tuple(int(i) for i in zone_axis))
    return orient(source, zone_axis)


def _repeats(unit: Atoms, thickness: float | None, cells: int | None) -> int:
    if thickness is not None and cells is not None:
        raise ValueError("Give thickness [Å] or cells, not both.")
    if cells is not None:
        return check_parameter("cells", cells, kind="unit_cells")
    if thickness is None:
        return 1
    thickness = check_parameter("thickness", thickness)
    return max(1, round(thickness / unit.cell[2, 2]))


def rotation_z(angle: float) -> np.ndarray:
    """3 x 3 matrix of a rotation by ``angle`` [deg] about +z (counter-clockwise in x, y)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _tile(
    unit: Atoms, box: np.ndarray, rotation: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and basis indices of the rotated, shifted crystal inside the box [Å]."""
    cell = unit.cell.array
    corners = np.array(list(itertools.product(*[(0.0, b) for b in box]))) - offset
    fractional = (corners @ rotation) @ np.linalg.inv(cell)
    ranges = [
        np.arange(math.floor(lo) - 1, math.ceil(hi) + 1)
        for lo, hi in zip(fractional.min(0), fractional.max(0), strict=True)
    ]
    grid = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    origins = grid @ cell @ rotation.T + offset
    reach = np.linalg.norm(cell.sum(axis=0)) + np.abs(cell).sum()
    near = np.all((origins > -reach) & (origins < box + reach), axis=1)
    basis = unit.positions @ rotation.T
    positions = (origins[near, None, :] + basis[None]).reshape(-1, 3)
    sites = np.tile(np.arange(len(unit)), int(near.sum()))
    inside = np.all((positions >= -_EPS) & (positions < box - _EPS), axis=1)
    return np.clip(positions[inside], 0.0, None), sites[inside]


def _is_periodic(unit: Atoms, box: np.ndarray, rotation: np.ndarray) -> bool:
    inverse = np.linalg.inv(unit.cell.array)
    for vector in (np.array([box[0], 0, 0]), np.array([0, box[1], 0])):
        fractional = (vector @ rotation) @ inverse
        error = (fractional - np.round(fractional)) @ unit.cell.array
        if np.linalg.norm(error) > 1e-4:
            return False
    return True


def draw_rotation(rotation: float | str, rng: np.random.Generator) -> float:
    """An in-plane rotation [deg]: ``rotation`` itself, or uniform in [0, 360) for ``"random"``."""
    if isinstance(rotation, str):
        if rotation != "random":
            raise ValueError(f"rotation must be an angle [deg] or 'random', got {rotation!r}.")
        return float(rng.uniform(0.0, 360.0))
    return check_parameter("rotation", rotation)


def _draw_shift(shift, unit: Atoms, rotation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(dy, dx) [Å] -> (x, y, 0) offset; 'random' draws a point of the projected unit cell."""
    if isinstance(shift, str):
        if shift != "random":
            raise ValueError(f"shift must be (dy, dx) [Å] or 'random', got {shift!r}.")
        point = rng.uniform(0, 1, 2) @ unit.cell.array[:2] @ rotation.T
        return np.array([point[0], point[1], 0.0])
    values = np.asarray(shift, dtype=float)
    if values.shape != (2,) or not np.all(np.isfinite(values)):
        raise ValueError(f"shift must be finite (dy, dx) [Å] or 'random', got {shift!r}.")
    return np.array([values[1], values[0], 0.0])


def field(
    material: MaterialLike,
    shape: Sequence[int],
    pixel_size: float,
    *,
    zone_axis: Sequence[int] = (0, 0, 1),
    thickness: float | None = None,
    cells: int | None = None,
    rotation: float | str = 0.0,
    shift: Sequence[float] | str = (0.0, 0.0),
    rng: Rng = None,
) -> Atoms:
    """The crystal seen along a zone axis, cut to the box of an image.

    Parameters
    ----------
    material : str, path or ase.Atoms
        The crystal (see :func:`~atomlens.physics.structures.materials.material`).
    shape : (int, int)
        Image shape (rows, cols) [px].
    pixel_size : float
        [Å].
    zone_axis : sequence of 3 or 4 ints
        Direction [uvw] (or [uvtw]) along the beam, see :func:`orient`.
    thickness : float, optional
        [Å]; rounded to a whole number (at least one) of repeat lengths along z, so that every
        column holds the same number of atoms.
    cells : int, optional
        Thickness as a number of repeat lengths; give this or ``thickness``. Default one.
    rotation : float or 'random'
        In-plane rotation about +z (from +x towards +y) [deg]; 'random' draws it uniformly.
    shift : (float, float) or 'random'
        Where the crystal's origin lands, (dy, dx) [Å]; 'random' draws it within one repeat cell.
    rng : numpy.random.Generator or int, optional
        For 'random' choices.

    Returns
    -------
    ase.Atoms
        The field: cell ``diag(W, H, T)`` with W = cols * pixel_size, H = rows * pixel_size, every
        atom inside the box, arrays ``numbers`` and ``site``, and ``info`` holding the parameters.
        A point r of the oriented crystal lands at R(rotation) r + shift.

    Examples
    --------
    >>> atoms = field("SrTiO3", (40, 40), 0.1, cells=2, shift=(0.5, 0.5))
    >>> atoms.cell.lengths().round(2).tolist(), sorted(set(atoms.get_chemical_symbols()))
    ([4.0, 4.0, 7.81], ['O', 'Sr', 'Ti'])
    """
    rows, cols = validate_shape(shape)
    check_size("the image", (rows, cols))
    pixel_size = check_parameter("pixel_size", pixel_size)
    rng = as_rng(rng)
    unit = oriented_unit(material, zone_axis)
    count = _repeats(unit, thickness, cells)
    box = np.array([cols * pixel_size, rows * pixel_size, count * unit.cell[2, 2]])
    check_atoms(
        len(unit) * np.prod(box) / abs(np.linalg.det(unit.cell.array)),
        f"{box[1]:.4g} x {box[0]:.4g} Å, {box[2]:.4g} Å thick",
        "use fewer pixels, a smaller pixel_size=... or a thinner specimen",
    )
    angle = draw_rotation(rotation, rng)
    turn = rotation_z(angle)
    offset = _draw_shift(shift, unit, turn, rng)
    positions, sites = _tile(unit, box, turn, offset)
    atoms = Atoms(unit.numbers[sites], positions=positions, cell=np.diag(box))
    atoms.set_array("site", sites.astype(int))
    atoms.pbc = (True, True, False) if _is_periodic(unit, box, turn) else False
    atoms.info.update(
        material=unit.info.get("material", unit.get_chemical_formula()),
        zone_axis=[int(i) for i in zone_axis],
        rotation_deg=angle,
        shift_A=[float(offset[1]), float(offset[0])],
        cells=count,
        thickness_A=float(box[2]),
        pixel_size_A=pixel_size,
    )
    return atoms


def random_crop(atoms: Atoms, shape: Sequence[int], pixel_size: float, *, rng: Rng = None) -> Atoms:
    """A field of the given shape cut at a random place from a larger field.

    Parameters
    ----------
    atoms : ase.Atoms
        A field (orthorhombic cell) at least as large as the crop.
    shape : (int, int)
        Crop shape (rows, cols) [px].
    pixel_size : float
        [Å].
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    ase.Atoms
        The atoms inside the window, moved so that it starts at the origin, in a box
        ``diag(W, H, T)``, non-periodic; ``info["crop_origin_A"]`` is the window's (y, x) [Å].
    """
    rows, cols = validate_shape(shape)
    pixel_size = validate_positive(pixel_size, "pixel_size")
    width, height, depth = atoms.cell.lengths()
    size = np.array([cols * pixel_size, rows * pixel_size])
    if np.any(size > np.array([width, height]) + _EPS):
        raise ValueError(
            f"The crop ({size[1]:.4g} x {size[0]:.4g} Å) is larger than the field "
            f"({height:.4g} x {width:.4g} Å); make the field larger or the crop smaller."
        )
    start = as_rng(rng).uniform(0, 1, 2) * np.maximum(np.array([width, height]) - size, 0)
    xy = atoms.positions[:, :2] - start
    inside = np.all((xy >= -_EPS) & (xy < size - _EPS), axis=1)
    crop = atoms[inside]
    crop.positions[:, :2] = np.clip(xy[inside], 0.0, None)
    crop.set_cell(np.diag([size[0], size[1], depth]))
    crop.pbc = False
    crop.info["crop_origin_A"] = [float(start[1]), float(start[0])]
    return crop


def column_labels(atoms: Atoms, tolerance: float = 0.3) -> np.ndarray:
    """Index of each atom's projected column, numbered as the rows of :func:`columns`.

    Atoms whose projected (x, y) positions are linked by steps shorter than ``tolerance`` [Å]
    belong to one column (connected components of a KD-tree neighbour graph). Columns are ordered
    by y, then x; the box is not treated as periodic.
    """
    tolerance = validate_positive(tolerance, "tolerance")
    xy = atoms.positions[:, :2]
    n = len(xy)
    if n == 0:
        return np.zeros(0, dtype=int)
    pairs = cKDTree(xy).query_pairs(tolerance, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    size = np.bincount(labels, minlength=count)
    mean = np.stack([np.bincount(labels, xy[:, i], count) / size for i in (0, 1)], axis=1)
    order = np.lexsort((mean[:, 0].round(3), mean[:, 1].round(3)))
    rank = np.empty(count, dtype=int)
    rank[order] = np.arange(count)
    return rank[labels]


def _species(labels: np.ndarray, numbers: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Per column: symbols heavy to light joined by '-', and the largest Z."""
    keys = np.unique(labels.astype(np.int64) * 256 + (255 - numbers))
    column, z = keys // 256, 255 - keys % 256
    starts = np.flatnonzero(np.r_[True, np.diff(column) > 0])
    cache: dict[bytes, str] = {}
    names = []
    for group in np.split(z, starts[1:]):
        key = group.tobytes()
        if key not in cache:
            cache[key] = "-".join(chemical_symbols[i] for i in group)
        names.append(cache[key])
    return names, z[starts]


def columns(
    atoms: Atoms, tolerance: float = 0.3, *, pixel_size: float | None = None
) -> pd.DataFrame:
    """The projected atomic columns of a field.

    Parameters
    ----------
    atoms : ase.Atoms
        Atoms with the beam along z.
    tolerance : float
        Atoms closer than this in projection join one column [Å].
    pixel_size : float, optional
        [Å]; adds the pixel coordinates ``y``, ``x`` (pixel centres at integers).

    Returns
    -------
    pandas.DataFrame
        One row per column, ordered by y then x (row k holds the atoms with
        ``column_labels(atoms) == k``): ``y``, ``x`` [px] when ``pixel_size`` is given, ``y_A``,
        ``x_A`` (mean position [Å]), ``Z`` (largest atomic number), ``species`` (symbols from heavy
        to light joined by '-', e.g. 'Ti-O'), ``count`` (atoms) and ``Z_sum``; when the atoms
        carry the boolean array ``ordered`` (crystal atoms, as ``data.ImageSampler`` marks
        them), also ``ordered``: the share of the column's summed atomic number from them.

    Examples
    --------
    >>> table = columns(field("SrTiO3", (40, 40), 0.1, cells=3, shift=(0.5, 0.5)))
    >>> table.groupby("species")["count"].first().to_dict()
    {'O': 3, 'Sr': 3, 'Ti-O': 6}
    """
    labels = column_labels(atoms, tolerance)
    numbers = atoms.numbers
    count = np.bincount(labels)
    table = {}
    if pixel_size is not None:
        pixel_size = validate_positive(pixel_size, "pixel_size")
    y_A = np.bincount(labels, atoms.positions[:, 1]) / count if len(atoms) else np.zeros(0)
    x_A = np.bincount(labels, atoms.positions[:, 0]) / count if len(atoms) else np.zeros(0)
    if pixel_size is not None:
        table.update(y=y_A / pixel_size, x=x_A / pixel_size)
    species, z_max = _species(labels, numbers) if len(atoms) else ([], np.zeros(0, int))
    table.update(
        y_A=y_A,
        x_A=x_A,
        Z=z_max.astype(int),
        species=species,
        count=count.astype(int),
        Z_sum=np.bincount(labels, numbers).astype(int) if len(atoms) else np.zeros(0, int),
    )
    if "ordered" in atoms.arrays and len(atoms):
        ordered = np.bincount(labels, numbers * atoms.arrays["ordered"].astype(float))
        table["ordered"] = ordered / np.maximum(table["Z_sum"], 1)
    return pd.DataFrame(table)
