"""Random structures: amorphous films, nanoparticles on supports, and random training fields.

Like :mod:`atomlens.physics.structures.defects`, every function takes its randomness from a
``numpy.random.Generator`` (or a seed) and returns a new ``ase.Atoms`` with a dict of the
parameters drawn. Structures follow the field convention of
:mod:`atomlens.physics.structures.lattice`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from atomlens.physics.structures.defects import (
    adatoms,
    append_atoms,
    element_number,
    fit_box,
    grain_boundary,
    interstitial_columns,
    substitute,
    surface_edge,
    vacancies,
)
from atomlens.physics.structures.lattice import (
    Rng,
    as_rng,
    cell_frame,
    draw_rotation,
    field,
    oriented_unit,
    rotation_z,
    supercell_matrix,
    validate_positive,
    validate_shape,
    zone_vector,
)
from atomlens.physics.structures.materials import (
    LAYERED,
    MATERIALS,
    ZONE_AXES,
    MaterialLike,
    material,
)

#: Elements that :func:`random_structure` substitutes into a host.
DOPANTS = tuple("B C N Si S Ca Mn Fe Co Ni Ga Se Zr Nb Mo In Ba La Er Hf W Re Pt Au Pb Bi".split())
#: Elements that :func:`random_structure` puts on surfaces and in interstitial columns.
ADATOMS = ("C", "O", "Si", "Fe", "Co", "Se", "Mo", "W", "Re", "Pt", "Au")
#: fcc metals for nanoparticles.
NANOPARTICLE_METALS = ("Au", "Pt", "Pd", "Ag", "Cu")


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
    rng = as_rng(rng)
    rows, cols = validate_shape(shape)
    pixel_size = validate_positive(pixel_size, "pixel_size")
    thickness = validate_positive(thickness, "thickness")
    density = validate_positive(density, "density", "atoms / Å^3")
    min_distance = validate_positive(min_distance, "min_distance")
    size = np.array([cols * pixel_size, rows * pixel_size, thickness])
    count = round(density * size.prod())
    if count * math.pi / 6 * min_distance**3 > 0.35 * size.prod():
        raise ValueError(
            f"{density} atoms / Å^3 cannot keep {min_distance} Å apart at random (packing > 35 %); "
            "lower the density or min_distance."
        )
    positions = _hard_core(count, size, min_distance, rng)
    atoms = Atoms(numbers=np.full(len(positions), element_number(element)), positions=positions)
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
    crystal = material(element)
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
    turn = rotation_z(rotation) @ cell_frame(
        supercell_matrix(cell, zone_vector(cell, zone_axis)) @ cell
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
    rng = as_rng(rng)
    rows, cols = validate_shape(shape)
    size = np.array([cols, rows]) * validate_positive(pixel_size, "pixel_size")
    radius = validate_positive(radius, "radius")
    gap = validate_positive(gap, "gap")
    if form not in ("octahedron", "sphere"):
        raise ValueError(f"form must be 'octahedron' or 'sphere', got {form!r}.")
    if zone_axis is None:
        axes = ZONE_AXES.get(str(element), ((0, 0, 1),))
        zone_axis = axes[rng.integers(len(axes))]
    angle = draw_rotation(rotation, rng)
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
    atoms = append_atoms(film, particle.numbers, particle.positions, region=1)
    atoms.pbc = False
    fit_box(atoms)
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


def _draw_crystal(
    shape: Sequence[int], pixel_size: float, rng: np.random.Generator, kind: str
) -> tuple[Atoms, dict]:
    name = str(rng.choice(MATERIALS))
    axes = ZONE_AXES[name]
    zone = axes[rng.integers(len(axes))]
    depth = oriented_unit(name, zone).cell[2, 2]
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
    :data:`~atomlens.physics.structures.materials.ZONE_AXES`, its rotation is uniform, its
    thickness 1 to about 40 Å (one layer for 2D materials). Crystals then get, independently,
    vacancies (50 %, up to 10 % of one element's atoms or 5 % of its columns), substitutions (30 %,
    up to 10 % of one element, by a member of :data:`DOPANTS`), adatoms (30 %) and interstitial
    columns (10 %).

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
    rng = as_rng(rng)
    validate_shape(shape)
    pixel_size = validate_positive(pixel_size, "pixel_size")
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
