"""The material library: conventional unit cells of 23 crystals, by name, and their zone axes.

:func:`material` builds a cell with ase (lattice constants and sources in its docstring), reads
a CIF or copies an ``ase.Atoms``; :data:`MATERIALS`, :data:`ZONE_AXES` and :data:`LAYERED` list
what the library holds. Orientation, fields and columns live in
:mod:`atomlens.physics.structures.lattice`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk, graphene, mx2
from ase.spacegroup import crystal

MaterialLike = str | os.PathLike | Atoms


def _perovskite(a_site: str, b_site: str, a: float, c: float | None = None) -> Atoms:
    return Atoms(
        [a_site, b_site, "O", "O", "O"],
        scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)],
        cell=[a, a, a if c is None else c],
        pbc=True,
    )


def _wurtzite(cation: str, anion: str, a: float, c: float, u: float) -> Atoms:
    basis = [(1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, u)]
    return crystal([cation, anion], basis=basis, spacegroup=186, cellpar=[a, a, c, 90, 90, 120])


def _rutile(a: float, c: float, u: float) -> Atoms:
    basis = [(0, 0, 0), (u, u, 0)]
    return crystal(["Ti", "O"], basis=basis, spacegroup=136, cellpar=[a, a, c, 90, 90, 90])


def _monolayer(layer: Atoms, spacing: float) -> Atoms:
    """A 2D layer in a cell whose c is the bulk interlayer spacing, centred at z = c / 2."""
    layer = layer.copy()
    cell = layer.cell.array.copy()
    cell[2] = (0.0, 0.0, spacing)
    layer.set_cell(cell)
    layer.positions[:, 2] += spacing / 2
    layer.pbc = True
    return layer


@dataclass(frozen=True)
class _Spec:
    build: Callable[[], Atoms]
    zone_axes: tuple[tuple[int, ...], ...]
    layered: bool = False


_CUBIC = ((0, 0, 1), (1, 1, 0), (1, 1, 1), (1, 1, 2))
_HEXAGONAL = ((0, 0, 1), (1, 1, 0), (2, 1, 0))  # [0001], [11-20], [10-10]
_TETRAGONAL = ((0, 0, 1), (1, 0, 0), (1, 1, 0))
_LAYER = ((0, 0, 1),)


def _cubic(symbol: str, kind: str, a: float) -> _Spec:
    return _Spec(lambda: bulk(symbol, kind, a=a, cubic=True), _CUBIC)


_SPECS: dict[str, _Spec] = {
    "Si": _cubic("Si", "diamond", 5.431),
    "Ge": _cubic("Ge", "diamond", 5.658),
    "GaAs": _cubic("GaAs", "zincblende", 5.653),
    "Al": _cubic("Al", "fcc", 4.050),
    "Cu": _cubic("Cu", "fcc", 3.615),
    "Ag": _cubic("Ag", "fcc", 4.086),
    "Au": _cubic("Au", "fcc", 4.078),
    "Pd": _cubic("Pd", "fcc", 3.891),
    "Pt": _cubic("Pt", "fcc", 3.924),
    "W": _cubic("W", "bcc", 3.165),
    "MgO": _cubic("MgO", "rocksalt", 4.212),
    "CeO2": _cubic("CeO2", "fluorite", 5.411),
    "SrTiO3": _Spec(lambda: _perovskite("Sr", "Ti", 3.905), _CUBIC),
    "SrRuO3": _Spec(lambda: _perovskite("Sr", "Ru", 3.93), _CUBIC),
    "BaTiO3": _Spec(lambda: _perovskite("Ba", "Ti", 3.992, 4.036), _TETRAGONAL),
    "TiO2": _Spec(lambda: _rutile(4.594, 2.959, 0.3049), _TETRAGONAL),
    "ZnO": _Spec(lambda: _wurtzite("Zn", "O", 3.250, 5.207, 0.382), _HEXAGONAL),
    "GaN": _Spec(lambda: _wurtzite("Ga", "N", 3.189, 5.185, 0.377), _HEXAGONAL),
    "graphene": _Spec(lambda: _monolayer(graphene("C2", a=2.46), 3.35), _LAYER, True),
    "hBN": _Spec(lambda: _monolayer(graphene("BN", a=2.504), 3.33), _LAYER, True),
    "MoS2": _Spec(lambda: _monolayer(mx2("MoS2", "2H", 3.160, 3.172), 6.15), _LAYER, True),
    "WS2": _Spec(lambda: _monolayer(mx2("WS2", "2H", 3.153, 3.14), 6.16), _LAYER, True),
    "WSe2": _Spec(lambda: _monolayer(mx2("WSe2", "2H", 3.282, 3.34), 6.48), _LAYER, True),
}

#: Names accepted by :func:`material`.
MATERIALS: tuple[str, ...] = tuple(_SPECS)

#: Zone axes [uvw] (three-index, in the material's own cell) that the library supports per name.
ZONE_AXES: dict[str, tuple[tuple[int, ...], ...]] = {k: v.zone_axes for k, v in _SPECS.items()}

#: Names of the single-layer (2D) materials; their cell c is the bulk interlayer spacing.
LAYERED: tuple[str, ...] = tuple(k for k, v in _SPECS.items() if v.layered)


#: The largest structure file :func:`material` reads [bytes]: 16 MiB, a CIF of about 100000
#: atoms, where a unit cell takes a few kB.
STRUCTURE_FILE_MAX_BYTES = 16 * 2**20


def _read_structure_file(path: Path) -> Atoms:
    """The structure in ``path`` (any format ``ase.io.read`` knows), or one ValueError naming it.

    Parameters
    ----------
    path : Path
        An existing path.

    Returns
    -------
    ase.Atoms
        The last structure of the file, with ``info["material"]`` set to the file's stem.
    """
    from ase.io import read

    if not path.is_file():
        raise ValueError(f"{path} is not a file; give a structure file (CIF...) or a material.")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path} is empty (0 bytes); give a structure file (CIF...).")
    if size > STRUCTURE_FILE_MAX_BYTES:
        raise ValueError(
            f"{path} takes {size / 2**20:.1f} MiB, more than the {STRUCTURE_FILE_MAX_BYTES >> 20} "
            "MiB atomlens reads as a structure file; give the unit cell (a CIF of a few kB)."
        )
    try:
        atoms = read(path)
    except Exception as err:  # ase raises anything from its parsers: StopIteration, KeyError...
        reason = str(err).strip() or "no details"
        raise ValueError(
            f"{path} is not a structure file ase can read, or it is malformed "
            f"({type(err).__name__}: {reason[:200]}); give a valid CIF file."
        ) from err
    if not isinstance(atoms, Atoms) or len(atoms) == 0:
        raise ValueError(f"{path} holds no atoms; give a structure file with a unit cell of atoms.")
    if atoms.cell.volume <= 0 or not np.isfinite(atoms.positions).all():
        raise ValueError(
            f"{path} gives no unit cell (or non-finite positions); atomlens needs a periodic "
            "crystal cell, as a CIF file holds."
        )
    atoms.info["material"] = path.stem
    return atoms


def known_name(name: str) -> str | None:
    """The library's spelling of a material name (case-insensitive), or None if it has none."""
    lower = {k.lower(): k for k in _SPECS}
    return name if name in _SPECS else lower.get(name.lower())


def material(name: MaterialLike) -> Atoms:
    """Conventional unit cell of a crystal, by name, CIF path or ``ase.Atoms``.

    Parameters
    ----------
    name : str, path or ase.Atoms
        A name from :data:`MATERIALS` (case-insensitive), a structure file that ``ase.io.read``
        understands (CIF...), or an ``ase.Atoms`` (copied).

    Returns
    -------
    ase.Atoms
        The cell, periodic, with ``info["material"]`` set.

    Raises
    ------
    ValueError
        For an unknown name, with the list of known ones, and for a structure file that is
        not one ase can read, is empty or malformed, holds no atoms or no unit cell, or is larger
        than :data:`STRUCTURE_FILE_MAX_BYTES` (16 MiB); the message names the file.

    Notes
    -----
    Room-temperature lattice constants [Å] (Wyckoff, *Crystal Structures*, 1963, and ICSD typical
    values unless stated):

    ========  ==========================================  ==================================
    name      structure                                   constants [Å]
    ========  ==========================================  ==================================
    Si, Ge    diamond                                     a = 5.431, 5.658
    GaAs      zincblende                                  a = 5.653
    Al, Cu    fcc                                         a = 4.050, 3.615
    Ag, Au    fcc                                         a = 4.086, 4.078
    Pd, Pt    fcc                                         a = 3.891, 3.924
    W         bcc                                         a = 3.165
    MgO       rocksalt                                    a = 4.212
    CeO2      fluorite                                    a = 5.411
    SrTiO3    cubic perovskite                            a = 3.905
    SrRuO3    pseudo-cubic perovskite (tilts omitted)     a = 3.93
    BaTiO3    tetragonal P4mm, ideal positions            a = 3.992, c = 4.036
    TiO2      rutile, u = 0.3049 (Burdett et al. 1987)    a = 4.594, c = 2.959
    ZnO       wurtzite, u = 0.382                         a = 3.250, c = 5.207
    GaN       wurtzite, u = 0.377                         a = 3.189, c = 5.185
    graphene  honeycomb, C-C 1.420                        a = 2.46, layers 3.35
    hBN       honeycomb, B-N 1.446                        a = 2.504, layers 3.33
    MoS2      1H monolayer ("2H" in ase), S-S 3.172       a = 3.160, layers 6.15
    WS2       1H monolayer, S-S 3.14 (Schutte 1987)       a = 3.153, layers 6.16
    WSe2      1H monolayer, Se-Se 3.34                    a = 3.282, layers 6.48
    ========  ==========================================  ==================================

    The single layers sit in a cell whose c is the bulk interlayer spacing ("layers"), so repeating
    them along z gives AA-stacked multilayers, not the bulk stacking. Supported zone axes are in
    :data:`ZONE_AXES`: [001], [110], [111], [112] for the cubic crystals; [001], [100], [110] for
    BaTiO3 and TiO2; [0001], [11-20], [10-10] for wurtzite; [001] for the layers.

    Examples
    --------
    >>> material("SrTiO3").get_chemical_formula()
    'O3SrTi'
    """
    if isinstance(name, Atoms):
        atoms = name.copy()
        atoms.info.setdefault("material", atoms.get_chemical_formula())
        return atoms
    if isinstance(name, str) and (key := known_name(name)) is not None:
        atoms = _SPECS[key].build()
        atoms.info["material"] = key
        return atoms
    if isinstance(name, str | os.PathLike) and Path(name).exists():
        return _read_structure_file(Path(name))
    raise ValueError(
        f"Unknown material {name!r}: give an ase.Atoms, a CIF path, or one of "
        f"{', '.join(MATERIALS)}."
    )
