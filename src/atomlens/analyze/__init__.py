"""Analyze located columns: the lattice, displacements, strain and rotation, and defects.

- ``analyze``: a table of columns (``atomlens.locate``'s) to an :class:`Analysis` with the
  fitted lattice, per-column sites, displacements, strain and flags, and the vacancies. The
  package itself is callable: ``atomlens.analyze(columns)``.
- ``fit_lattice``, ``lattice_vectors``: the lattice of a set of positions.
- ``neighbour_graph``: first-shell bonds and coordination (under- and over-coordinated
  columns).
- ``polarisation``: off-centring of one sublattice's columns within another's cage.
- ``local_strain``: strain and rotation from measured positions and ideal sites.
- ``gpa``, ``bragg_peaks``, ``reciprocal_basis``: strain maps of the image itself by geometric
  phase analysis (the second strain method).
"""

from atomlens._lazy import make_callable
from atomlens.analyze.analyze import Analysis, analyze, polarisation
from atomlens.analyze.gpa import StrainMaps, bragg_peaks, gpa, reciprocal_basis
from atomlens.analyze.lattice import Lattice, fit_lattice, lattice_vectors
from atomlens.analyze.neighbours import NeighbourGraph, neighbour_graph
from atomlens.analyze.strain import local_strain

__all__ = [
    "Analysis",
    "Lattice",
    "NeighbourGraph",
    "StrainMaps",
    "analyze",
    "bragg_peaks",
    "fit_lattice",
    "gpa",
    "lattice_vectors",
    "local_strain",
    "neighbour_graph",
    "polarisation",
    "reciprocal_basis",
]


make_callable(__name__, analyze)
