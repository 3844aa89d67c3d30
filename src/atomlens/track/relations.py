"""Relations between tracked atoms: per-frame neighbour graphs and how they change.

Every frame's drift-corrected positions go through analyze's first-shell graph
(:func:`atomlens.analyze.neighbours.neighbour_graph`: bonds within 1.25 median
nearest-neighbour distances of that frame); a bond is named by the two particle ids, so it can be
followed from frame to frame. Between consecutive frames a bond **forms** or **breaks** only when
both of its atoms are detected in both frames (an atom that is missed breaks no bond) and the
new state lasts ``hold`` frames (2 by default: a bond near the shell's reach that flickers for
one frame with the jitter is no change; changes in the last ``hold`` - 1 frames are not
reported), and a particle's **coordination changes** under the same two rules. Positions are the
tracks' (drift included) [px], and [Å] where the tracks know the pixel size.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from atomlens.analyze.neighbours import SHELL, neighbour_graph
from atomlens.core.validation import InputError, ParameterError
from atomlens.track.features import drift_corrected

__all__ = ["bond_changes", "coordination_changes", "neighbour_graphs"]


def _scaled(table: pd.DataFrame, tracks: pd.DataFrame, columns: tuple[str, str]) -> pd.DataFrame:
    scale = tracks.attrs.get("pixel_size") or math.nan
    table["y_A"], table["x_A"] = table[columns[0]] * scale, table[columns[1]] * scale
    return table


def neighbour_graphs(tracks: pd.DataFrame, *, shell: float = SHELL) -> tuple[pd.DataFrame, ...]:
    """The first-shell neighbour graph of every frame of a tracks table.

    Parameters
    ----------
    tracks : DataFrame
        The table of :func:`atomlens.track.track`.
    shell : float
        The first shell's reach in median nearest-neighbour distances (analyze's ``shell``).

    Returns
    -------
    bonds : DataFrame
        One row per bond per frame: ``frame``, ``particle_a`` < ``particle_b``, ``distance``
        [px], ``angle`` [degrees, of b - a in (y, x)], ``y``, ``x`` (the bond's middle, drift
        included) [px], ``y_A``, ``x_A`` [Å].
    coordination : DataFrame
        One row per detection: ``frame``, ``particle``, ``y``, ``x`` [px], ``coordination``,
        ``edge`` (its first shell reaches outside the atoms of the frame), ``y_A``, ``x_A``.
    """
    table = drift_corrected(tracks)
    if table.duplicated(["frame", "particle"]).any():
        raise InputError("tracks has a particle twice in one frame: it is not a table of tracks.")
    raw = tracks[["frame", "particle", "y", "x"]].astype({"frame": np.int64})
    raw = raw.sort_values(["particle", "frame"], kind="stable").reset_index(drop=True)
    table["y_raw"], table["x_raw"] = raw["y"].to_numpy(float), raw["x"].to_numpy(float)
    table = table.sort_values(["frame", "particle"], kind="stable").reset_index(drop=True)
    bonds, coordination = [], []
    for frame, rows in table.groupby("frame", sort=True):
        graph = neighbour_graph(rows[["y", "x"]].to_numpy(), shell=shell)
        ids, points = rows["particle"].to_numpy(), rows[["y_raw", "x_raw"]].to_numpy()
        a, b = graph.bonds["a"].to_numpy(int), graph.bonds["b"].to_numpy(int)
        swap = ids[a] > ids[b]
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        middle = (points[a] + points[b]) / 2
        angle = graph.bonds["angle"].to_numpy()
        bonds.append(pd.DataFrame({
            "frame": frame, "particle_a": ids[a], "particle_b": ids[b],
            "distance": graph.bonds["distance"].to_numpy(),
            "angle": np.where(swap, (angle + 360.0) % 360.0 - 180.0, angle),
            "y": middle[:, 0], "x": middle[:, 1]}))  # fmt: skip
        coordination.append(pd.DataFrame({
            "frame": frame, "particle": ids, "y": points[:, 0], "x": points[:, 1],
            "coordination": graph.coordination, "edge": graph.edge}))  # fmt: skip
    bonds = pd.concat(bonds, ignore_index=True)
    bonds = bonds.sort_values(["frame", "particle_a", "particle_b"], ignore_index=True)
    coordination = pd.concat(coordination, ignore_index=True)
    return _scaled(bonds, tracks, ("y", "x")), _scaled(coordination, tracks, ("y", "x"))


def _pairs(frames: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(frames[:-1].tolist(), frames[1:].tolist(), strict=True))


def _check_hold(hold: object) -> int:
    if isinstance(hold, bool) or not isinstance(hold, int | np.integer) or hold < 1:
        raise ParameterError(f"hold=... must be a whole number of frames >= 1, got {hold!r}.")
    return int(hold)


def bond_changes(tracks: pd.DataFrame, *, shell: float = SHELL, hold: int = 2) -> pd.DataFrame:
    """Bonds forming and breaking between consecutive frames (module docstring).

    Parameters
    ----------
    tracks : DataFrame
        The table of :func:`atomlens.track.track`.
    shell : float
        The first shell's reach in median nearest-neighbour distances.
    hold : int
        Frames the new state must last (from the later frame on).

    Returns
    -------
    DataFrame
        ``frame`` (the later frame), ``kind`` ("bond_form" or "bond_break"), ``particle_a`` <
        ``particle_b``, ``distance_before``, ``distance_after`` [px] (the two atoms' distance,
        drift removed), ``y``, ``x`` (the middle of the two atoms in ``frame``) [px], ``y_A``,
        ``x_A`` [Å].
    """
    hold = _check_hold(hold)
    bonds, coordination = neighbour_graphs(tracks, shell=shell)
    position = coordination.set_index(["frame", "particle"])[["y", "x"]]
    corrected = drift_corrected(tracks).set_index(["frame", "particle"])[["y", "x"]]
    keys = {f: set(zip(g["particle_a"], g["particle_b"], strict=True))
            for f, g in bonds.groupby("frame")}  # fmt: skip
    present = {f: set(g["particle"]) for f, g in coordination.groupby("frame")}
    rows = []
    frames = np.sort(coordination["frame"].unique())
    for index, (before, after) in enumerate(_pairs(frames)):
        old, new = keys.get(before, set()), keys.get(after, set())
        later = frames[index + 1 : index + 1 + hold]
        if len(later) < hold:
            break
        for kind, changed in (("bond_form", new - old), ("bond_break", old - new)):
            for a, b in sorted(changed):
                if not all({a, b} <= present[f] for f in (before, *later)):
                    continue
                if any(((a, b) in keys.get(f, set())) != (kind == "bond_form") for f in later):
                    continue
                d0, d1 = (float(np.hypot(*(corrected.loc[(f, a)] - corrected.loc[(f, b)])))
                          for f in (before, after))  # fmt: skip
                middle = (position.loc[(after, a)] + position.loc[(after, b)]).to_numpy() / 2
                rows.append((after, kind, a, b, d0, d1, *middle))
    columns = ["frame", "kind", "particle_a", "particle_b", "distance_before",
               "distance_after", "y", "x"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns).astype(
        {"frame": np.int64, "particle_a": np.int64, "particle_b": np.int64}
    )
    return _scaled(table, tracks, ("y", "x"))


def coordination_changes(
    tracks: pd.DataFrame, *, shell: float = SHELL, hold: int = 2
) -> pd.DataFrame:
    """Particles whose first-shell coordination changes between consecutive frames.

    Returns
    -------
    DataFrame
        ``frame`` (the later frame), ``particle``, ``before``, ``after`` (coordinations),
        ``edge`` (at the edge of the atoms in either frame: its coordination is incomplete),
        ``y``, ``x`` [px] (in ``frame``), ``y_A``, ``x_A`` [Å].
    """
    hold = _check_hold(hold)
    _, coordination = neighbour_graphs(tracks, shell=shell)
    rows = []
    frames = np.sort(coordination["frame"].unique())
    by_frame = {f: g.set_index("particle") for f, g in coordination.groupby("frame")}
    for index, (before, after) in enumerate(_pairs(frames)):
        later = frames[index + 1 : index + 1 + hold]
        if len(later) < hold:
            break
        old, new = by_frame[before], by_frame[after]
        both = old.index.intersection(new.index)
        changed = both[old.loc[both, "coordination"].to_numpy()
                       != new.loc[both, "coordination"].to_numpy()]  # fmt: skip
        for particle in changed:
            value = new.at[particle, "coordination"]
            if any(
                particle not in by_frame[f].index
                or by_frame[f].at[particle, "coordination"] != value
                for f in later
            ):
                continue  # fmt: skip
            rows.append((after, particle, int(old.at[particle, "coordination"]),
                         int(new.at[particle, "coordination"]),
                         bool(old.at[particle, "edge"] or new.at[particle, "edge"]),
                         new.at[particle, "y"], new.at[particle, "x"]))  # fmt: skip
    table = pd.DataFrame(rows, columns=["frame", "particle", "before", "after", "edge", "y", "x"])
    table = table.astype({"frame": np.int64, "particle": np.int64})
    return _scaled(table, tracks, ("y", "x"))
