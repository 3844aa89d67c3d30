"""The whole chain on one input: read, restore, locate, analyze, track.

:func:`run` takes a file (any format ``atomlens.io`` reads) or an array, decides whether it is one
image or a series, and chains the task packages with their defaults:

- **restore** (one image: on, a series: off unless asked): the shipped network for the modality.
  The restored image is kept for the report; columns are located on the raw counts by default,
  because the refinement's Poisson / weighted fit and its uncertainties need the counts' own
  statistics (``locate_on="restored"`` locates on the restored image instead).
- **locate**: every column of every frame (``atomlens.locate``; the classical path by default,
  the one that holds on real images of every modality), frame-parallel on Dask when a scheduler
  is given.
- **analyze** (one image, or the first frame of a series): the lattice, displacements, local
  strain, defects and neighbours (``atomlens.analyze``), and GPA strain maps of the image.
- **track** (a series): trajectories with drift removed (``atomlens.track``), per-trajectory
  features, the pooled MSD and diffusion coefficient, and the recognised events.

A step that cannot run on this input (no lattice to fit in an amorphous image, no restoration
network for the modality) is skipped with a note saying why; the rest still runs. Nothing the user
gave is modified.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from atomlens.core.validation import InputError, check_parameter

__all__ = ["RunResult", "run"]

log = logging.getLogger(__name__)

MODALITIES = ("haadf", "abf", "hrtem")
LOCATE_ON = ("raw", "restored", "enhanced")


@dataclass
class RunResult:
    """Everything :func:`run` found.

    Attributes
    ----------
    source : str
        The file (or "array").
    kind : {"image", "series"}
    modality : str
    data : ndarray (rows, cols) or (frames, rows, cols)
        The input as float32 (a copy; the input is never modified).
    pixel_size : float or None
        [Å/px].
    pixel_size_source : str
        "file", "given" or "none".
    frame_time : float or None
        [s] between frames.
    restored : ndarray or None
        The restored image (or stack), in the input's units.
    enhanced : ndarray or None
        The enhanced image (or stack) the columns were found on (``locate_on="enhanced"``).
    columns : DataFrame
        ``atomlens.locate``'s table (``frame`` first for a series).
    analysis : atomlens.analyze.Analysis or None
        Of the image, or of the first frame of a series.
    strain : atomlens.analyze.gpa.StrainMaps or None
        GPA of the image (or of the first frame).
    tracks, features, msd, events : DataFrame or None
        A series' trajectories (``atomlens.track``), per-trajectory features, MSD per lag and
        trajectory, and recognised events.
    diffusion : dict or None
        The pooled diffusion coefficient (``atomlens.track.ensemble_diffusion``) of the
        trajectories that move.
    timings : dict
        Seconds spent in each step.
    notes : list of str
        What was skipped or assumed, and why.
    settings : dict
        The options of the run.
    """

    source: str
    kind: str
    modality: str
    data: np.ndarray
    pixel_size: float | None
    pixel_size_source: str
    frame_time: float | None = None
    restored: np.ndarray | None = None
    enhanced: np.ndarray | None = None
    columns: pd.DataFrame | None = None
    analysis: Any = None
    strain: Any = None
    tracks: pd.DataFrame | None = None
    features: pd.DataFrame | None = None
    msd: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    diffusion: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        """Frames in the input (1 for an image)."""
        return 1 if self.data.ndim == 2 else len(self.data)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly numbers of the run."""
        out: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "modality": self.modality,
            "shape": list(self.data.shape),
            "pixel_size_A": self.pixel_size,
            "pixel_size_source": self.pixel_size_source,
            "frame_time_s": self.frame_time,
            "restored": self.restored is not None,
            "columns": 0 if self.columns is None else len(self.columns),
            "spacing_px": None if self.columns is None else self.columns.attrs.get("spacing_px"),
            "spacing_source": None
            if self.columns is None
            else self.columns.attrs.get("spacing_source"),
            "settings": self.settings,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "notes": self.notes,
        }
        if self.analysis is not None:
            out["analysis"] = self.analysis.summary()
        if self.tracks is not None:
            out["trajectories"] = int(self.tracks["particle"].nunique())
            out["detections"] = len(self.tracks)
        if self.events is not None:
            out["events"] = self.events["kind"].value_counts().to_dict()
        if self.diffusion is not None:
            out["diffusion"] = {k: v for k, v in self.diffusion.items() if k != "msd"}
        return out


def run(
    source: str | Path | np.ndarray,
    modality: str = "haadf",
    *,
    pixel_size: float | None = None,
    frame_time: float | None = None,
    restore: bool | None = None,
    locate_method: str = "classical",
    locate_on: str = "raw",
    precise: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Read, restore, locate, analyze and (for a series) track one input.

    Parameters
    ----------
    source : str, Path or ndarray
        A file ``atomlens.io.read`` reads (an image or a stack), or an array (rows, cols) or
        (frames, rows, cols).
    modality : {"haadf", "abf", "hrtem"}
        What the image shows (ADF counts as HAADF, BF as ABF).
    pixel_size : float, optional
        [Å/px]; overrides the file's calibration. Without either, lengths stay in pixels and the
        column spacing is estimated from the image.
    frame_time : float, optional
        [s] between frames of a series; speeds and diffusion coefficients per second.
    restore : bool, optional
        Restore with the shipped network; default on for one image, off for a series.
    locate_method : {"classical", "unet", "structure"}
        ``atomlens.locate``'s method ("structure" needs a structure: use ``atomlens.locate``).
    locate_on : {"raw", "restored", "enhanced"}
        Locate on the raw counts (default) or on the restored image; "enhanced" finds the
        candidate columns on the image enhanced by the unpaired generator
        (``atomlens.enhance``, HAADF) and fits them on the raw counts (``locate``'s
        ``guide=``); not with ``scheduler``.
    precise : bool
        HAADF: every column found is fitted again in a wider window (``atomlens.locate``'s
        ``precise``): positions nearer the Cramer-Rao bound, for about twice locate's time.
    scheduler : str, optional
        Locate the frames of a series on Dask: "threads", "processes" or a
        ``dask.distributed`` address (``atomlens.locate``'s ``scheduler``).
    workers : int, optional
        Dask workers (with ``scheduler``).
    progress : bool
        Progress bars.

    Returns
    -------
    RunResult
    """
    modality = _choice("modality", modality, MODALITIES)
    locate_on = _choice("locate_on", locate_on, LOCATE_ON)
    if locate_method == "structure":
        raise ValueError(
            "locate_method='structure' needs the material's structure; call atomlens.locate "
            "with structure=... directly, or use 'classical' or 'unet' here."
        )
    if frame_time is not None:
        frame_time = check_parameter("frame_time", frame_time)
    result = _read(source, modality, pixel_size)
    result.frame_time = frame_time
    if restore is None:
        restore = result.kind == "image"
    if locate_on == "restored" and not restore:
        raise ValueError("locate_on='restored' needs restore=True.")
    if locate_on == "enhanced" and scheduler is not None:
        raise ValueError("locate_on='enhanced' runs in one process: leave scheduler= out.")
    result.settings = {
        "restore": restore,
        "locate_method": locate_method,
        "locate_on": locate_on,
        "precise": precise,
        "scheduler": scheduler,
        "workers": workers,
    }
    steps = ["restore"] * restore + ["enhance"] * (locate_on == "enhanced")
    steps += ["locate", "analyze"] + ["track"] * (result.kind == "series")
    bar = tqdm(steps, desc="atomlens run", unit="step", disable=not progress)
    for step in bar:
        bar.set_postfix_str(step)
        with _timed(result, step):
            STEPS[step](result, progress=progress)
    bar.close()
    return result


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name}=... must be one of {', '.join(choices)}; got {value!r}.")
    return value.lower()


@contextmanager
def _timed(result: RunResult, step: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    result.timings[step] = time.perf_counter() - start


def _read(source: str | Path | np.ndarray, modality: str, pixel_size: float | None) -> RunResult:
    """The input as a float32 copy, its kind and its pixel size."""
    from atomlens.core.validation import check_image

    file_pixel_size, name = None, "array"
    start = time.perf_counter()
    if isinstance(source, (str, Path)):
        from atomlens.io import read

        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"No such file: {path}")
        image = read(path)
        if image.kind == "diffraction":
            raise InputError(f"{path} holds a diffraction pattern or Ronchigram, not an image.")
        data, name = np.asarray(image.data), str(path)
        if image.pixel_size is not None:
            file_pixel_size = float(np.mean(image.pixel_size))
    else:
        data = np.asarray(source)
    if data.ndim not in (2, 3):
        raise InputError(
            f"{name}: an image (rows, cols) or a series (frames, rows, cols) is needed, "
            f"got shape {data.shape}."
        )
    if data.ndim == 3 and len(data) == 1:
        data = data[0]
    data = check_image("image" if data.ndim == 2 else "series", data, ndim=data.ndim).copy()
    if pixel_size is not None:
        pixel_size, origin = check_parameter("pixel_size", pixel_size), "given"
    elif file_pixel_size is not None:
        pixel_size, origin = check_parameter("pixel_size", file_pixel_size), "file"
    else:
        origin = "none"
    result = RunResult(
        source=name,
        kind="image" if data.ndim == 2 else "series",
        modality=modality,
        data=data,
        pixel_size=pixel_size,
        pixel_size_source=origin,
    )
    result.timings["read"] = time.perf_counter() - start
    if origin == "none":
        result.notes.append(
            "No pixel size (none in the file, none given): lengths are in pixels and the column "
            "spacing was estimated from the image."
        )
    return result


def _restore(result: RunResult, progress: bool) -> None:
    from atomlens.restore import restore
    from atomlens.zoo.registry import ModelNotFoundError

    try:
        result.restored = restore(
            result.data, modality=result.modality, pixel_size=result.pixel_size, progress=progress
        )
    except ModelNotFoundError as error:
        result.notes.append(f"Not restored: {error}")


def _enhance(result: RunResult, progress: bool) -> None:
    from atomlens.enhance import enhance

    try:
        result.enhanced = enhance(
            result.data, modality=result.modality, pixel_size=result.pixel_size, progress=progress
        )
    except ValueError as error:  # a modality the model does not know, no lattice
        result.notes.append(f"Not enhanced, columns located on the raw counts: {error}")
        return
    result.notes.append(
        "Candidate columns were found on the enhanced image (atomlens.enhance) and each was "
        "confirmed by and fitted on the raw counts."
    )


def _locate(result: RunResult, progress: bool) -> None:
    from atomlens.locate import locate

    settings = result.settings
    image = result.restored if settings["locate_on"] == "restored" else result.data
    parallel: dict = {}
    if result.enhanced is not None:
        parallel["guide"] = result.enhanced
    if settings["scheduler"] is not None:
        parallel = {"scheduler": settings["scheduler"], "workers": settings["workers"]}
    result.columns = locate(
        image,
        pixel_size=result.pixel_size,
        modality=result.modality,
        method=settings["locate_method"],
        progress=progress,
        precise=settings["precise"],
        **parallel,
    )
    if not len(result.columns):
        result.notes.append("No columns were found: nothing to analyze or track.")


def _analyze(result: RunResult, progress: bool) -> None:
    from atomlens.analyze import analyze, gpa
    from atomlens.analyze.gpa import reciprocal_basis

    columns = result.columns
    if columns is None or len(columns) < 8:
        result.notes.append("Too few columns for a lattice: not analyzed.")
        return
    if result.kind == "series":
        columns = columns[columns["frame"] == columns["frame"].min()]
    image = result.data if result.kind == "image" else result.data[0]
    try:
        result.analysis = analyze(columns, pixel_size=result.pixel_size)
    except (InputError, ValueError, np.linalg.LinAlgError) as error:
        result.notes.append(f"No lattice could be fitted (amorphous or too few columns?): {error}")
        return
    try:
        result.strain = gpa(image, reciprocal_basis(result.analysis.lattice.basis))
    except (InputError, ValueError) as error:
        result.notes.append(f"No GPA strain maps: {error}")
    if result.kind == "series":
        result.notes.append("The lattice analysis is of the first frame.")


def _track(result: RunResult, progress: bool) -> None:
    from atomlens.track import ensemble_diffusion, events, msd, track, trajectory_features

    columns = result.columns
    if columns is None or columns["frame"].nunique() < 2:
        result.notes.append("Columns in fewer than two frames: nothing to track.")
        return
    # the frames the columns were fitted on: a column a frame's detections missed but its
    # counts show gets a detection in the tracks, and is no event
    frames = result.restored if result.settings["locate_on"] == "restored" else result.data
    result.tracks = track(columns, pixel_size=result.pixel_size, frame_time=result.frame_time,
                          stack=frames)  # fmt: skip
    result.features = trajectory_features(result.tracks)
    result.msd = msd(result.tracks)
    result.events = events(result.tracks, frames=frames)
    movers = _movers(result.features, result.tracks.attrs, result.pixel_size)
    if len(movers):
        result.diffusion = ensemble_diffusion(result.tracks, particles=movers)
    else:
        result.notes.append("No trajectory moves more than its noise: no diffusion coefficient.")


def _movers(features: pd.DataFrame, attrs: dict, pixel_size: float | None) -> np.ndarray:
    """Trajectories that leave their site: first to last position beyond half a column spacing."""
    spacing = attrs.get("spacing_px")
    if not spacing:
        return features["particle"].to_numpy()
    limit = 0.5 * spacing * (pixel_size or 1.0)  # in the features' length unit
    return features.loc[features["displacement"] > limit, "particle"].to_numpy()


STEPS: dict[str, Callable[..., None]] = {
    "restore": _restore,
    "enhance": _enhance,
    "locate": _locate,
    "analyze": _analyze,
    "track": _track,
}
