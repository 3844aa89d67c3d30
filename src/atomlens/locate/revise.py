"""Second looks at the fitted columns of one image: each fit done, what the fits say is
still wrong is fitted again.

- :func:`fitted`: the batched Gaussian refinement of candidate positions, as a table.
- :func:`drop_duplicates`: the weaker of two fits that converged onto one column dropped.
- :func:`mended`: fits far wider or narrower than the typical column (at a few tens of counts
  a weak column's fit shrinks onto a noise spike or spreads over a neighbour) fitted again
  with the width held near the typical one.
- :func:`pruned`: columns off the lattice right beside one on it (noise on the flank of a
  dumbbell) dropped unless strong (:func:`~atomlens.locate.sites.off_site_rivals`).
- :func:`with_sites`: empty lattice sites the columns vote for tested, and the columns found
  there added (:func:`~atomlens.locate.sites.lattice_sites`).
- :func:`polished`: once the columns are decided, every one fitted again in a window that
  holds more of its tails than the detection's (``locate(..., precise=True)``).

Each refit touches only the columns within reach of what changed (:func:`refit_near`): the
others are drawn and subtracted, as the refinement's block iteration does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import spatial

from atomlens.locate.motif import Cell
from atomlens.locate.refine import neighbour_reach, refine_columns
from atomlens.locate.sites import (
    SITE_DRIFT,
    SITE_PASSES,
    SITE_REFIT_SIGNIFICANCE,
    SITE_SIGNIFICANCE,
    SITE_WIDTH,
    column_image,
    fitted_basis,
    off_site_rivals,
    site_discoveries,
    site_significance,
    voted_sites,
)

__all__ = [
    "POLISH_DRIFT",
    "POLISH_REACH",
    "POLISH_ROUNDS",
    "POLISH_WINDOW",
    "RIVAL_SIGNIFICANCE",
    "WIDEST",
    "WIDTH_FLOOR",
    "WIDTH_OUTLIER",
    "drop_duplicates",
    "fitted",
    "mended",
    "polished",
    "pruned",
    "refit_near",
    "thinned",
    "typical_width",
    "width_floor",
    "window",
    "with_sites",
]

#: A fit this many times wider or narrower than the typical column is fitted again.
WIDTH_OUTLIER = 2.5
#: Least amplitude / its standard error of a column off the lattice beside one on it.
RIVAL_SIGNIFICANCE = 5.0


def thinned(ordered: np.ndarray, distance: float) -> np.ndarray:
    """Mask of the points (strongest first) not closer than ``distance`` to a stronger kept one."""
    keep = np.ones(len(ordered), dtype=bool)
    if len(ordered) < 2:
        return keep
    for i, j in sorted(spatial.cKDTree(ordered).query_pairs(distance)):
        if keep[i]:
            keep[j] = False
    return keep


def drop_duplicates(table: pd.DataFrame, radius: float) -> pd.DataFrame:
    """The weaker of two columns closer than ``radius`` [px] removed."""
    order = table.sort_values("intensity", ascending=False, kind="stable")
    return order[thinned(order[["y", "x"]].to_numpy(), radius)].sort_index()


def _near(table: pd.DataFrame, points: np.ndarray, distance: float) -> pd.DataFrame:
    """The rows of ``table`` whose column lies within ``distance`` [px] of any of ``points``."""
    if not len(table) or not len(points):
        return table.iloc[:0]
    gap, _ = spatial.cKDTree(np.asarray(points, dtype=float).reshape(-1, 2)).query(
        table[["y", "x"]].to_numpy(), distance_upper_bound=distance
    )
    return table[np.isfinite(gap)]


def window(spacing: float, side: float = 1.0) -> tuple[int, float]:
    """The refinement's window half-side [px] and starting Gaussian width [px] for columns
    ``spacing`` [px] apart: a window ``side`` spacings wide (default one), a width of a sixth
    of a spacing."""
    return int(np.clip(round(0.5 * side * spacing), 2, 20)), max(spacing / 6.0, 0.7)


#: Largest Gaussian width of a column [spacings]. Where the probe is about as wide as the
#: columns are apart (B and N 1.45 Å apart at 60 kV and 19 mrad), a free width grows over
#: the neighbours, the block iteration then subtracts too much from them, and their fits
#: diverge: on such an hBN frame, 140 of 234 candidates converged with free widths and all
#: with this bound, 222 of them within 1 px of the truth (benchmarks/locate_cell_check.py).
#: Well-resolved columns are 0.15-0.25 spacings wide.
WIDEST = 0.35


def fitted(
    image: np.ndarray,
    starts: np.ndarray,
    spacing: float,
    rounds: int,
    narrowest: np.ndarray | float = 0.3,
    widest: np.ndarray | float | None = None,
    *,
    joint: bool = True,
    floor: float = 0.3,
    side: float = 1.0,
    initial: np.ndarray | None = None,
) -> pd.DataFrame:
    """The refined columns of integer starts ``starts`` that converged with their centre on
    the image (the index is the start's; ``sigma_amplitude`` kept for the caller). Widths stay
    within [``narrowest``, ``widest``] px, never under ``floor`` [px] (:func:`width_floor`)
    and never over :data:`WIDEST` spacings; ``joint``: strongly overlapping columns fitted
    jointly; ``side``: the window's side [spacings] (:func:`window`); ``initial``: a fit to
    start from (both: ``refine_columns``)."""
    half, width = window(spacing, side)
    cap = max(WIDEST * spacing, 0.7)
    widest = cap if widest is None else np.minimum(widest, cap)
    narrowest = np.minimum(np.maximum(narrowest, floor), widest)
    fit = refine_columns(image, starts, half=half, width=width, rounds=rounds,
                         narrowest=narrowest, widest=widest, joint=joint,
                         initial=initial)  # fmt: skip
    table = pd.DataFrame(fit.columns)
    keep = table["converged"] & table["y"].between(-0.5, image.shape[0] - 0.5)
    keep &= table["x"].between(-0.5, image.shape[1] - 0.5)
    return table[keep].drop(columns="converged")


def typical_width(table: pd.DataFrame) -> float:
    """The median Gaussian width [px] of the more significant half of the columns (at a few
    tens of counts many weak fits shrink onto a noise spike and would drag a plain median)."""
    significance = table["amplitude"] / table["sigma_amplitude"]
    strong = table["width"][significance >= significance.median()]
    return float(strong.median()) if len(strong) else float(table["width"].median())


#: The narrowest a column's fitted Gaussian may be, in widths of the averaged unit cell's
#: narrowest column (:class:`~atomlens.locate.motif.Cell`). At a few tens of counts per
#: column (0.04 counts per pixel at 20 e-/column on a 256 px Si [110] scene) a free width
#: shrinks onto a few counts (0.7 px where the columns are 4 px wide) and the fit follows
#: the noise; held near the width every column has, it uses all of them.
WIDTH_FLOOR = 0.75


def width_floor(cell: Cell | None, spacing: float) -> float:
    """The least fitted width [px] for an image whose averaged cell is ``cell`` and whose
    columns are ``spacing`` [px] apart: :data:`WIDTH_FLOOR` of the cell's narrowest column's,
    or 0.3 px without a fitted cell or when that column is wider than any column may be
    (:data:`WIDEST` spacings: a column the cell did not show was fitted into it, as the S2
    beside Mo of a MoS2 scene at 50 e-/column, whose one Gaussian came out 9.9 px wide for
    columns 4 px wide, and every fit was held at the widest)."""
    if cell is None or not np.isfinite(cell.width) or cell.width > WIDEST * spacing:
        return 0.3
    return max(0.3, WIDTH_FLOOR * float(cell.width))


def refit_near(
    flat: np.ndarray,
    table: pd.DataFrame,
    spacing: float,
    rounds: int,
    bounded: pd.Index,
    sites: np.ndarray,
    width: float,
    first: int,
    around: np.ndarray | None = None,
    *,
    joint: bool = True,
    floor: float = 0.3,
) -> pd.DataFrame:
    """``table`` with the columns ``bounded`` (index labels) and new columns at ``sites``
    [px] fitted again, their width held within :data:`~atomlens.locate.sites.SITE_WIDTH` of
    ``width``, together with every column within reach of them (or of the points ``around``
    [px], where columns were dropped); the others are held fixed
    (subtracted from the image: the refinement's block iteration). A column is kept when its
    fit converges (a new one also needs an amplitude
    :data:`~atomlens.locate.sites.SITE_REFIT_SIGNIFICANCE` standard errors above 0 and to stay
    within :data:`~atomlens.locate.sites.SITE_DRIFT` spacings of its site); one of the others
    whose refit fails keeps its first fit. New columns get indices from ``first`` or
    after the largest of ``table``'s, whichever is larger."""
    half, start_width = window(spacing)
    reach = neighbour_reach(half, start_width)
    centres = np.vstack([table.loc[bounded, ["y", "x"]].to_numpy(), sites.reshape(-1, 2),
                         np.zeros((0, 2)) if around is None else around])  # fmt: skip
    distance, _ = spatial.cKDTree(centres).query(table[["y", "x"]].to_numpy(),
                                                 distance_upper_bound=reach)  # fmt: skip
    near = np.isfinite(distance)
    held, again = table[~near], table[near]
    starts = np.vstack([np.rint(again[["y", "x"]].to_numpy()), np.rint(sites)]).astype(int)
    hold = np.concatenate([again.index.isin(bounded), np.ones(len(sites), dtype=bool)])
    narrowest = np.where(hold, max(0.3, width / SITE_WIDTH), 0.3)
    widest = np.where(hold, min(2.0 * half + 1, max(0.3, width * SITE_WIDTH)), 2.0 * half + 1)
    # only the held columns that reach the windows are drawn (all of them cost 0.1 s), on
    # the part of the image the windows reach (the whole of a 1024 px image cost 0.04 s per
    # refit, most of one that fits a few new sites)
    touching = _near(held, starts, reach + 4.0 * float(held["width"].to_numpy().max(initial=0.0)))
    top, bottom = _reach_box(starts, half, flat.shape)
    part = flat[top[0] : bottom[0], top[1] : bottom[1]]
    drawn = touching.assign(y=touching["y"] - top[0], x=touching["x"] - top[1])
    fit = fitted(part - column_image(part.shape, drawn), starts - top, spacing, rounds,
                 narrowest, widest, joint=joint, floor=floor)  # fmt: skip
    fit = fit.assign(y=fit["y"] + top[0], x=fit["x"] + top[1])
    significant = fit["amplitude"] >= SITE_REFIT_SIGNIFICANCE * fit["sigma_amplitude"]
    drift = np.hypot(*(fit[["y", "x"]].to_numpy() - starts[fit.index]).T)
    significant &= drift <= SITE_DRIFT * spacing
    fit = fit[significant | (fit.index < len(again))]
    new = fit.index >= len(again)
    refitted = fit[~new].set_axis(again.index[fit.index[~new]])
    start = max(first, int(table.index.max()) + 1)
    added = fit[new].set_axis(start + np.arange(int(new.sum())))
    kept = again[~again.index.isin(refitted.index) & ~again.index.isin(bounded)]
    parts = [part[table.columns] for part in (held, kept, refitted, added) if len(part)]
    return drop_duplicates(pd.concat(parts).sort_index(), spacing / 3.0)


def _reach_box(
    starts: np.ndarray, half: int, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Top-left and bottom-right (exclusive) pixel of the part of an image of ``shape`` that
    the refinement's windows (``half`` px from their integer ``starts``) and its joint fits
    (at most 3 ``half``: :func:`~atomlens.locate.refine.refine_columns`) can reach."""
    if not len(starts):
        return np.zeros(2, dtype=int), np.array(shape[:2])
    margin = 3 * half + 2
    top = np.maximum(starts.min(axis=0) - margin, 0)
    bottom = np.minimum(starts.max(axis=0) + margin + 1, np.array(shape[:2]))
    return top, bottom


def mended(
    flat: np.ndarray,
    table: pd.DataFrame,
    spacing: float,
    rounds: int,
    *,
    joint: bool = True,
    floor: float = 0.3,
) -> pd.DataFrame:
    """``table`` with the fits whose width is off by more than :data:`WIDTH_OUTLIER` from the
    typical one (shrunk onto a noise spike, or spread over a neighbour) fitted again with
    the width held near the typical one (:func:`refit_near`)."""
    if len(table) < 6:
        return table
    width = typical_width(table)
    odd = (table["width"] > WIDTH_OUTLIER * width) | (table["width"] < width / WIDTH_OUTLIER)
    if not odd.any():
        return table
    return refit_near(flat, table, spacing, rounds, table.index[odd], np.zeros((0, 2)), width, 0,
                      joint=joint, floor=floor)  # fmt: skip


def pruned(
    flat: np.ndarray,
    table: pd.DataFrame,
    spacing: float,
    rounds: int,
    *,
    joint: bool = True,
    floor: float = 0.3,
) -> pd.DataFrame:
    """``table`` without the columns off the lattice beside a column on it
    (:func:`~atomlens.locate.sites.off_site_rivals`) whose amplitude is less than
    :data:`RIVAL_SIGNIFICANCE` standard errors; their neighbours are
    fitted again without them (:func:`refit_near`)."""
    if len(table) < 6:
        return table
    rivals = off_site_rivals(table[["y", "x"]].to_numpy(), spacing)
    weak = table["amplitude"] < RIVAL_SIGNIFICANCE * table["sigma_amplitude"]
    drop = rivals & weak.to_numpy()
    if not drop.any():
        return table
    around = table.loc[drop, ["y", "x"]].to_numpy()
    kept = table[~drop]
    return refit_near(flat, kept, spacing, rounds, kept.index[:0], np.zeros((0, 2)),
                       typical_width(kept), 0, around, joint=joint, floor=floor)  # fmt: skip


#: :func:`polished`: the window reaches this many of the typical column's widths from its
#: centre, ...
POLISH_REACH = 4.0
#: ... but its side is at most this many spacings (and at least the detection's one).
POLISH_WINDOW = 1.8
#: Rounds of the block iteration of :func:`polished`, from the fits it is given.
POLISH_ROUNDS = 3
#: Farthest [spacings] :func:`polished` may move a column; a fit that goes farther keeps the
#: one before.
POLISH_DRIFT = 0.15


def polished(
    flat: np.ndarray,
    table: pd.DataFrame,
    spacing: float,
    *,
    joint: bool = True,
    floor: float = 0.3,
) -> pd.DataFrame:
    """``table`` with every column fitted again, neighbours together, in windows that reach
    :data:`POLISH_REACH` typical widths from each column (:data:`POLISH_WINDOW` spacings at
    most), :data:`POLISH_ROUNDS` rounds of the block iteration started from ``table``'s fits.

    The detection's windows are a spacing wide: enough to judge a column, but they cut off
    the tails of a column wider than a sixth of a spacing, and its background and width are
    then hard to tell from its amplitude (on the HAADF tuning scenes of
    ``benchmarks/evaluate_locate.py``, MoS2 and GaN columns 0.2-0.25 spacings wide: 4-13 %
    lower position RMSE at 50-1000 e-/column). The columns are not changed here, only their
    fits: one that fails, or moves by more than :data:`POLISH_DRIFT` spacings, keeps the fit
    it had. It costs about as much as the detection's fits and more: ``locate`` took 1.6-2.7
    x as long with it on 1024 x 1024 HAADF scenes (``benchmarks/locate_speed.py``).
    """
    if not len(table):
        return table
    side = float(np.clip(2.0 * POLISH_REACH * typical_width(table) / spacing, 1.0, POLISH_WINDOW))
    starts = np.rint(table[["y", "x"]].to_numpy()).astype(int)
    initial = table[["amplitude", "y", "x", "width", "background"]].to_numpy(float)
    fit = fitted(flat, starts, spacing, POLISH_ROUNDS, joint=joint, floor=floor, side=side,
                 initial=initial)  # fmt: skip
    before = table.iloc[fit.index]
    moved = np.hypot(*(fit[["y", "x"]].to_numpy() - before[["y", "x"]].to_numpy()).T)
    fit = fit[moved <= POLISH_DRIFT * spacing]
    result = table.copy()
    names = [name for name in fit.columns if name in result.columns]
    result.iloc[fit.index, [result.columns.get_loc(name) for name in names]] = fit[names].to_numpy()
    return result


def _inside_image(sites: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return sites[((sites >= -0.5) & (sites < np.array(shape) - 0.5)).all(axis=1)]


def with_sites(
    flat: np.ndarray,
    table: pd.DataFrame,
    spacing: float,
    rounds: int,
    first: int,
    cell: Cell | None = None,
    *,
    joint: bool = True,
    floor: float = 0.3,
) -> pd.DataFrame:
    """``table`` with the columns found at empty lattice sites (:mod:`atomlens.locate.sites`).

    The sites the found columns vote for are tested at their fixed positions (the residual
    image's Gaussian amplitude over its standard error, taken at a false discovery rate:
    :func:`~atomlens.locate.sites.site_discoveries`); the columns that pass are fitted with
    their neighbours (:func:`refit_near`). Later passes let the new columns vote too (a
    weak sublattice is filled from both sides). ``cell``: the image's averaged unit cell,
    whose columns are sites even where the peak finder found none of their sublattice; those
    sites are taken only when most of them pass the fixed 3 standard errors (a sublattice the
    single image shows). A column the average over many cells reveals but each cell hides (O
    beside Sr in a real ADF image of SrTiO3) would pass at a few sites by chance and scatter
    columns over the dark between the rows.
    """
    basis = None  # the first pass's lattice starts the later passes' fits
    for _ in range(SITE_PASSES):
        if len(table) < 6:
            break
        points = table[["y", "x"]].to_numpy()
        found = voted_sites(points, spacing, cell, basis)  # one lattice fit
        if basis is None:
            basis = fitted_basis(points)  # cached: the fit voted_sites just made
        voted, extra = (_inside_image(sites, flat.shape) for sites in found)
        if len(voted) and len(extra):
            gap, _ = spatial.cKDTree(voted).query(extra)
            extra = extra[gap > 1e-6]
        if not len(voted) and not len(extra):
            break
        width = typical_width(table)
        sites = np.vstack([voted, extra])
        touching = _near(table, sites, 3.0 * width + 4.0 * float(table["width"].max()))
        z = site_significance(flat - column_image(flat.shape, touching), sites, width)
        if len(extra) and np.median(z[len(voted) :]) < SITE_SIGNIFICANCE:
            sites, z = sites[: len(voted)], z[: len(voted)]
        voted = sites[site_discoveries(z)]
        if not len(voted):
            break
        before = len(table)
        table = refit_near(flat, table, spacing, rounds, table.index[:0], voted, width, first,
                           joint=joint, floor=floor)  # fmt: skip
        if len(table) <= before:
            break
    return table
