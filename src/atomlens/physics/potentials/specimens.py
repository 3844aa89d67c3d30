"""Specimens for Ronchigram simulation, each a source of transmission-function slices.

A specimen describes itself cheaply; ``iter_slices`` makes the transmission functions
t = exp(i sigma V_z) of a batch of random realisations, one slice at a time (so a thick specimen
never has to sit in memory whole). Each batch item draws from its own random generator, so an
item's specimen does not depend on which other items share its batch.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from atomlens.core.energy import interaction_parameter
from atomlens.core.validation import check_atoms, check_parameter
from atomlens.physics.optics.transfer import spatial_frequencies
from atomlens.physics.potentials.projection import projected_potentials
from atomlens.physics.potentials.scattering import atomic_number

#: Atom density of amorphous carbon at 2.0 g/cm^3 [atoms / Å^3].
AMORPHOUS_CARBON_DENSITY = 2.0 / 12.011 * 0.6022


def _transmission(potential: torch.Tensor, energy: float) -> torch.Tensor:
    phase = (interaction_parameter(energy) * potential).to(torch.float32)
    return torch.polar(torch.ones_like(phase), phase)


_REMEDY = (
    "make the field of view smaller (for a Ronchigram, a coarser angular_sampling=... or a "
    "smaller size=...) or the specimen thinner"
)


def _where(extent: tuple[float, float], thickness: float) -> str:
    return f"{extent[0]:.4g} x {extent[1]:.4g} Å, {thickness:.4g} Å thick"


class Specimen:
    """Base class: a thin or thick specimen sampled on a periodic real-space grid."""

    @property
    def propagation_distance(self) -> float:
        """Distance between slices [Å]; 0 for a single projected slice."""
        return 0.0

    def iter_slices(
        self,
        shape: tuple[int, int],
        sampling: float,
        energy: float,
        rngs: Sequence[np.random.Generator],
        device: str | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield transmission functions of shape (len(rngs), H, W), complex64, slice by slice."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Parameters with units, for sidecar files."""
        raise NotImplementedError


@dataclass(frozen=True)
class AmorphousSpecimen(Specimen):
    """Randomly placed atoms of one element, with Lobato projected potentials.

    Parameters
    ----------
    thickness : float
        [Å]. Thicker than ``slice_thickness`` means multislice.
    density : float
        [atoms / Å^3]; the default is amorphous carbon at 2.0 g/cm^3 (0.100 / Å^3).
    element : str
        Chemical symbol.
    slice_thickness : float
        [Å].
    thermal_sigma : float
        Gaussian smearing of each atom per axis [Å].
    min_distance : float
        Hard-core distance [Å]: no two atoms of a slice closer than this in 3-D, as in real
        amorphous carbon (nearest neighbours 1.4-1.5 Å; 1.2 Å in the abTEM test specimens). 0
        places the atoms independently, an ideal gas with clumps and holes a real film lacks.
        At most 0.6 x the mean spacing ``density ** (-1/3)`` (1.29 Å for carbon); slices at most
        64 Å thick (see :func:`hard_core_slice`).

    Examples
    --------
    >>> from scipy.spatial import cKDTree
    >>> atoms = hard_core_positions(2000, (30.0, 30.0, 20.0), 1.2, np.random.default_rng(0))
    >>> len(atoms), len(cKDTree(atoms, boxsize=(30.0, 30.0, 20.0)).query_pairs(1.2))
    (2000, 0)
    """

    thickness: float = 100.0
    density: float = AMORPHOUS_CARBON_DENSITY
    element: str = "C"
    slice_thickness: float = 20.0
    thermal_sigma: float = 0.0
    min_distance: float = 0.0

    def __post_init__(self) -> None:
        atomic_number(self.element)
        for name in ("thickness", "density", "slice_thickness", "thermal_sigma", "min_distance"):
            check_parameter(name, getattr(self, name))
        if self.min_distance > 0.6 * self.density ** (-1 / 3):
            raise ValueError(
                f"min_distance={self.min_distance} Å is more than 0.6 x the mean spacing of "
                f"{self.density ** (-1 / 3):.3g} Å at density={self.density} atoms/Å^3; give a "
                "smaller min_distance."
            )
        if self.min_distance > 0 and self.propagation_distance > HARD_CORE_BLOCK[1]:
            raise ValueError(
                f"Slices of a hard-core specimen are at most {HARD_CORE_BLOCK[1]} Å thick, got "
                f"{self.propagation_distance:.4g} Å; give a smaller slice_thickness."
            )

    def _slice_thicknesses(self) -> list[float]:
        count = max(1, math.ceil(self.thickness / self.slice_thickness - 1e-9))
        return [self.thickness / count] * count

    def iter_slices(self, shape, sampling, energy, rngs, device=None):
        extent = (shape[0] * sampling, shape[1] * sampling)
        z = atomic_number(self.element)
        atoms = self.density * extent[0] * extent[1] * self.thickness
        check_atoms(atoms, _where(extent, self.thickness), _REMEDY)
        for dz in self._slice_thicknesses():
            atoms = []
            for rng in rngs:
                if self.min_distance > 0:
                    positions = hard_core_slice(extent, dz, self.density, self.min_distance, rng)
                else:
                    count = rng.poisson(self.density * extent[0] * extent[1] * dz)
                    positions = rng.uniform(0, 1, (count, 2)) * extent
                atoms.append((positions, np.full(len(positions), z)))
            potential = projected_potentials(
                atoms, shape, sampling, thermal_sigma=self.thermal_sigma, device=device
            )
            yield _transmission(potential, energy)

    @property
    def propagation_distance(self) -> float:
        """Distance between slices actually used [Å]."""
        return self._slice_thicknesses()[0]

    def describe(self) -> dict:
        return {
            "type": "amorphous",
            "element": self.element,
            "thickness_A": self.thickness,
            "density_atoms_per_A3": self.density,
            "slice_thickness_A": self.propagation_distance,
            "thermal_sigma_A": self.thermal_sigma,
            "min_distance_A": self.min_distance,
        }


def hard_core_positions(
    count: int,
    box: tuple[float, float, float],
    min_distance: float,
    rng: np.random.Generator,
    rounds: int = 60,
) -> np.ndarray:
    """``count`` random points in a periodic ``box`` [Å], none closer than ``min_distance`` [Å].

    Uniform points, then one point of every pair that is too close redrawn until none is
    (``rounds`` times at most: at the density of amorphous carbon and 1.2 Å, about 20 rounds
    suffice); points still too close after that are dropped. Returns (n, 3) in the axis order
    of ``box``. ase and abTEM have no such generator; scipy's k-d tree finds the pairs.
    """
    from scipy.spatial import cKDTree

    size = np.asarray(box, dtype=float)
    positions = rng.uniform(0, 1, (count, 3)) * size
    close = cKDTree(positions, boxsize=size).query_pairs(min_distance, output_type="ndarray")
    moved = np.unique(close[:, 0])
    for _ in range(rounds):
        if len(moved) == 0:
            return positions
        positions[moved] = rng.uniform(0, 1, (len(moved), 3)) * size
        tree = cKDTree(positions, boxsize=size)
        moved = moved[tree.query_ball_point(positions[moved], min_distance, return_length=True) > 1]
    return np.delete(positions, moved, axis=0)


#: Side and depth of the periodic hard-core blocks amorphous slices are cut from [Å], and how
#: many different blocks there are per (element density, distance).
HARD_CORE_BLOCK = (96.0, 64.0)
HARD_CORE_BLOCKS = 8


@functools.cache
def _hard_core_block(density: float, min_distance: float, index: int) -> np.ndarray:
    side, depth = HARD_CORE_BLOCK
    rng = np.random.default_rng([index, round(min_distance * 1e4), int(density * 1e6)])
    count = round(density * side * side * depth)
    positions = hard_core_positions(count, (side, side, depth), min_distance, rng)
    positions.setflags(write=False)
    return positions


def hard_core_slice(
    extent: tuple[float, float],
    depth: float,
    density: float,
    min_distance: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(y, x) [Å] of the atoms of one amorphous slice with a hard core, in [0, extent).

    Placing tens of thousands of hard spheres per slice and Ronchigram would cost 10 x the whole
    simulation, so each slice is cut from one of :data:`HARD_CORE_BLOCKS` periodic blocks of
    96 x 96 x 64 Å (made once per process): a random one of them, shifted at random in all three
    axes, under a random one of the 8 symmetries of the square, tiled over a larger field. A
    Ronchigram's shadow image shows a field of a few nm, under the block's side; a slice up to
    64 Å deep holds each atom once. Tiles meet without the hard core along the field's edges.
    """
    side, block_depth = HARD_CORE_BLOCK
    if depth > block_depth:
        raise ValueError(f"A hard-core slice is at most {block_depth} Å deep, got {depth}.")
    index = int(rng.integers(HARD_CORE_BLOCKS))
    block = _hard_core_block(float(density), float(min_distance), index)
    shift = rng.uniform(0, 1, 3) * (side, side, block_depth)
    z = (block[:, 2] + shift[2]) % block_depth
    plane = block[z < depth][:, :2]
    if rng.uniform() < 0.5:
        plane = plane[:, ::-1]
    plane = (plane * np.where(rng.uniform(size=2) < 0.5, -1.0, 1.0) + shift[:2]) % side
    tiles = [math.ceil(e / side) for e in extent]
    offsets = np.stack(np.meshgrid(*(np.arange(t) * side for t in tiles), indexing="ij"), -1)
    positions = (plane[None] + offsets.reshape(-1, 1, 2)).reshape(-1, 2)
    return positions[(positions[:, 0] < extent[0]) & (positions[:, 1] < extent[1])]


@dataclass(frozen=True)
class PhaseGrating(Specimen):
    """A random phase grating t = exp(i phase), phase Gaussian with a given correlation length.

    Parameters
    ----------
    phase_std : float
        Standard deviation of the phase [rad].
    correlation_length : float
        Standard deviation of the Gaussian filter applied to white noise [Å]; 0 gives white noise.
    """

    phase_std: float = 0.5
    correlation_length: float = 0.0

    def __post_init__(self) -> None:
        check_parameter("phase_std", self.phase_std)
        if self.correlation_length != 0:
            check_parameter("correlation_length", self.correlation_length)

    def iter_slices(self, shape, sampling, energy, rngs, device=None):
        noise = torch.from_numpy(np.stack([rng.standard_normal(shape) for rng in rngs]))
        if self.correlation_length > 0:
            ky, kx = spatial_frequencies(shape, sampling)
            gauss = torch.exp(-2 * math.pi**2 * self.correlation_length**2 * (ky**2 + kx**2))
            noise = torch.fft.ifft2(torch.fft.fft2(noise) * gauss).real
        noise = noise / noise.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        phase = (self.phase_std * noise).to(device=device, dtype=torch.float32)
        yield torch.polar(torch.ones_like(phase), phase)

    def describe(self) -> dict:
        return {
            "type": "phase_grating",
            "phase_std_rad": self.phase_std,
            "correlation_length_A": self.correlation_length,
        }


@dataclass(frozen=True)
class CrystalSpecimen(Specimen):
    """A thin crystal, an ``ase.Atoms`` whose cell z axis is the beam direction.

    The crystal is repeated to cover the field of view, turned in plane by a random angle (or the
    given one), shifted at random, and projected in slices.

    Parameters
    ----------
    atoms : ase.Atoms
        Unit cell, oriented with the beam along z.
    repeats_z : int
        Unit cells along the beam; the thickness is ``repeats_z * cell[2, 2]``.
    rotation : float or None
        In-plane rotation [deg]; None draws one uniformly per item.
    slice_thickness : float
        [Å]; the projected potential of each slab of this thickness forms one slice.
    thermal_sigma : float
        Gaussian smearing of each atom per axis [Å].
    """

    atoms: object = field(repr=False, default=None)
    repeats_z: int = 1
    rotation: float | None = None
    slice_thickness: float = 10.0
    thermal_sigma: float = 0.08

    def __post_init__(self) -> None:
        from ase import Atoms

        if not isinstance(self.atoms, Atoms) or len(self.atoms) == 0:
            raise ValueError("CrystalSpecimen needs a non-empty ase.Atoms unit cell.")
        check_parameter("repeats_z", self.repeats_z, kind="unit_cells")
        if self.rotation is not None:
            check_parameter("rotation", self.rotation)
        check_parameter("slice_thickness", self.slice_thickness)
        check_parameter("thermal_sigma", self.thermal_sigma)
        check_parameter("thickness", self.thickness)

    @property
    def thickness(self) -> float:
        """[Å]."""
        return float(self.atoms.cell[2, 2]) * self.repeats_z

    def _layer(self, extent: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
        cell = np.asarray(self.atoms.cell)
        diagonal = math.hypot(*extent)
        reps_xy = [max(1, math.ceil(diagonal / np.linalg.norm(cell[i, :2])) + 2) for i in (0, 1)]
        atoms = len(self.atoms) * reps_xy[0] * reps_xy[1] * self.repeats_z
        check_atoms(atoms, _where(extent, self.thickness), _REMEDY)
        supercell = self.atoms.repeat((reps_xy[0], reps_xy[1], self.repeats_z))
        xyz = supercell.positions - supercell.cell.sum(axis=0) * [0.5, 0.5, 0]
        angle = np.deg2rad(rng.uniform(0, 360) if self.rotation is None else self.rotation)
        c, s = math.cos(angle), math.sin(angle)
        x = c * xyz[:, 0] - s * xyz[:, 1] + extent[1] / 2 + rng.uniform(-1, 1)
        y = s * xyz[:, 0] + c * xyz[:, 1] + extent[0] / 2 + rng.uniform(-1, 1)
        inside = (y >= 0) & (y < extent[0]) & (x >= 0) & (x < extent[1])
        return np.column_stack([y, x, xyz[:, 2], supercell.numbers])[inside]

    def iter_slices(self, shape, sampling, energy, rngs, device=None):
        extent = (shape[0] * sampling, shape[1] * sampling)
        layers = [self._layer(extent, rng) for rng in rngs]
        count = max(1, math.ceil(self.thickness / self.slice_thickness - 1e-9))
        edges = np.linspace(0, self.thickness, count + 1)
        edges[-1] = np.inf
        z0 = [layer[:, 2].min() if len(layer) else 0.0 for layer in layers]
        for lo, hi in itertools.pairwise(edges):
            atoms = []
            for layer, zmin in zip(layers, z0, strict=True):
                z = layer[:, 2] - zmin
                chosen = layer[(z >= lo) & (z < hi)]
                atoms.append((chosen[:, :2], chosen[:, 3].astype(int)))
            potential = projected_potentials(
                atoms, shape, sampling, thermal_sigma=self.thermal_sigma, device=device
            )
            yield _transmission(potential, energy)

    @property
    def propagation_distance(self) -> float:
        """Distance between slices [Å]."""
        count = max(1, math.ceil(self.thickness / self.slice_thickness - 1e-9))
        return self.thickness / count

    def describe(self) -> dict:
        return {
            "type": "crystal",
            "formula": self.atoms.get_chemical_formula(),
            "cell_A": np.asarray(self.atoms.cell).round(4).tolist(),
            "thickness_A": self.thickness,
            "rotation_deg": self.rotation,
            "thermal_sigma_A": self.thermal_sigma,
        }


@dataclass(frozen=True)
class PotentialSpecimen(Specimen):
    """A given projected potential, one array per slice, for agreement tests or user data.

    Parameters
    ----------
    potential : array of shape (S, H, W) or (H, W)
        Projected potential of each slice [V Å] on the simulation grid (rows = y).
    sampling : float
        Its pixel size [Å]; must equal the simulation grid's.
    slice_thickness : float
        Distance between slices [Å].
    """

    potential: np.ndarray = field(repr=False, default=None)
    sampling: float = 0.0
    slice_thickness: float = 0.0

    def __post_init__(self) -> None:
        array = np.asarray(self.potential, dtype=float)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or not np.isfinite(array).all():
            raise ValueError("potential must be a finite (S, H, W) or (H, W) array [V Å].")
        object.__setattr__(self, "potential", array)

    @property
    def propagation_distance(self) -> float:
        """Distance between slices [Å]."""
        return self.slice_thickness

    def iter_slices(self, shape, sampling, energy, rngs, device=None):
        if tuple(self.potential.shape[1:]) != tuple(shape) or not math.isclose(
            sampling, self.sampling, rel_tol=1e-6
        ):
            raise ValueError(
                f"The potential is {self.potential.shape[1:]} px at {self.sampling} Å, but the "
                f"simulation grid is {tuple(shape)} px at {sampling:.6g} Å; resample it or "
                "choose the detector so that the grids agree (oversampling=1)."
            )
        for layer in torch.from_numpy(self.potential):
            yield _transmission(layer.to(device), energy)[None].expand(len(rngs), *shape)

    def describe(self) -> dict:
        return {
            "type": "potential",
            "slices": int(self.potential.shape[0]),
            "sampling_A": self.sampling,
            "slice_thickness_A": self.slice_thickness,
        }
