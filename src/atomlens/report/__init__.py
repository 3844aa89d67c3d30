"""Figures for people: images with their atoms overlaid, galleries."""

from atomlens.report.figures import plot_overlay, pyplot, save_figure, save_overlay

__all__ = ["plot_overlay", "pyplot", "save_figure", "save_overlay"]
