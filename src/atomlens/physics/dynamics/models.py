"""Atoms moving through an image series, with ground-truth trajectories and events.

A **field** is an ``ase.Atoms`` with the beam along +z in the orthorhombic box
``[[W, 0, 0], [0, H, 0], [0, 0, T]]`` [Å]; x runs along image columns and y along image rows, so
pixel (row i, col j) of pixel size p is centred at (y, x) = (i p, j p). Every array here is in
(y, x) order; only ``ase.Atoms`` positions are (x, y, z).

Model
-----
The initial non-adatom atoms fill the lattice **slots** (their 3D positions); slots whose projected
positions lie within ``site_tolerance`` of each other form one projected **site** (a column), whose
capacity is its number of slots. A vacancy is an empty slot. Each frame f >= 1 applies, in order:

1. hops: each mobile lattice atom, with probability ``hop_rate``, moves to a random neighbouring
   slot of its own element in another site within ``hop_distance`` that was empty at the start of
   the frame;
2. vacancy migration: each slot empty since the start of the frame, with probability
   ``vacancy_migration``, is filled by a random mobile neighbour atom of its element, so the
   vacancy moves by one neighbour distance (no atom moves twice in one frame);
3. leaving: each adatom leaves (sputtering, desorption) with probability ``leave_rate``;
4. adatom diffusion: every adatom cluster takes a Gaussian step of std sqrt(2 D / n) per axis,
   n its number of atoms (a single adatom: sqrt(2 D));
5. appearance: Poisson(``appear_rate``) new adatoms at uniform random places in the field of view;
6. merging: adatoms of different clusters closer than ``merge_distance`` merge; the later cluster
   (larger id) takes the earlier one's id, and its atoms stay bound to it (rigid clusters).

Merging also runs at frame 0. Imaged positions add to each atom's reference position (its slot,
or an adatom's walk position) an independent Gaussian jitter of std ``thermal_sigma`` per axis per
frame, and the sample drift ``frame * drift``.

The result, :class:`~atomlens.physics.dynamics.trajectories.Series` (tracks, events, drift), is
defined in :mod:`atomlens.physics.dynamics.trajectories`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from atomlens.core.validation import check_pair, check_parameter, check_size
from atomlens.physics.dynamics.trajectories import Series, series_tables

#: A field thinner than this (spread of the lattice atoms' z) is a 2D material [Å].
TWO_D_THICKNESS = 4.0

#: The automatic ``hop_distance`` is this factor times the median nearest-site distance.
AUTO_HOP_FACTOR = 1.15


@dataclass(frozen=True)
class DynamicsModel:
    """Physical parameters of the atom motion; all rates are per frame.

    Parameters
    ----------
    thermal_sigma : float
        Gaussian jitter of every atom about its reference position, per axis, per frame [Å].
    hop_rate : float
        Probability per mobile lattice atom per frame of hopping to an empty neighbouring slot.
    hop_distance : float or None
        Largest projected distance of a hop or a vacancy move [Å]; None takes
        ``AUTO_HOP_FACTOR`` (1.15) times the median distance from a site to its nearest site of the
        same element.
    vacancy_migration : float
        Probability per vacancy per frame that a neighbouring atom fills it (the vacancy moves).
    adatom_diffusion : float
        Diffusion coefficient D of adatoms [Å^2 / frame]; steps have std sqrt(2 D) per axis.
    appear_rate : float
        Expected number of new adatoms per frame (Poisson) [1 / frame].
    leave_rate : float
        Probability per adatom per frame of leaving the specimen.
    merge_distance : float
        Adatoms of different clusters closer than this merge [Å]; 0 switches merging off.
    drift : tuple of float
        Sample drift velocity (vy, vx) [Å / frame].
    adatom_element : str or None
        Element of appearing adatoms; None takes the commonest element of the field's adatoms,
        else of the whole field.
    adatom_height : float
        Height of appearing adatoms above the field's topmost atom [Å], clipped to the box.
    """

    thermal_sigma: float = 0.0
    hop_rate: float = 0.0
    hop_distance: float | None = None
    vacancy_migration: float = 0.0
    adatom_diffusion: float = 0.0
    appear_rate: float = 0.0
    leave_rate: float = 0.0
    merge_distance: float = 0.0
    drift: tuple[float, float] = (0.0, 0.0)
    adatom_element: str | None = None
    adatom_height: float = 2.0

    def __post_init__(self) -> None:
        for name, unit in (
            ("thermal_sigma", "Å"),
            ("adatom_diffusion", "Å^2 / frame"),
            ("appear_rate", "adatoms / frame"),
            ("merge_distance", "Å"),
            ("adatom_height", "Å"),
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"DynamicsModel.{name} must be >= 0 {unit}, got {value}.")
        for name in ("hop_rate", "vacancy_migration", "leave_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(
                    f"DynamicsModel.{name} is a probability per frame and must lie in [0, 1], "
                    f"got {value}."
                )
        if self.hop_distance is not None and not (
            math.isfinite(self.hop_distance) and self.hop_distance > 0
        ):
            raise ValueError(
                f"DynamicsModel.hop_distance must be > 0 Å (or None for automatic), "
                f"got {self.hop_distance}."
            )
        drift = tuple(float(v) for v in np.ravel(self.drift))
        if len(drift) != 2 or not all(math.isfinite(v) for v in drift):
            raise ValueError(
                f"DynamicsModel.drift must be (vy, vx) in Å / frame, got {self.drift}."
            )
        check_pair("drift", drift)
        object.__setattr__(self, "drift", drift)
        if self.adatom_element is not None and self.adatom_element not in atomic_numbers:
            raise ValueError(f"DynamicsModel.adatom_element {self.adatom_element!r} is no element.")


@dataclass(frozen=True)
class _Lattice:
    """Slots (3D positions of lattice atoms and vacancies), sites, and the hop graph."""

    slot_yx: np.ndarray  # (n, 2) [Å]
    slot_z: np.ndarray  # (n,) [Å]
    slot_site: np.ndarray  # (n,) site index
    sites: np.ndarray  # (S, 2) [Å]
    capacity: np.ndarray  # (S,)
    indptr: np.ndarray  # CSR of slot neighbours
    indices: np.ndarray

    def neighbours(self, slot: int) -> np.ndarray:
        return self.indices[self.indptr[slot] : self.indptr[slot + 1]]


@dataclass
class _State:
    """Mutable per-particle state, indexed by particle id."""

    pos: np.ndarray  # (P, 2) reference (y, x) in the sample frame [Å]
    z: np.ndarray
    numbers: np.ndarray
    adatom: np.ndarray
    mobile: np.ndarray
    slot: np.ndarray  # -1 for adatoms
    cluster: np.ndarray  # -1 for lattice atoms
    alive: np.ndarray
    owner: np.ndarray  # (n_slots,) particle id or -1

    def add_adatoms(self, yx: np.ndarray, z: float, number: int) -> np.ndarray:
        count, first = len(yx), len(self.pos)
        ids = np.arange(first, first + count)
        self.pos = np.concatenate([self.pos, yx])
        self.z = np.concatenate([self.z, np.full(count, z)])
        self.numbers = np.concatenate([self.numbers, np.full(count, number)])
        self.adatom = np.concatenate([self.adatom, np.ones(count, bool)])
        self.mobile = np.concatenate([self.mobile, np.ones(count, bool)])
        self.slot = np.concatenate([self.slot, np.full(count, -1)])
        self.cluster = np.concatenate([self.cluster, ids])
        self.alive = np.concatenate([self.alive, np.ones(count, bool)])
        return ids


@dataclass
class _Step:
    """What one frame's processes share: the frame, its drift, and the event log."""

    frame: int
    shift: np.ndarray  # drift (y, x) of this frame [Å]
    events: list
    free: np.ndarray | None = None  # slots empty since the frame's start and not yet filled
    moved: np.ndarray | None = None  # particles already moved this frame

    def log(self, particle, kind, start, end, other=-1) -> None:
        nan = np.full(2, np.nan)
        start = nan if start is None else start + self.shift
        end = nan if end is None else end + self.shift
        self.events.append((self.frame, int(particle), kind, *start, *end, int(other)))


def _validate_field(field: Atoms) -> tuple[float, float, float]:
    if not isinstance(field, Atoms):
        raise ValueError(f"field must be an ase.Atoms, got {type(field).__name__}.")
    cell = np.asarray(field.cell)
    diagonal = np.diag(cell)
    if not (np.allclose(cell, np.diag(diagonal), atol=1e-8) and np.all(diagonal > 0)):
        raise ValueError(
            "field must sit in an orthorhombic box [[W, 0, 0], [0, H, 0], [0, 0, T]] (Å) with "
            f"W, H, T > 0, got cell {cell.round(4).tolist()}; cut it into such a box first."
        )
    return float(diagonal[0]), float(diagonal[1]), float(diagonal[2])


def _mask(field: Atoms, value, name: str) -> np.ndarray | None:
    if value is None:
        if name not in field.arrays:
            return None
        value = field.get_array(name)
    mask = np.asarray(value)
    if mask.shape != (len(field),):
        raise ValueError(
            f"{name} must hold one flag per atom ({len(field)}), got shape {mask.shape}."
        )
    return mask.astype(bool)


def _flags(field: Atoms, adatom, mobile) -> tuple[np.ndarray, np.ndarray]:
    adatom_mask = _mask(field, adatom, "adatom")
    if adatom_mask is None:
        adatom_mask = np.zeros(len(field), bool)
    mobile_mask = _mask(field, mobile, "mobile")
    if mobile_mask is None:
        z = field.positions[~adatom_mask, 2]
        thickness = float(np.ptp(z)) if z.size else 0.0
        mobile_mask = np.ones(len(field), bool) if thickness < TWO_D_THICKNESS else adatom_mask
    return adatom_mask, mobile_mask.copy()


def _group_sites(yx: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge projected positions within ``tolerance`` into sites: (label, sites, capacity)."""
    if len(yx) == 0:
        return np.zeros(0, int), np.zeros((0, 2)), np.zeros(0, int)
    pairs = cKDTree(yx).query_pairs(tolerance, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(yx),) * 2)
    count, label = connected_components(graph, directed=False)
    capacity = np.bincount(label, minlength=count)
    sites = np.column_stack([np.bincount(label, yx[:, k], count) for k in (0, 1)])
    return label, sites / capacity[:, None], capacity


def _auto_hop_distance(sites: np.ndarray, label: np.ndarray, numbers: np.ndarray) -> float:
    nearest = []
    for number in np.unique(numbers):
        own = sites[np.unique(label[numbers == number])]
        if len(own) > 1:
            nearest.append(cKDTree(own).query(own, k=2)[0][:, 1])
    if not nearest:
        return 0.0
    return AUTO_HOP_FACTOR * float(np.median(np.concatenate(nearest)))


def _hop_graph(yx, label, numbers, distance) -> tuple[np.ndarray, np.ndarray]:
    """CSR neighbours: slots of the same element in different sites within ``distance``."""
    n = len(yx)
    pairs = np.zeros((0, 2), int)
    if n > 1 and distance > 0:
        pairs = cKDTree(yx).query_pairs(distance, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    keep = (label[i] != label[j]) & (numbers[i] == numbers[j])
    i, j = i[keep], j[keep]
    graph = coo_matrix((np.ones(2 * len(i)), (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    graph.sort_indices()
    return graph.indptr, graph.indices


def _build(field, adatom, mobile, vacancies, model, tolerance) -> tuple[_Lattice, _State]:
    adatom_mask, mobile_mask = _flags(field, adatom, mobile)
    yx = field.positions[:, [1, 0]].astype(float)
    lattice_atoms = np.flatnonzero(~adatom_mask)
    extra = Atoms() if vacancies is None else vacancies
    if not isinstance(extra, Atoms):
        raise ValueError(f"vacancies must be an ase.Atoms of missing atoms, got {type(extra)}.")
    slot_yx = np.concatenate([yx[lattice_atoms], extra.positions[:, [1, 0]]])
    slot_z = np.concatenate([field.positions[lattice_atoms, 2], extra.positions[:, 2]])
    slot_numbers = np.concatenate([field.numbers[lattice_atoms], extra.numbers])
    label, sites, capacity = _group_sites(slot_yx, tolerance)
    distance = model.hop_distance
    if distance is None:
        distance = _auto_hop_distance(sites, label, slot_numbers)
    indptr, indices = _hop_graph(slot_yx, label, slot_numbers, distance)
    lattice = _Lattice(slot_yx, slot_z, label, sites, capacity, indptr, indices)
    slot = np.full(len(field), -1)
    slot[lattice_atoms] = np.arange(len(lattice_atoms))
    owner = np.full(len(slot_yx), -1)
    owner[: len(lattice_atoms)] = lattice_atoms
    ids = np.arange(len(field))
    state = _State(
        yx,
        field.positions[:, 2].copy(),
        field.numbers.copy(),
        adatom_mask,
        mobile_mask,
        slot,
        np.where(adatom_mask, ids, -1),
        np.ones(len(field), bool),
        owner,
    )
    return lattice, state


def _move(state: _State, lattice: _Lattice, step: _Step, atom: int, target: int) -> None:
    state.owner[state.slot[atom]] = -1
    state.owner[target] = atom
    state.slot[atom] = target
    state.pos[atom] = lattice.slot_yx[target]
    state.z[atom] = lattice.slot_z[target]
    step.free[target] = False
    step.moved[atom] = True


def _hop(state, lattice, rate, rng, step) -> None:
    if rate == 0:
        return
    candidates = np.flatnonzero(state.alive & state.mobile & (state.slot >= 0))
    movers = candidates[rng.random(candidates.size) < rate]
    for atom in rng.permutation(movers):
        source = state.slot[atom]
        targets = lattice.neighbours(source)
        targets = targets[step.free[targets]]
        if targets.size:
            target = targets[rng.integers(targets.size)]
            _move(state, lattice, step, atom, target)
            step.log(atom, "hop", lattice.slot_yx[source], lattice.slot_yx[target])


def _migrate_vacancies(state, lattice, rate, rng, step) -> None:
    if rate == 0:
        return
    vacancies = np.flatnonzero(step.free)
    chosen = vacancies[rng.random(vacancies.size) < rate]
    for vacancy in rng.permutation(chosen):
        donors = lattice.neighbours(vacancy)
        atoms = state.owner[donors]
        usable = atoms >= 0
        usable[usable] = state.mobile[atoms[usable]] & ~step.moved[atoms[usable]]
        if usable.any():
            donor = donors[usable][rng.integers(usable.sum())]
            _move(state, lattice, step, state.owner[donor], vacancy)
            step.log(
                state.owner[vacancy],
                "vacancy_migration",
                lattice.slot_yx[donor],
                lattice.slot_yx[vacancy],
            )


def _leave(state, rate, rng, step) -> None:
    if rate == 0:
        return
    adatoms = np.flatnonzero(state.alive & state.adatom)
    for atom in adatoms[rng.random(adatoms.size) < rate]:
        step.log(atom, "leave", state.pos[atom], None)
        state.alive[atom] = False


def _diffuse(state, diffusion, rng) -> None:
    adatoms = np.flatnonzero(state.alive & state.adatom)
    if diffusion == 0 or adatoms.size == 0:
        return
    _, inverse, counts = np.unique(state.cluster[adatoms], return_inverse=True, return_counts=True)
    pinned = np.bincount(inverse, weights=~state.mobile[adatoms], minlength=counts.size) > 0
    sigma = np.where(pinned, 0.0, np.sqrt(2 * diffusion / counts))
    steps = rng.standard_normal((counts.size, 2)) * sigma[:, None]
    state.pos[adatoms] += steps[inverse]


def _appear(state, rate, rng, step, box, species) -> None:
    if rate == 0:
        return
    count = rng.poisson(rate)
    lab = rng.random((count, 2)) * np.array(box)
    for atom in state.add_adatoms(lab - step.shift, *species):
        step.log(atom, "appear", None, state.pos[atom])


def _merge(state, distance, step) -> None:
    adatoms = np.flatnonzero(state.alive & state.adatom)
    if distance == 0 or adatoms.size < 2:
        return
    pos = state.pos[adatoms]
    pairs = cKDTree(pos).query_pairs(distance, output_type="ndarray")
    gaps = np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)
    pairs, gaps = pairs[gaps < distance], gaps[gaps < distance]
    for a, b in adatoms[pairs[np.lexsort((pairs[:, 1], pairs[:, 0], gaps))]]:
        first, second = state.cluster[a], state.cluster[b]
        if first == second:
            continue
        particle, other = (b, a) if second > first else (a, b)
        earlier, later = min(first, second), max(first, second)
        state.cluster[state.cluster == later] = earlier
        step.log(particle, "merge", state.pos[particle], state.pos[other], other)


def _appear_species(field: Atoms, state: _State, model: DynamicsModel, height: float):
    """(z [Å], atomic number) of appearing adatoms, or None when nothing defines the element."""
    if model.adatom_element is not None:
        number = atomic_numbers[model.adatom_element]
    elif len(field):
        pool = state.numbers[state.adatom] if state.adatom.any() else state.numbers
        number = int(np.bincount(pool).argmax())
    else:
        return None
    top = float(field.positions[:, 2].max()) if len(field) else height / 2
    return float(np.clip(top + model.adatom_height, 0.0, height)), number


def _snapshot(state, lattice, sigma, rng, shift) -> tuple[np.ndarray, ...]:
    ids = np.flatnonzero(state.alive)
    yx = state.pos[ids] + shift
    if sigma > 0:
        yx = yx + sigma * rng.standard_normal(yx.shape)
    slots = state.slot[ids]
    site = np.full(ids.size, -1)
    site[slots >= 0] = lattice.slot_site[slots[slots >= 0]]
    return ids, yx, state.z[ids], site, state.cluster[ids]


def simulate_series(
    field: Atoms,
    frames: int,
    model: DynamicsModel,
    rng: np.random.Generator | int,
    *,
    adatom: np.ndarray | None = None,
    mobile: np.ndarray | None = None,
    vacancies: Atoms | None = None,
    site_tolerance: float = 0.2,
) -> Series:
    """Move the atoms of a field through ``frames`` frames and record the ground truth.

    Parameters
    ----------
    field : ase.Atoms
        The specimen in an orthorhombic box [[W, 0, 0], [0, H, 0], [0, 0, T]] [Å], beam along +z.
    frames : int
        Number of frames, >= 1; frame 0 is the field as given (plus jitter).
    model : DynamicsModel
        The processes and their rates.
    rng : numpy.random.Generator or int
        The only source of randomness: the same seed gives the same series.
    adatom : array_like of bool, shape (N,), optional
        Which atoms are adatoms; default: the field's array 'adatom' if present, else none.
    mobile : array_like of bool, shape (N,), optional
        Which atoms may hop, donate to a vacancy or diffuse; default: the field's array 'mobile'
        if present, else every atom of a 2D material (lattice atoms spread over less than
        ``TWO_D_THICKNESS`` = 4 Å in z), else only the adatoms.
    vacancies : ase.Atoms, optional
        Atoms missing from the field: their positions become empty slots of their element.
    site_tolerance : float
        Projected distance within which slots stack into one site (column) [Å].

    Returns
    -------
    Series
        Tracks, events, drift and lattice sites; see `Series`.

    Examples
    --------
    >>> from ase import Atoms
    >>> field = Atoms("C2", positions=[[1, 1, 5], [3, 1, 5]], cell=[4, 2, 10])
    >>> series = simulate_series(field, 3, DynamicsModel(drift=(0.0, 0.5)), 0)
    >>> series.tracks[["frame", "particle", "x_A"]].iloc[-2:].to_numpy().tolist()
    [[2.0, 0.0, 2.0], [2.0, 1.0, 4.0]]
    >>> len(series.atoms(2))  # the second atom has drifted out of the box
    1
    """
    box = _validate_field(field)
    if isinstance(frames, bool) or not isinstance(frames, Integral) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}.")
    check_parameter("frames", frames)
    check_size("the track table", (frames * max(len(field), 1), 12), itemsize=8)
    if not (math.isfinite(site_tolerance) and site_tolerance >= 0):
        raise ValueError(f"site_tolerance must be >= 0 Å, got {site_tolerance}.")
    rng = np.random.default_rng(rng)
    lattice, state = _build(field, adatom, mobile, vacancies, model, site_tolerance)
    species = _appear_species(field, state, model, box[2])
    if species is None and model.appear_rate > 0:
        raise ValueError("appear_rate > 0 on an empty field needs DynamicsModel.adatom_element.")
    drift = np.arange(frames)[:, None] * np.array(model.drift)[None, :]
    events: list = []
    snapshots = []
    for frame in range(frames):
        step = _Step(frame, drift[frame], events)
        if frame > 0:
            _advance(state, lattice, model, rng, step, (box[1], box[0]), species)
        _merge(state, model.merge_distance, step)
        snapshots.append(_snapshot(state, lattice, model.thermal_sigma, rng, drift[frame]))
    tracks, table = series_tables(snapshots, events, state, (box[1], box[0]))
    return Series(
        tracks,
        table,
        drift,
        lattice.sites,
        lattice.capacity,
        np.asarray(field.cell).copy(),
        field.pbc.copy(),
    )


def _advance(state, lattice, model, rng, step, box, species) -> None:
    """Frame f-1 -> f: hops, vacancy migration, leaving, diffusion, appearance (merge follows)."""
    step.free = state.owner < 0
    step.moved = np.zeros(len(state.pos), bool)
    _hop(state, lattice, model.hop_rate, rng, step)
    _migrate_vacancies(state, lattice, model.vacancy_migration, rng, step)
    _leave(state, model.leave_rate, rng, step)
    _diffuse(state, model.adatom_diffusion, rng)
    _appear(state, model.appear_rate, rng, step, box, species)
