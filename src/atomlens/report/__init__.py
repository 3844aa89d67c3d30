"""Figures for people: images with their atoms overlaid, galleries."""

from atomlens.report.figures import plot_overlay, save_overlay

__all__ = ["plot_overlay", "save_overlay"]
