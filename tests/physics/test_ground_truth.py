"""The ground truth agrees with the images it belongs to."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from atomlens.physics import (
    DynamicsModel,
    HRTEMImaging,
    STEMImaging,
    class_masks,
    distance_map,
    field,
    simulate_image,
    simulate_image_series,
    simulate_series,
)


def _matched_errors(peaks, table):
    distances, _ = cKDTree(table[["y", "x"]].to_numpy()).query(peaks)
    return distances


@pytest.mark.parametrize(
    ("material", "zone", "rotation", "pixel"),
    [
        ("SrTiO3", (0, 0, 1), 0.0, 0.2),
        ("SrTiO3", (0, 0, 1), 17.0, 0.17),
        ("Au", (0, 0, 1), 33.0, 0.1),
        ("GaAs", (1, 1, 0), 5.0, 0.08),
    ],
)
def test_haadf_peaks_sit_on_listed_columns(material, zone, rotation, pixel, find_peaks):
    atoms = field(material, (128, 128), pixel, zone_axis=zone, thickness=20.0, rotation=rotation)
    imaging = STEMImaging(semiangle=30.0, source_size=0.0)
    result = simulate_image(atoms, pixel, imaging, rng=np.random.default_rng(0))
    interior = result.atoms[result.atoms[["y", "x"]].apply(lambda c: c.between(6, 121)).all(axis=1)]
    peaks = find_peaks(result.clean, min_distance=2, threshold=0.25)
    peaks = peaks[((peaks >= 8) & (peaks <= 119)).all(axis=1)]
    errors = _matched_errors(peaks, interior)
    assert len(peaks) >= 10
    # the 3 x 3 parabolic peak fit itself is biased by up to ~0.08 px for these peak widths
    assert np.median(errors) < 0.1  # [px]
    assert np.percentile(errors, 95) < 0.2


def test_atom_table_units_and_pixel_centres():
    atoms = field("SrTiO3", (64, 64), 0.25, thickness=20.0)
    result = simulate_image(atoms, 0.25, STEMImaging(), rng=np.random.default_rng(0))
    table = result.atoms
    assert np.allclose(table["y"] * 0.25, table["y_A"]) and np.allclose(
        table["x"] * 0.25, table["x_A"]
    )
    assert set(table["species"]) == {"Sr", "Ti-O", "O"}
    # the Sr column at the origin is on pixel (0, 0)
    origin = table[(table["y"].abs() < 1e-6) & (table["x"].abs() < 1e-6)]
    assert origin["species"].tolist() == ["Sr"]


def test_simulated_images_reproduce_with_seed():
    atoms = field("Si", (64, 64), 0.15, zone_axis=(1, 1, 0), thickness=15.0)
    a = simulate_image(atoms, 0.15, HRTEMImaging(), dose_per_pixel=50, rng=np.random.default_rng(4))
    b = simulate_image(atoms, 0.15, HRTEMImaging(), dose_per_pixel=50, rng=np.random.default_rng(4))
    c = simulate_image(atoms, 0.15, HRTEMImaging(), dose_per_pixel=50, rng=np.random.default_rng(5))
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, c.image)
    assert np.array_equal(a.clean, c.clean)


def test_poisson_dose_gives_variance_equal_to_mean():
    atoms = field("Au", (128, 128), 0.2, thickness=8.0)
    result = simulate_image(
        atoms, 0.2, STEMImaging(), dose_per_pixel=100.0, rng=np.random.default_rng(0)
    )
    residual = result.image - 100.0 * result.clean
    assert residual.mean() == pytest.approx(0.0, abs=0.3)  # 4 standard errors
    assert (residual**2).mean() == pytest.approx(100.0 * result.clean.mean(), rel=0.03)


def test_label_maps_peak_on_positions():
    atoms = field("SrTiO3", (64, 64), 0.2, thickness=8.0, rotation=10.0)
    result = simulate_image(atoms, 0.2, STEMImaging(), rng=np.random.default_rng(0))
    masks, names = class_masks(result.atoms, (64, 64), kind="gaussian", sigma=1.0)
    assert names == ["O", "Sr", "Ti-O"]
    sr = result.atoms[result.atoms["species"] == "Sr"]
    rows, cols = np.round(sr["y"]).astype(int), np.round(sr["x"]).astype(int)
    inside = (rows < 64) & (cols < 64)
    offsets = np.hypot(sr["y"] - rows, sr["x"] - cols)[inside]
    expected = np.exp(-(offsets**2) / 2)  # the Gaussian at the nearest pixel centre
    assert masks[1][rows[inside], cols[inside]] == pytest.approx(expected, abs=1e-5)
    distance = distance_map(result.atoms, (64, 64))
    assert distance[rows[inside], cols[inside]] == pytest.approx(offsets, abs=1e-5)
    disks, _ = class_masks(result.atoms, (64, 64), kind="disk", radius=2.0)
    assert set(np.unique(disks)) == {0.0, 1.0}


def test_series_frames_agree_with_tracks(find_peaks):
    atoms = field("graphene", (96, 96), 0.12)
    model = DynamicsModel(thermal_sigma=0.03, drift=(0.1, -0.05), adatom_diffusion=0.5)
    series = simulate_series(atoms, 4, model, np.random.default_rng(0))
    imaging = STEMImaging(semiangle=30.0, source_size=0.0)
    result = simulate_image_series(
        series, 0.12, imaging, dose_per_pixel=None, rng=np.random.default_rng(1)
    )
    assert result.frames.shape == (4, 96, 96)
    for t in (0, 3):
        visible = result.tracks[(result.tracks["frame"] == t) & result.tracks["in_view"]]
        peaks = find_peaks(result.clean[t], min_distance=3, threshold=0.5)
        peaks = peaks[((peaks >= 6) & (peaks <= 89)).all(axis=1)]
        assert np.median(_matched_errors(peaks, visible)) < 0.1
    drift = result.tracks.groupby("frame")[["y_A", "x_A"]].mean().diff().iloc[1:].mean()
    assert drift.to_numpy() == pytest.approx([0.1, -0.05], abs=0.02)


def test_field_must_be_a_whole_number_of_pixels():
    atoms = field("Si", (32, 32), 0.2)
    with pytest.raises(ValueError, match="whole number"):
        simulate_image(atoms, 0.3, STEMImaging())
    with pytest.raises(ValueError, match=r"dose_per_pixel=\.\.\. .* \(0, 1e\+12\] e/px"):
        simulate_image(atoms, 0.2, STEMImaging(), dose_per_pixel=-1)
