"""Figures for people: images with their atoms overlaid, galleries.

Built on :class:`matplotlib.figure.Figure`, never pyplot and never ``matplotlib.use()``, so the
user's backend and open figures are left alone: make a ``Figure(figsize=...)``, draw with
``plot_overlay``, write PNGs atomically with ``save_figure`` / ``save_overlay``.
"""

from atomlens.report.figures import (
    plot_overlay,
    save_analysis_maps,
    save_figure,
    save_overlay,
    save_panels,
    save_strain_images,
)

__all__ = [
    "plot_overlay",
    "save_analysis_maps",
    "save_figure",
    "save_overlay",
    "save_panels",
    "save_strain_images",
]
