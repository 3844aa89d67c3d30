"""The first-shell neighbour graph and coordination of located columns."""

import numpy as np
import pandas as pd
import pytest

from atomlens.analyze import analyze, neighbour_graph


def _square(n: int = 10, spacing: float = 8.0) -> np.ndarray:
    grid = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    return grid * spacing + 5.0


def _honeycomb(n: int = 10, a: float = 10.0) -> np.ndarray:
    """Graphene-like: two sites per hexagonal cell, three neighbours each at a / sqrt(3)."""
    a1, a2 = np.array([0.0, a]), np.array([a * np.sqrt(3) / 2, a / 2])
    cells = [i * a1 + j * a2 for i in range(n) for j in range(n)]
    shift = (a1 + a2) / 3
    return np.array([p for c in cells for p in (c, c + shift)]) + 5.0


def test_a_square_lattice_is_four_coordinated_and_a_vacancy_leaves_four_under():
    points = _square()
    graph = neighbour_graph(points)
    assert graph.expected == 4 and not graph.under.any() and not graph.over.any()
    assert graph.bonds["distance"].to_numpy() == pytest.approx(8.0)
    assert set(np.round(np.abs(graph.bonds["angle"]))) == {0.0, 90.0}
    holed = np.delete(points, 45, axis=0)  # (4, 5): an interior site
    graph = neighbour_graph(holed)
    assert graph.under.sum() == 4  # its four neighbours lost one each
    assert set(graph.coordination[graph.under]) == {3}


def test_a_honeycomb_is_three_coordinated_and_an_adatom_over_coordinates():
    points = _honeycomb()
    graph = neighbour_graph(points)
    assert graph.expected == 3 and graph.bonds["distance"].to_numpy() == pytest.approx(
        10 / np.sqrt(3)
    )
    centre = points.mean(axis=0)
    nearest = points[np.argmin(np.hypot(*(points - centre).T))]
    adatom = nearest + np.array([0.0, 10 / np.sqrt(3) * 0.9])  # inside the hexagon, near it
    graph = neighbour_graph(np.vstack([points, adatom]))
    assert graph.over.any()


def test_edge_columns_are_not_called_under_coordinated():
    graph = neighbour_graph(_square())
    corners = graph.coordination == 2
    assert corners.sum() == 4 and graph.edge[corners].all()


def test_bad_input_is_refused_and_tiny_input_is_empty():
    with pytest.raises(ValueError, match="finite"):
        neighbour_graph(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="shell"):
        neighbour_graph(_square(), shell=0.5)
    assert len(neighbour_graph(np.zeros((1, 2))).bonds) == 0


def test_analyze_reports_coordination_and_bonds_in_both_units():
    table = pd.DataFrame(np.delete(_square(), 45, axis=0), columns=["y", "x"])
    result = analyze(table, pixel_size=0.5)
    assert result.columns["under_coordinated"].sum() == 4
    assert result.summary()["coordination_expected"] == 4
    assert result.bonds["distance_A"].to_numpy() == pytest.approx(4.0)
    assert len(result.bonds) == result.summary()["bonds"]
