"""Track atoms through an image series: drift removal, global linking, motion features.

- ``track``: per-frame detections (or a stack, located first) to trajectories with trackpy's
  column names (``frame``, ``particle``, ``y``, ``x`` [px], ``y_A``, ``x_A`` [Å],
  ``confidence``). The package itself is callable: ``atomlens.track(stack, pixel_size=0.1)``
  is ``track.track(...)``.
- ``trajectory_features``, ``msd``, ``ensemble_diffusion``: per-trajectory displacement,
  speed, mean squared displacement and diffusion coefficient with its uncertainty.
- ``estimate_drift``: the drift of every frame from the detections alone.

What the verb refuses is :mod:`atomlens.track.checks`; the linking stages are
:mod:`atomlens.track.link`.
"""

from atomlens._lazy import make_callable
from atomlens.track.drift import estimate_drift
from atomlens.track.features import ensemble_diffusion, msd, trajectory_features
from atomlens.track.track import COLUMNS, column_spacing, track

__all__ = [
    "COLUMNS",
    "column_spacing",
    "ensemble_diffusion",
    "estimate_drift",
    "msd",
    "track",
    "trajectory_features",
]


make_callable(__name__, track)
