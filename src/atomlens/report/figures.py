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
