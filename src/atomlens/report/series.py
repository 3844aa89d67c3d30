"""Figures of an image series: trajectories, mean squared displacement, event timeline, movie.

Each takes plain tables (the columns ``atomlens.track`` writes) and arrays, so this layer knows no
task package. Figures are matplotlib ``Figure`` objects; the movie is an animated GIF drawn with
Pillow directly, frame by frame in numpy (a matplotlib render per frame would cost ~0.1 s each).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from atomlens.report.figures import plot_overlay

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["event_timeline", "movie_gif", "msd_figure", "trajectory_figure"]

#: Colours of the event kinds in the timeline (the rest cycle through ``_FALLBACK``).
_EVENT_COLOURS = {
    "hop": "#d62728",
    "vacancy_migration": "#1f77b4",
    "vacancy_creation": "#9467bd",
    "adatom_arrive": "#2ca02c",
    "adatom_leave": "#ff7f0e",
    "cluster_form": "#8c564b",
    "cluster_merge": "#e377c2",
}
_FALLBACK = ("#7f7f7f", "#bcbd22", "#17becf")
#: Line styles of trajectories that stay near their first position, and of the others.
STILL = {"color": "#40c0ff", "linewidth": 0.6, "alpha": 0.7}
MOVING = {"color": "#ff4040", "linewidth": 1.2, "alpha": 0.95}


def trajectory_figure(
    image: np.ndarray,
    tracks: pd.DataFrame,
    pixel_size: float | None = None,
    *,
    min_length: int = 2,
    still_within: float = 1.0,
    title: str = "trajectories",
) -> Figure:
    """Every trajectory drawn over an image (e.g. the series' mean frame).

    Parameters
    ----------
    image : ndarray (rows, cols)
    tracks : DataFrame
        ``frame``, ``particle``, ``y``, ``x`` [px].
    pixel_size : float, optional
        [Å/px]; a scale bar.
    min_length : int
        Trajectories with fewer detections are not drawn.
    still_within : float
        Trajectories that never leave this distance [px] of their first position are drawn
        thin and blue, the others red.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    plot_overlay(ax, np.asarray(image, dtype=np.float32), None, pixel_size, title=title)
    lengths = tracks.groupby("particle")["frame"].transform("size")
    shown = tracks[lengths >= min_length].sort_values(["particle", "frame"], kind="stable")
    moved = _travel(shown)
    particle = shown["particle"].to_numpy()
    starts = np.flatnonzero(np.r_[True, particle[1:] != particle[:-1]]) if len(shown) else []
    paths = np.split(shown[["x", "y"]].to_numpy(dtype=float), starts[1:])
    still = np.array([moved.get(p, 0.0) < still_within for p in particle[starts]], dtype=bool)
    # two collections, not a line per trajectory: a 100-frame series has ~17,000
    # trajectories, and one plot call each took 18 s of the run's report
    for keep, style in ((still, STILL), (~still, MOVING)):
        chosen = [path for path, k in zip(paths, keep, strict=True) if k]
        ax.add_collection(LineCollection(chosen, **style), autolim=False)
    ax.plot([], [], color=STILL["color"], label=f"stays within {still_within:.3g} px")
    ax.plot([], [], color=MOVING["color"], label="moves further")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    fig.tight_layout()
    return fig


def _travel(tracks: pd.DataFrame) -> dict[int, float]:
    """The largest distance [px] of each trajectory from its first position."""
    first = tracks.groupby("particle")[["y", "x"]].transform("first")
    distance = np.hypot(tracks["y"] - first["y"], tracks["x"] - first["x"])
    return distance.groupby(tracks["particle"]).max().to_dict()


def msd_figure(
    msd: pd.DataFrame,
    ensemble: dict | None = None,
    *,
    max_curves: int = 200,
) -> Figure:
    """Mean squared displacement against lag: every trajectory (faint) and the ensemble fit.

    Parameters
    ----------
    msd : DataFrame
        ``particle``, ``lag_time``, ``msd`` (``atomlens.track.msd``; ``attrs["units"]``).
    ensemble : dict, optional
        ``atomlens.track.ensemble_diffusion``'s result: its pooled MSD and the line
        ``4 D t + offset`` are drawn, D in the legend.
    max_curves : int
        At most this many single trajectories are drawn (the longest).
    """
    units = msd.attrs.get("units", {"lag_time": "frames", "msd": "px^2"})
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0))
    ax = fig.subplots()
    longest = msd.groupby("particle")["count"].sum().nlargest(max_curves).index
    for _, curve in msd[msd["particle"].isin(longest)].groupby("particle"):
        ax.plot(curve["lag_time"], curve["msd"], color="0.6", linewidth=0.5, alpha=0.4)
    if ensemble is not None and len(ensemble.get("msd", ())):
        pooled = np.asarray(ensemble["msd"], dtype=float)
        times = np.sort(msd["lag_time"].unique())[: len(pooled)]
        ax.plot(times, pooled[: len(times)], "o", color="#d62728", label="pooled")
        line = 4 * ensemble["D"] * times + ensemble["msd_offset"]
        label = f"4Dt + c, D = {ensemble['D']:.3g} ± {ensemble['D_err']:.2g} {ensemble['unit']}"
        ax.plot(times, line, color="#d62728", linewidth=1.5, label=label)
        ax.legend(fontsize=8)
    ax.set_xlabel(f"lag [{units['lag_time']}]")
    ax.set_ylabel(f"MSD [{units['msd']}]")
    ax.set_title("mean squared displacement", fontsize=9)
    fig.tight_layout()
    return fig


def event_timeline(events: pd.DataFrame, frames: int) -> Figure:
    """Events as points on a timeline: one row per kind, frame on the x axis.

    Parameters
    ----------
    events : DataFrame
        ``frame``, ``kind``, ``confidence`` (``atomlens.track.events``).
    frames : int
        Frames in the series (the axis length).
    """
    kinds = list(dict.fromkeys(events["kind"])) if len(events) else []
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 1.0 + 0.35 * max(len(kinds), 1)))
    ax = fig.subplots()
    fallback = iter(_FALLBACK * 10)
    for row, kind in enumerate(kinds):
        chosen = events[events["kind"] == kind]
        colour = _EVENT_COLOURS.get(kind) or next(fallback)
        ax.scatter(
            chosen["frame"],
            np.full(len(chosen), row),
            s=10 + 40 * chosen["confidence"].to_numpy(),
            color=colour,
            alpha=0.8,
        )
    ax.set_yticks(range(len(kinds)), [k.replace("_", " ") for k in kinds], fontsize=8)
    ax.set_xlim(-0.5, frames - 0.5)
    ax.set_ylim(-0.7, max(len(kinds), 1) - 0.3)
    ax.set_xlabel("frame")
    title = "events (marker size: confidence)" if kinds else "no events recognised"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def movie_gif(
    frames: np.ndarray,
    tracks: pd.DataFrame | None = None,
    *,
    max_frames: int = 60,
    size: int = 320,
    frame_time: float = 0.15,
) -> bytes:
    """A short animated GIF of a series with each frame's detections marked.

    Parameters
    ----------
    frames : ndarray (frames, rows, cols)
    tracks : DataFrame, optional
        ``frame``, ``y``, ``x`` [px]; each detection gets a red dot.
    max_frames : int
        Longer series are shown at evenly spaced frames.
    size : int
        Longest side of the movie [px]; frames are resampled to it.
    frame_time : float
        Display time of one frame [s].

    Returns
    -------
    bytes
        The GIF file.
    """
    from PIL import Image

    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3 or not len(frames):
        raise ValueError(f"frames must be (frames, rows, cols), got shape {frames.shape}.")
    chosen = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int))
    low, high = np.percentile(frames[chosen], [0.5, 99.5])
    scale = size / max(frames.shape[1:])
    shape = (max(1, round(frames.shape[2] * scale)), max(1, round(frames.shape[1] * scale)))
    pictures = []
    # arrays, not a table per frame: selecting rows of the tracks copies their attrs (every
    # frame's drift) each time
    marked = tracks is not None and len(tracks)
    if marked:
        detected = tracks["frame"].to_numpy()
        points = tracks[["y", "x"]].to_numpy(dtype=float) * scale
    for index in chosen:
        grey = np.clip((frames[index] - low) / max(high - low, 1e-12), 0, 1)
        picture = Image.fromarray((grey * 255).astype(np.uint8)).resize(shape).convert("RGB")
        if marked:
            _mark(picture, points[detected == index])
        pictures.append(picture.quantize(colors=64))
    buffer = io.BytesIO()
    pictures[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=round(frame_time * 1000),
        loop=0,
    )
    return buffer.getvalue()


def _mark(picture, points: np.ndarray) -> None:
    """Red dots (radius 1.5 px of the movie) at ``points`` (n, 2): y, x [px of the movie]."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(picture)
    for y, x in points.tolist():
        draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=(255, 64, 64))
