"""locate's network plumbing: canonical scale, labels, structure tokens, candidates."""

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from atomlens.locate.network import (
    CANONICAL_SPACING,
    MAX_TOKENS,
    column_candidates,
    label_maps,
    network_input,
    structure_spacing,
    structure_tokens,
    to_canonical,
    visible_columns,
)
from atomlens.physics import field
from atomlens.physics.structures.lattice import columns


def _centroid(image: np.ndarray) -> tuple[float, float]:
    weights = np.clip(image - 0.5 * image.max(), 0, None)
    rows, cols = np.indices(image.shape)
    total = weights.sum()
    return float((rows * weights).sum() / total), float((cols * weights).sum() / total)


@pytest.mark.parametrize("spacing", [3.0, 8.0, 24.0])
def test_resampling_puts_columns_at_the_canonical_spacing_where_the_factors_say(spacing):
    y0, x0 = 37.3, 51.8
    rows, cols = np.indices((96, 120))
    width = max(spacing / 5, 1.5)  # a sampled Gaussian narrower than ~1 px has no exact centroid
    image = np.exp(-((rows - y0) ** 2 + (cols - x0) ** 2) / (2 * width**2))
    canonical, factors = to_canonical(image, spacing)
    assert factors[0] == pytest.approx(CANONICAL_SPACING / spacing, rel=0.02)
    cy, cx = _centroid(canonical)
    assert cy == pytest.approx((y0 + 0.5) * factors[0] - 0.5, abs=0.15)
    assert cx == pytest.approx((x0 + 0.5) * factors[1] - 0.5, abs=0.15)


def test_the_network_input_does_not_depend_on_scale_and_offset():
    image = np.random.default_rng(0).poisson(30, size=(64, 64)).astype(float)
    a, _ = network_input(image, 5.0)
    b, _ = network_input(7.5 * image - 300, 5.0)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert abs(float(np.median(a))) < 0.05


def test_haadf_labels_leave_out_the_columns_it_cannot_show_and_amorphous_ones():
    table = columns(field("SrTiO3", (60, 60), 0.2, cells=3, shift=(0.5, 0.5)), pixel_size=0.2)
    haadf = visible_columns(table, "haadf")
    assert set(haadf["species"]) == {"Sr", "Ti-O"}
    assert set(visible_columns(table, "abf")["species"]) == {"Sr", "Ti-O", "O"}
    assert haadf.loc[haadf["species"] == "Sr", "heavy"].all()
    amorphous = table.assign(ordered=np.where(table["species"] == "Sr", 0.2, 1.0))
    assert "Sr" not in set(visible_columns(amorphous, "haadf")["species"])


def test_label_maps_peak_at_the_mapped_columns():
    table = pd.DataFrame({"y": [10.0, 20.0], "x": [12.0, 30.0], "heavy": [True, False]})
    factors = (2.0, 2.0)
    maps = label_maps(table, (80, 80), factors)
    assert maps.shape == (2, 80, 80)
    # the first column maps to (20.5, 24.5): pixel (20, 24) is 0.5 px^2 away
    assert maps[0, 20, 24] == pytest.approx(np.exp(-0.5 / (2 * 1.2**2)), rel=1e-5)
    found, heavy = column_candidates(maps, factors, level=0.5)
    np.testing.assert_array_equal(sorted(map(tuple, found)), [(10, 12), (20, 30)])
    assert heavy.sum() == 1


def test_structure_tokens_describe_the_projected_unit_cell():
    tokens, mask = structure_tokens("SrTiO3", (0, 0, 1))
    assert tokens.shape == (MAX_TOKENS, 7) and (~mask).sum() == 2 + 4  # 2 lattice + 4 columns
    lattice = tokens[:2, :2]
    # a = 3.905 Å in units of the shortest column distance a / 2
    np.testing.assert_allclose(np.sort(np.hypot(*lattice.T)), [2.0, 2.0], rtol=1e-3)
    heaviest = tokens[2]
    assert heaviest[2] == 1.0 and heaviest[3] == 1.0
    assert np.all(tokens[mask] == 0)
    unknown, unknown_mask = structure_tokens(None)
    assert (~unknown_mask).sum() == 1 and not unknown.any()
    atoms = Atoms("Cu", scaled_positions=[(0, 0, 0)], cell=[2.5, 2.5, 2.5], pbc=True)
    own, own_mask = structure_tokens(atoms)
    assert (~own_mask).sum() == 3 and own[2, 2] == 1.0  # one column, the heaviest


def test_an_unknown_material_is_refused():
    with pytest.raises((ValueError, KeyError)):
        structure_tokens("unobtainium", (0, 0, 1))


@pytest.mark.parametrize(
    ("material", "zone", "modality", "expected"),
    [
        ("SrTiO3", (0, 0, 1), "haadf", 3.905 / np.sqrt(2)),  # Sr to Ti-O: O is not shown
        ("SrTiO3", (0, 0, 1), "abf", 3.905 / 2),  # O columns shown
        ("Au", (0, 0, 1), "haadf", 4.078 / 2),
        ("Si", (1, 1, 0), "haadf", 5.431 / 4),  # the dumbbell
    ],
)
def test_the_structure_gives_the_spacing_of_the_columns_the_modality_shows(
    material, zone, modality, expected
):
    assert structure_spacing(material, zone, modality) == pytest.approx(expected, rel=0.01)
