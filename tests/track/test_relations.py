"""Per-frame neighbour graphs of tracked atoms and their changes: planted bond changes, none
on a static jittering lattice, bad input refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomlens.core.validation import InputError, ParameterError
from atomlens.track import bond_changes, coordination_changes, neighbour_graphs, track

SPACING = 10.0


def jittering(frames=6, rows=6, cols=6, jitter=0.3, drift=(0.0, 0.0), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sites = np.stack(np.mgrid[:rows, :cols], -1).reshape(-1, 2) * SPACING
    data = [(t, *(s + np.multiply(drift, t) + rng.normal(0, jitter, 2)))
            for t in range(frames) for s in sites]  # fmt: skip
    return pd.DataFrame(data, columns=["frame", "y", "x"])


def test_graphs_name_bonds_by_particles_and_follow_the_drift():
    tracks = track(jittering(drift=(2.5, -1.5)), pixel_size=0.1)
    bonds, coordination = neighbour_graphs(tracks)
    assert (bonds["particle_a"] < bonds["particle_b"]).all()
    assert (bonds.groupby("frame").size() == 60).all()  # 2 * 6 * 5 bonds of a 6 x 6 square
    assert bonds["distance"].between(8.0, 12.0).all()
    interior = coordination[~coordination["edge"]]
    assert (interior["coordination"] == 4).all() and len(interior) > 0
    np.testing.assert_allclose(bonds["y_A"], 0.1 * bonds["y"])
    # the same particles are bonded in every frame (the drift is removed)
    keys = bonds.groupby("frame").apply(
        lambda g: frozenset(zip(g.particle_a, g.particle_b, strict=False))
    )
    assert keys.nunique() == 1


def test_a_static_jittering_lattice_changes_no_bond():
    tracks = track(jittering(frames=10, jitter=0.3, drift=(1.0, 2.0)))
    assert bond_changes(tracks).empty
    assert coordination_changes(tracks).empty
    # with 0.5 px of jitter on a 10 px lattice, bonds near the shell's reach flicker: hold=1
    # reports them, the default hold=2 fewer
    shaky = track(jittering(frames=10, jitter=0.5, drift=(1.0, 2.0)))
    assert len(bond_changes(shaky, hold=1)) > len(bond_changes(shaky))


def test_an_atom_moving_away_breaks_bonds_and_forms_new_ones():
    table = jittering(frames=6, jitter=0.0)
    table["particle"] = np.tile(np.arange(36), 6)
    moving = (table["particle"] == 35) & (table["frame"] >= 3)  # the corner atom leaves
    table.loc[moving, "y"] += 5.0  # from (50, 50) to (55, 50): still bonded to 29 (40, 50)?
    table.loc[moving, "x"] += 25.0  # (55, 75): no neighbour any more
    table.loc[(table["particle"] == 35) & (table["frame"] >= 3), ["y", "x"]] = (50.0, 65.0)
    lone = pd.DataFrame([(t, 36, 50.0, 75.0) for t in range(6)],
                        columns=["frame", "particle", "y", "x"])  # fmt: skip
    tracks = pd.concat([table, lone], ignore_index=True)
    changes = bond_changes(tracks)
    formed = changes[changes["kind"] == "bond_form"]
    broken = changes[changes["kind"] == "bond_break"]
    assert set(zip(formed.particle_a, formed.particle_b, strict=False)) == {(35, 36)}
    assert set(zip(broken.particle_a, broken.particle_b, strict=False)) == {(29, 35), (34, 35)}
    assert (changes["frame"] == 3).all()
    row = formed.iloc[0]
    assert (row["y"], row["x"]) == (50.0, 70.0) and row["distance_after"] == pytest.approx(10.0)
    coordination = coordination_changes(tracks).set_index("particle")
    assert coordination.loc[35, ["before", "after"]].tolist() == [2, 1]
    assert coordination.loc[36, ["before", "after"]].tolist() == [0, 1]


def test_a_missed_atom_breaks_no_bond():
    table = jittering(frames=5, jitter=0.0)
    table["particle"] = np.tile(np.arange(36), 5)
    table = table[~((table["particle"] == 14) & (table["frame"] == 2))]
    assert bond_changes(table).empty


@pytest.mark.parametrize(
    "bad, message",
    [
        (pd.DataFrame({"frame": [0, 1], "y": [0.0, 1.0], "x": [0.0, 1.0]}), "particle"),
        (
            pd.DataFrame(
                {"frame": [0, 0], "particle": [0, 1], "y": [0.0, np.nan], "x": [0.0, 1.0]}
            ),
            "finite",
        ),
        (
            pd.DataFrame({"frame": [0, 0], "particle": [0, 1], "y": [0.0, 1.0], "x": [0.0, 1.0]}),
            "one frame",
        ),
    ],
)
def test_bad_tracks_are_refused(bad, message):
    with pytest.raises(InputError, match=message):
        neighbour_graphs(bad)
    with pytest.raises(InputError):
        bond_changes(bad)
    with pytest.raises(InputError):
        neighbour_graphs(np.zeros((3, 3)))


def test_bad_options_are_refused():
    tracks = track(jittering(frames=3))
    for hold in (0, 1.5, True):
        with pytest.raises(ParameterError, match="hold"):
            bond_changes(tracks, hold=hold)
    with pytest.raises(ValueError, match="shell"):
        coordination_changes(tracks, shell=5.0)
