"""Matplotlib figures: an image with its atom columns overlaid and a scale bar.

Figures are built with matplotlib's object-oriented API (:class:`matplotlib.figure.Figure`), never
through pyplot: the library neither calls ``matplotlib.use()`` nor registers figures with pyplot,
so a user's interactive backend and open figures are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_overlay(
    ax,
    image: np.ndarray,
    atoms: pd.DataFrame | None,
    pixel_size: float | None,
    *,
    title: str = "",
    marker_size: float = 12.0,
) -> None:
    """Draw an image (rows down), its columns coloured by species, and a scale bar.

    Parameters
    ----------
    ax : matplotlib Axes
    image : ndarray of shape (H, W)
    atoms : DataFrame, optional
        ``y``, ``x`` [px] and optionally ``species``.
    pixel_size : float, optional
        [Å]; adds a scale bar of a round length.
    """
    low, high = np.percentile(image, [0.5, 99.5])
    ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    if atoms is not None and len(atoms):
        groups = atoms.groupby("species") if "species" in atoms else [("atoms", atoms)]
        for (name, group), colour in zip(groups, _colours(), strict=False):
            ax.scatter(
                group["x"],
                group["y"],
                s=marker_size,
                facecolors="none",
                edgecolors=colour,
                linewidths=0.8,
                label=str(name),
            )
        ax.legend(loc="upper right", fontsize=7, framealpha=0.7, markerscale=1.5)
    if pixel_size:
        _scale_bar(ax, image.shape, pixel_size)
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _colours():
    return ["#ff4040", "#40c0ff", "#ffd020", "#60ff60", "#ff60ff", "#ffffff", "#ff9020"] * 4


def _scale_bar(ax, shape: tuple[int, int], pixel_size: float) -> None:
    target = shape[1] * pixel_size / 5  # [Å]
    nice = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    length = max(v for v in nice if v <= max(target, 1))
    pixels = length / pixel_size
    y, x = shape[0] * 0.94, shape[1] * 0.05
    ax.plot([x, x + pixels], [y, y], color="white", linewidth=3)
    label = f"{length / 10:g} nm" if length >= 10 else f"{length:g} Å"
    ax.text(x + pixels / 2, y - shape[0] * 0.03, label, color="white", ha="center", fontsize=8)


def save_overlay(
    path: str | Path,
    image: np.ndarray,
    atoms: pd.DataFrame | None,
    pixel_size: float | None,
    *,
    title: str = "",
    overwrite: bool = True,
) -> Path:
    """Save :func:`plot_overlay` as a PNG (atomically)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    plot_overlay(ax, image, atoms, pixel_size, title=title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, overwrite=overwrite)


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 100, overwrite: bool = True) -> Path:
    """Write a figure as PNG atomically (rendered with Agg; the pyplot backend is not touched)."""
    from atomlens.io import atomic_write

    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), overwrite)


def save_panels(
    path: str | Path,
    images: list[np.ndarray],
    titles: list[str],
    pixel_size: float | None = None,
    *,
    panel_size: float = 3.2,
    overwrite: bool = True,
) -> Path:
    """Save images side by side as a PNG (e.g. input / restored / truth), each with a scale bar.

    Parameters
    ----------
    path : str or Path
    images : list of ndarray (H, W)
        Each shown between its own 0.5th and 99.5th percentiles.
    titles : list of str
        One per image.
    pixel_size : float, optional
        [Å]; a scale bar on every panel.
    panel_size : float
        Width of one panel [inch].
    """
    from matplotlib.figure import Figure

    if len(images) != len(titles) or not images:
        raise ValueError(f"Give one title per image, got {len(images)} images, {len(titles)}.")
    fig = Figure(figsize=(panel_size * len(images), panel_size + 0.3))
    axes = np.atleast_1d(fig.subplots(1, len(images)))
    for ax, image, title in zip(axes, images, titles, strict=True):
        plot_overlay(ax, np.asarray(image, dtype=np.float32), None, pixel_size, title=title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110, overwrite=overwrite)


def save_analysis_maps(
    path: str | Path,
    columns: pd.DataFrame,
    vacancies: pd.DataFrame,
    image: np.ndarray | None = None,
    pixel_size: float | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Save the maps of an analysis as one PNG: displacements, strain, rotation, defects.

    Six panels: the displacement of every column from the fitted lattice (arrows, magnified to
    be seen, over the image when given), ``exx``, ``eyy``, ``exy`` (each column coloured, a
    symmetric scale at the 98th percentile of its magnitude), ``rotation`` [degrees], and the
    defects (vacancies, columns off the lattice, unusual intensities) over the image.

    Parameters
    ----------
    columns : DataFrame
        ``y``, ``x`` [px], ``dy``, ``dx`` [px], ``exx``, ``eyy``, ``exy``, ``rotation`` and the
        flags ``off_lattice``, ``unusual_intensity`` (``atomlens.analyze``'s table).
    vacancies : DataFrame
        ``y``, ``x`` [px] of empty sites.
    image : ndarray (H, W), optional
        Drawn under the displacement and defect panels.
    pixel_size : float, optional
        [Å]; a scale bar.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 9.6))
    axes = fig.subplots(2, 3).ravel()
    extent = None
    if image is None:
        for ax in axes:
            ax.invert_yaxis()
            ax.set_aspect("equal")
    else:
        extent = np.asarray(image, dtype=np.float32)
    shown = columns.dropna(subset=["dx", "dy"])
    if extent is not None:
        plot_overlay(axes[0], extent, None, pixel_size, title="")
    length = float(np.nanpercentile(np.hypot(shown["dx"], shown["dy"]), 95)) if len(shown) else 1
    spacing = 1.0
    if len(columns) > 2:
        from scipy import spatial

        points = columns[["y", "x"]].to_numpy(float)
        spacing = float(np.median(spatial.cKDTree(points).query(points, k=2)[0][:, 1]))
    # the 95th-percentile displacement is drawn 0.4 spacings long
    scale = max(length, 1e-9) / max(0.4 * spacing, 1e-9)
    axes[0].quiver(shown["x"], shown["y"], shown["dx"], shown["dy"], color="tab:orange",
                   angles="xy", scale_units="xy", scale=scale, width=0.003)  # fmt: skip
    unit = "px" if pixel_size is None else f"px ({pixel_size * 100:.1f} pm/px)"
    axes[0].set_title(f"displacement (95th pct {length:.3f} {unit}), magnified")
    for ax, name in zip(axes[1:5], ["exx", "eyy", "exy", "rotation"], strict=True):
        values = columns[name].to_numpy(float)
        limit = float(np.nanpercentile(np.abs(values), 98)) if np.isfinite(values).any() else 1.0
        limit = limit if limit > 0 else 1.0
        dots = ax.scatter(columns["x"], columns["y"], c=values, cmap="RdBu_r", s=14,
                          vmin=-limit, vmax=limit)  # fmt: skip
        fig.colorbar(dots, ax=ax, fraction=0.046, label="degrees" if name == "rotation" else "1")
        ax.set_title(name if name != "rotation" else "rotation (from x towards y)")
        if extent is not None:
            ax.set_xlim(-0.5, extent.shape[1] - 0.5)
            ax.set_ylim(extent.shape[0] - 0.5, -0.5)
            ax.set_aspect("equal")
    defects = axes[5]
    if extent is not None:
        plot_overlay(defects, extent, None, pixel_size, title="")
    defects.scatter(columns["x"], columns["y"], s=4, c="tab:gray", label="columns")
    for mask, colour, label in (
        (columns["off_lattice"].to_numpy(bool), "tab:red", "off the lattice"),
        (columns["unusual_intensity"].to_numpy(bool), "tab:purple", "unusual intensity"),
    ):
        defects.scatter(columns["x"][mask], columns["y"][mask], s=40, facecolors="none",
                        edgecolors=colour, label=f"{label} ({int(mask.sum())})")  # fmt: skip
    defects.scatter(vacancies["x"], vacancies["y"], s=50, marker="x", c="tab:cyan",
                    label=f"vacancies ({len(vacancies)})")  # fmt: skip
    defects.legend(loc="upper right", fontsize=8)
    defects.set_title("defects")
    fig.tight_layout()
    return save_figure(fig, path, dpi=90, overwrite=overwrite)


def save_strain_images(
    path: str | Path,
    maps: dict[str, np.ndarray],
    mask: np.ndarray | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Save strain maps (``exx``, ``eyy``, ``exy`` [1], ``rotation`` [degrees]) as one PNG.

    Each map on a symmetric colour scale at the 98th percentile of its magnitude; pixels where
    ``mask`` is False (no lattice there) are grey.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 10))
    axes = fig.subplots(2, 2).ravel()
    for ax, name in zip(axes, ["exx", "eyy", "exy", "rotation"], strict=True):
        values = np.array(maps[name], dtype=float)
        if mask is not None:
            values[~mask] = np.nan
        limit = float(np.nanpercentile(np.abs(values), 98)) if np.isfinite(values).any() else 1.0
        shown = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit or 1.0)
        ax.set_facecolor("0.8")
        fig.colorbar(shown, ax=ax, fraction=0.046, label="degrees" if name == "rotation" else "1")
        ax.set_title(f"{name} (geometric phase analysis)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=80, overwrite=overwrite)
