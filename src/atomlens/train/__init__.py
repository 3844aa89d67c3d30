"""One training loop for every atomlens model (CPU at small scale, GPU at full scale)."""

from atomlens.train.loop import History, fit

__all__ = ["History", "fit"]
