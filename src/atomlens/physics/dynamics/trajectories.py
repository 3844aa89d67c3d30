"""Ground truth of a simulated image series: tracks, events and drift (:class:`Series`).

:func:`atomlens.physics.dynamics.models.simulate_series` moves the atoms and assembles its record
here; positions are in (y, x) order [Å], as in :mod:`atomlens.physics.dynamics.models`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols

#: Event kinds recorded in ``Series.events``.
EVENT_KINDS = ("hop", "vacancy_migration", "appear", "leave", "merge")

_EVENT_COLUMNS = ("frame", "particle", "kind", "y_from_A", "x_from_A", "y_to_A", "x_to_A", "other")


@dataclass(frozen=True)
class Series:
    """A simulated image series: ground-truth tracks, events and drift.

    Attributes
    ----------
    tracks : pandas.DataFrame
        One row per atom per frame, sorted by frame: ``frame``, ``particle`` (stable id; the
        field's atoms keep their index), ``y_A``, ``x_A`` (imaged lab-frame position, jitter and
        drift included) [Å], ``z_A`` [Å], ``Z``, ``species``, ``adatom`` (bool), ``site``
        (projected lattice site index, -1 for adatoms), ``cluster`` (adatom cluster id: the
        particle id of its earliest member; -1 for lattice atoms), ``in_view`` (bool: inside the
        box in that frame).
    events : pandas.DataFrame
        One row per event: ``frame``, ``particle``, ``kind`` (one of ``EVENT_KINDS``),
        ``y_from_A``, ``x_from_A``, ``y_to_A``, ``x_to_A`` (jitter-free lab-frame positions with
        the drift of that frame; NaN for the missing end of 'appear' and 'leave'), ``other``
        (the earlier cluster's particle of a 'merge', else -1). For 'merge', "from" is the
        particle and "to" the other particle.
    drift_A : ndarray of shape (frames, 2)
        Accumulated drift (y, x) of each frame [Å].
    sites : ndarray of shape (S, 2)
        Projected lattice sites (y, x) in the sample frame (no drift) [Å].
    site_capacity : ndarray of shape (S,)
        Number of slots (stacked atoms) of each site.
    cell : ndarray of shape (3, 3)
        The field's box [Å].
    pbc : ndarray of shape (3,)
        The field's periodic boundary flags, passed on to ``atoms``.
    """

    tracks: pd.DataFrame
    events: pd.DataFrame
    drift_A: np.ndarray
    sites: np.ndarray
    site_capacity: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray = dataclass_field(default_factory=lambda: np.zeros(3, bool))

    @property
    def frames(self) -> int:
        """Number of frames."""
        return len(self.drift_A)

    def atoms(self, frame: int, *, margin: float = 0.0) -> Atoms:
        """The field to image in one frame.

        Positions include jitter and drift and are neither wrapped nor clipped: atoms whose
        imaged (x, y) lies outside [-margin, W + margin) x [-margin, H + margin) are left out of
        this frame (they keep their ids in ``tracks``). The arrays 'particle' and 'adatom' give
        each atom's id and flag.

        Parameters
        ----------
        frame : int
            Frame index, 0 <= frame < ``frames``.
        margin : float
            Extra border kept around the box [Å].

        Returns
        -------
        ase.Atoms
            Same cell and pbc as the field.
        """
        if not 0 <= frame < self.frames:
            raise ValueError(f"frame must lie in [0, {self.frames}), got {frame}.")
        frame_column = self.tracks["frame"].to_numpy()
        start, stop = np.searchsorted(frame_column, [frame, frame + 1])
        rows = self.tracks.iloc[start:stop]
        y, x = rows["y_A"].to_numpy(), rows["x_A"].to_numpy()
        width, height = self.cell[0, 0], self.cell[1, 1]
        keep = (x >= -margin) & (x < width + margin) & (y >= -margin) & (y < height + margin)
        rows = rows[keep]
        positions = np.column_stack([x[keep], y[keep], rows["z_A"].to_numpy()])
        atoms = Atoms(numbers=rows["Z"].to_numpy(), positions=positions, cell=self.cell)
        atoms.pbc = self.pbc
        atoms.new_array("particle", rows["particle"].to_numpy())
        atoms.new_array("adatom", rows["adatom"].to_numpy())
        return atoms

    def to_pixels(self, pixel_size: float) -> pd.DataFrame:
        """``tracks`` with ``y``, ``x`` columns in pixels (trackpy's names).

        Parameters
        ----------
        pixel_size : float
            [Å / px]; pixel (i, j) is centred at (y, x) = (i, j) * pixel_size.
        """
        if not (math.isfinite(pixel_size) and pixel_size > 0):
            raise ValueError(f"pixel_size must be > 0 Å / px, got {pixel_size}.")
        table = self.tracks.copy()
        table["y"] = table["y_A"] / pixel_size
        table["x"] = table["x_A"] / pixel_size
        return table


def series_tables(snapshots, events, state, box) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tracks and events tables of a :class:`Series` from the simulation's record.

    Parameters
    ----------
    snapshots : list of tuple
        Per frame, ``(ids, yx, z, site, cluster)`` of the atoms present: particle ids, imaged
        positions (N, 2) as (y, x) [Å], heights z [Å], lattice slot (-1 for adatoms), cluster id.
    events : list of tuple
        One row per event, in the order of ``_EVENT_COLUMNS`` (positions [Å]).
    state
        The simulation state; its ``numbers`` and ``adatom`` arrays are indexed by particle id.
    box : (float, float)
        Field of view (H, W) [Å]; ``in_view`` is ``0 <= y < H`` and ``0 <= x < W``.

    Returns
    -------
    tracks, events : pandas.DataFrame
        As :attr:`Series.tracks` and :attr:`Series.events`.
    """
    frames = np.concatenate([np.full(len(s[0]), f) for f, s in enumerate(snapshots)])
    ids, yx, z, site, cluster = (np.concatenate(part) for part in zip(*snapshots, strict=True))
    numbers = state.numbers[ids]
    tracks = pd.DataFrame(
        {
            "frame": frames.astype(np.int64),
            "particle": ids.astype(np.int64),
            "y_A": yx[:, 0],
            "x_A": yx[:, 1],
            "z_A": z,
            "Z": numbers.astype(np.int64),
            "species": np.array(chemical_symbols, dtype=object)[numbers],
            "adatom": state.adatom[ids],
            "site": site.astype(np.int64),
            "cluster": cluster.astype(np.int64),
            "in_view": (yx >= 0).all(axis=1) & (yx[:, 0] < box[0]) & (yx[:, 1] < box[1]),
        }
    )
    table = pd.DataFrame(events, columns=list(_EVENT_COLUMNS))
    table = table.astype({"frame": np.int64, "particle": np.int64, "other": np.int64})
    table = table.astype({c: float for c in _EVENT_COLUMNS[3:7]})
    return tracks, table
