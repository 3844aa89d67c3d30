"""Amorphous specimens with a hard core: no two atoms closer than min_distance, as in real a-C."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from atomlens.physics import AmorphousSpecimen
from atomlens.physics.potentials.specimens import (
    HARD_CORE_BLOCK,
    _hard_core_block,
    hard_core_positions,
    hard_core_slice,
)

CARBON = 0.100  # [atoms / Å^3]


def test_hard_core_positions_keep_the_count_and_the_distance_across_the_periodic_edges():
    box = (30.0, 25.0, 20.0)
    atoms = hard_core_positions(1500, box, 1.2, np.random.default_rng(3))
    assert atoms.shape == (1500, 3)
    assert np.all((atoms >= 0) & (atoms < box))
    assert len(cKDTree(atoms, boxsize=box).query_pairs(1.2)) == 0
    # the uniform start had hundreds of such pairs
    start = np.random.default_rng(3).uniform(0, 1, (1500, 3)) * box
    assert len(cKDTree(start, boxsize=box).query_pairs(1.2)) > 300


def test_a_slice_has_the_density_and_no_close_pairs_inside_a_tile():
    extent, depth = (150.0, 110.0), 40.0  # larger than a block's 96 Å: tiled
    atoms = hard_core_slice(extent, depth, CARBON, 1.2, np.random.default_rng(0))
    assert np.all((atoms >= 0) & (atoms < extent))
    assert len(atoms) / (extent[0] * extent[1] * depth) == pytest.approx(CARBON, rel=0.02)
    # the slice's atoms in 3-D are its block's: none of them closer than 1.2 Å
    side, block_depth = HARD_CORE_BLOCK
    block = _hard_core_block(CARBON, 1.2, 0)
    assert len(cKDTree(block, boxsize=(side, side, block_depth)).query_pairs(1.2)) == 0


def test_a_hard_core_smooths_the_atom_count_over_columns():
    """An ideal gas's counts in columns are Poisson (variance = mean); a hard core packs the
    atoms more evenly (a structure factor S(q -> 0) < 1), the clumps and holes a real film lacks."""
    extent, depth, cell = (96.0, 96.0), 40.0, 4.0
    rng = np.random.default_rng(1)

    def dispersion(positions):
        counts, _, _ = np.histogram2d(*positions.T, bins=int(extent[0] / cell), range=[[0, 96]] * 2)
        return counts.var() / counts.mean()

    gas = rng.uniform(0, 1, (int(CARBON * 96 * 96 * depth), 2)) * extent
    assert dispersion(gas) == pytest.approx(1.0, abs=0.1)
    assert dispersion(hard_core_slice(extent, depth, CARBON, 1.2, rng)) < 0.8


def test_a_hard_core_specimen_is_reproducible_and_described():
    specimen = AmorphousSpecimen(thickness=60.0, slice_thickness=30.0, min_distance=1.2)
    assert specimen.describe()["min_distance_A"] == 1.2
    first, second = (
        torch.stack(list(specimen.iter_slices((64, 64), 0.8, 200e3, [np.random.default_rng(5)])))
        for _ in range(2)
    )
    assert first.shape == (2, 1, 64, 64)
    torch.testing.assert_close(first, second)
    gas = AmorphousSpecimen(thickness=60.0, slice_thickness=30.0)
    other = torch.stack(list(gas.iter_slices((64, 64), 0.8, 200e3, [np.random.default_rng(5)])))
    # the same mean phase (the same density), other atoms
    assert float(first.angle().mean()) == pytest.approx(float(other.angle().mean()), rel=0.05)
    assert not torch.allclose(first, other)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"min_distance": -1.0}, "min_distance"),
        ({"min_distance": 1.5}, "0.6 x the mean spacing"),
        ({"min_distance": 1.0, "slice_thickness": 100.0, "thickness": 100.0}, "at most 64"),
    ],
)
def test_bad_hard_cores_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        AmorphousSpecimen(**arguments)
