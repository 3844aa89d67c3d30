"""The analyze verb: from a table of columns to the lattice, displacements, strain and defects.

``analyze(columns)`` takes what ``atomlens.locate`` returns (any table with ``y``, ``x`` [px]):

1. the lattice (:func:`~atomlens.analyze.lattice.fit_lattice`): basis vectors, sublattices,
   every column's integer site and its displacement from the ideal lattice;
2. local strain and rotation at every column (:func:`~atomlens.analyze.strain.local_strain`);
3. the first-shell neighbour graph (:func:`~atomlens.analyze.neighbours.neighbour_graph`):
   bonds, each column's coordination, and interior columns with fewer or more neighbours than
   the most common coordination;
4. defects: vacancies (ideal sites inside the imaged area with no column near them) and
   columns off the lattice (interstitials, adatoms, noise: no sublattice site within a quarter
   of a cell), and columns whose intensity departs from their sublattice's (substitutions: a
   robust z-score beyond 4, when the table has ``intensity``).

Lengths are reported in pixels and, with a pixel size, in Å (``_A`` suffix); strain is
dimensionless and rotation in degrees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import spatial

from atomlens.analyze.lattice import Lattice, fit_lattice
from atomlens.analyze.neighbours import neighbour_graph
from atomlens.analyze.strain import local_strain
from atomlens.core.validation import check_parameter

__all__ = ["Analysis", "analyze", "polarisation"]


@dataclass
class Analysis:
    """What :func:`analyze` found.

    Attributes
    ----------
    lattice : Lattice
        Fitted origin, basis (rows a, b; (y, x) [px]) and sublattice offsets.
    columns : DataFrame
        The input table plus ``i``, ``j``, ``sublattice`` (-1 off the lattice), ``y_ideal``,
        ``x_ideal``, ``dy``, ``dx`` [px] (and ``dy_A``, ``dx_A`` [Å]), ``exx``, ``eyy``, ``exy``,
        ``rotation`` [degrees], ``off_lattice`` and ``unusual_intensity`` (bool),
        ``coordination`` (first-shell neighbours), ``at_edge`` (its first shell reaches beyond
        the imaged area), ``under_coordinated`` and ``over_coordinated`` (bool, interior
        columns only).
    vacancies : DataFrame
        ``i``, ``j``, ``sublattice``, ``y``, ``x`` [px] (and ``y_A``, ``x_A``) of empty sites.
    pixel_size : float or None
        [Å/px].
    bonds : DataFrame
        The first-shell neighbour graph: ``a``, ``b`` (row numbers in ``columns``),
        ``distance`` [px] (and ``distance_A`` [Å]), ``angle`` [degrees].
    """

    lattice: Lattice
    columns: pd.DataFrame
    vacancies: pd.DataFrame
    pixel_size: float | None
    bonds: pd.DataFrame

    def summary(self) -> dict:
        """JSON-friendly numbers: lattice, counts of defects, strain spread."""
        scale = self.pixel_size
        a, b = self.lattice.lengths
        strain = self.columns[["exx", "eyy", "exy", "rotation"]]
        out = {
            "columns": len(self.columns),
            "sublattices": len(self.lattice.motif),
            "a_px": round(float(a), 4),
            "b_px": round(float(b), 4),
            "angle_deg": round(self.lattice.angle, 3),
            "basis_yx_px": np.round(self.lattice.basis, 4).tolist(),
            "vacancies": len(self.vacancies),
            "off_lattice": int(self.columns["off_lattice"].sum()),
            "unusual_intensity": int(self.columns["unusual_intensity"].sum()),
            "coordination_expected": int(
                self.columns.loc[~self.columns["at_edge"], "coordination"].mode().min()
            )
            if (~self.columns["at_edge"]).any()
            else None,
            "under_coordinated": int(self.columns["under_coordinated"].sum()),
            "over_coordinated": int(self.columns["over_coordinated"].sum()),
            "bonds": len(self.bonds),
            "displacement_rms_px": round(
                float(np.sqrt(np.nanmean(self.columns["dy"] ** 2 + self.columns["dx"] ** 2))), 4
            ),
            "strain_std": {k: round(float(v), 6) for k, v in strain.std().items()},
        }
        if scale is not None:
            out |= {
                "pixel_size_A": scale,
                "a_A": round(float(a) * scale, 4),
                "b_A": round(float(b) * scale, 4),
            }
        return out

    def to_json(self) -> str:
        return json.dumps(self.summary(), indent=1)


def _vacancies(lattice: Lattice, sites: pd.DataFrame, points: np.ndarray) -> pd.DataFrame:
    """Ideal sites inside the convex hull of the columns with no column within 0.3 of the
    shortest site distance."""
    assigned = sites[sites["sublattice"] >= 0]
    empty = pd.DataFrame(columns=["i", "j", "sublattice", "y", "x"])
    if len(assigned) < 4:
        return empty
    i_range = np.arange(assigned["i"].min(), assigned["i"].max() + 1)
    j_range = np.arange(assigned["j"].min(), assigned["j"].max() + 1)
    grid = np.stack(np.meshgrid(i_range, j_range, indexing="ij"), -1).reshape(-1, 2)
    candidates = []
    for k in range(len(lattice.motif)):
        positions = lattice.sites(grid, np.full(len(grid), k))
        candidates.append(np.column_stack([grid, np.full(len(grid), k), positions]))
    candidates = np.vstack(candidates)
    hull = spatial.Delaunay(points)
    candidates = candidates[hull.find_simplex(candidates[:, 3:5]) >= 0]
    nearest_site = float(
        np.min(spatial.cKDTree(candidates[:, 3:5]).query(candidates[:, 3:5], k=2)[0][:, 1])
    )
    distance, _ = spatial.cKDTree(points).query(candidates[:, 3:5])
    missing = candidates[distance > 0.3 * nearest_site]
    return pd.DataFrame(
        {
            "i": missing[:, 0].astype(int),
            "j": missing[:, 1].astype(int),
            "sublattice": missing[:, 2].astype(int),
            "y": missing[:, 3],
            "x": missing[:, 4],
        }
    )


def _unusual_intensity(columns: pd.DataFrame, limit: float = 4.0) -> np.ndarray:
    """Robust z-score of each column's intensity within its sublattice beyond ``limit``."""
    flags = np.zeros(len(columns), dtype=bool)
    if "intensity" not in columns:
        return flags
    for _, group in columns[columns["sublattice"] >= 0].groupby("sublattice"):
        values = group["intensity"].to_numpy(float)
        spread = 1.4826 * np.median(np.abs(values - np.median(values)))
        if len(values) >= 5 and spread > 0:
            score = np.abs(values - np.median(values)) / spread
            flags[group.index.to_numpy()] = score > limit
    return flags


def analyze(
    columns: pd.DataFrame,
    pixel_size: float | None = None,
    *,
    basis: np.ndarray | None = None,
    neighbours: int = 8,
) -> Analysis:
    """Lattice, displacements, strain and defects of a table of columns.

    Parameters
    ----------
    columns : DataFrame
        ``y``, ``x`` [px] of one image (``atomlens.locate``'s table; a stack's table needs
        one frame at a time), optionally ``intensity``.
    pixel_size : float, optional
        [Å/px]; taken from ``columns.attrs["pixel_size"]`` when there.
    basis : ndarray (2, 2), optional
        Rows a, b, (y, x) [px]: a starting basis instead of the one found.
    neighbours : int
        Neighbours in each local strain fit.

    Returns
    -------
    Analysis

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(12.0), np.arange(12.0), indexing="ij"), -1)
    >>> table = pd.DataFrame(grid.reshape(-1, 2) * 10.0 + 5.0, columns=["y", "x"])
    >>> result = analyze(table.drop(index=50), pixel_size=0.39)
    >>> result.summary()["vacancies"], round(result.summary()["a_A"], 2)
    (1, 3.9)
    """
    if not isinstance(columns, pd.DataFrame) or not {"y", "x"} <= set(columns.columns):
        raise ValueError("columns must be a DataFrame with y and x [px] (atomlens.locate's table).")
    if "frame" in columns and columns["frame"].nunique() > 1:
        raise ValueError(
            "columns holds several frames; analyze one frame at a time "
            "(columns[columns['frame'] == k])."
        )
    if pixel_size is None:
        pixel_size = columns.attrs.get("pixel_size")
    if pixel_size is not None:
        pixel_size = check_parameter("pixel_size", pixel_size)
    table = columns.reset_index(drop=True).copy()
    points = table[["y", "x"]].to_numpy(float)
    lattice, sites = fit_lattice(points, basis)
    strain = local_strain(points, sites[["y_ideal", "x_ideal"]].to_numpy(), neighbours=neighbours)
    table = pd.concat([table, sites, strain], axis=1)
    table["off_lattice"] = table["sublattice"] < 0
    table["unusual_intensity"] = _unusual_intensity(table)
    vacancies = _vacancies(lattice, sites, points)
    graph = neighbour_graph(points)
    table["coordination"] = graph.coordination
    table["at_edge"] = graph.edge
    table["under_coordinated"] = graph.under
    table["over_coordinated"] = graph.over
    bonds = graph.bonds
    if pixel_size is not None:
        bonds["distance_A"] = bonds["distance"] * pixel_size
        table["dy_A"], table["dx_A"] = table["dy"] * pixel_size, table["dx"] * pixel_size
        vacancies["y_A"], vacancies["x_A"] = (
            vacancies["y"] * pixel_size,
            vacancies["x"] * pixel_size,
        )
    return Analysis(lattice, table, vacancies, pixel_size, bonds)


def polarisation(
    columns: pd.DataFrame,
    site: object,
    around: object,
    *,
    by: str = "class",
    neighbours: int = 4,
    pixel_size: float | None = None,
) -> pd.DataFrame:
    """Off-centring of every column of one kind within the cage of columns of another kind.

    For a perovskite imaged along [001] in HAADF, ``site="light"`` (the B-site, Ti-O columns)
    and ``around="heavy"`` (the A-site, Sr, Ba or Pb columns) of ``atomlens.locate``'s ``class``:
    each B column's displacement from the mean of its ``neighbours`` nearest A columns, the
    quantity whose map shows ferroelectric polarisation (which points against it for
    displacive ferroelectrics like PbTiO3).

    Parameters
    ----------
    columns : DataFrame
        ``y``, ``x`` [px] and the column ``by`` (a ``locate`` table, or ``Analysis.columns``
        with ``by="sublattice"``).
    site, around : object
        The values of ``by`` that mark the displaced columns and the cage.
    by : str
        The table column that tells them apart.
    neighbours : int
        How many cage columns surround a site (4 in a perovskite along [001]).
    pixel_size : float, optional
        [Å/px]; taken from ``columns.attrs`` when there.

    Returns
    -------
    DataFrame
        Per site column with a whole cage (columns at the edge of the imaged area are left
        out): ``y``, ``x`` [px], ``dy``, ``dx`` [px] from the cage centre (and ``dy_A``,
        ``dx_A`` [Å]), ``magnitude`` [px] and ``angle`` [degrees, from x towards y].

    Examples
    --------
    >>> grid = np.stack(np.meshgrid(np.arange(8.0), np.arange(8.0), indexing="ij"), -1)
    >>> a_sites = grid.reshape(-1, 2) * 10.0
    >>> b_sites = a_sites + [5.0, 5.4]  # every B column 0.4 px off centre along x
    >>> table = pd.DataFrame(np.vstack([a_sites, b_sites]), columns=["y", "x"])
    >>> table["class"] = ["heavy"] * 64 + ["light"] * 64
    >>> shifts = polarisation(table, "light", "heavy")
    >>> len(shifts), round(float(shifts["dx"].median()), 3), round(float(shifts["dy"].median()), 3)
    (49, 0.4, 0.0)
    """
    if not isinstance(columns, pd.DataFrame) or not {"y", "x", by} <= set(columns.columns):
        raise ValueError(f"columns must be a DataFrame with y, x [px] and {by!r}.")
    kinds = set(columns[by].unique())
    for name, value in (("site", site), ("around", around)):
        if value not in kinds:
            have = sorted(map(str, kinds))
            raise ValueError(f"{name}={value!r} is not a value of columns[{by!r}]; it has {have}.")
    if site == around:
        raise ValueError("site and around must be different kinds of columns.")
    if pixel_size is None:
        pixel_size = columns.attrs.get("pixel_size")
    centres = columns.loc[columns[by] == site, ["y", "x"]].to_numpy(float)
    cage = columns.loc[columns[by] == around, ["y", "x"]].to_numpy(float)
    if len(cage) < neighbours:
        raise ValueError(f"The cage has {len(cage)} columns, fewer than {neighbours}.")
    distance, index = spatial.cKDTree(cage).query(centres, k=neighbours)
    offsets = centres - cage[index].mean(axis=1)
    # a column at the edge of the imaged area has a lopsided cage: its farthest cage column is
    # farther than the typical cage's
    whole = distance[:, -1] < 1.2 * np.median(distance[:, -1])
    result = pd.DataFrame(
        {
            "y": centres[whole, 0],
            "x": centres[whole, 1],
            "dy": offsets[whole, 0],
            "dx": offsets[whole, 1],
        }
    )
    result["magnitude"] = np.hypot(result["dy"], result["dx"])
    result["angle"] = np.degrees(np.arctan2(result["dy"], result["dx"]))
    if pixel_size is not None:
        result["dy_A"] = result["dy"] * pixel_size
        result["dx_A"] = result["dx"] * pixel_size
    return result
