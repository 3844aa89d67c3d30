"""The end-to-end run: an image or a series through locate, analyze and track, and its folder."""

import json

import numpy as np
import pandas as pd
import pytest

from atomlens.core.validation import InputError
from atomlens.io import write_tiff
from atomlens.pipeline import output_names, run, write_run

PERIOD = 8.0  # [px] between columns
PIXEL = 0.25  # [Å/px]


def lattice_frames(frames=1, size=64, step=(0.0, 0.0), seed=0):
    """Poisson images of a square lattice of Gaussian columns, drifting ``step`` px per frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size].astype(float)
    centres = np.stack(
        np.meshgrid(np.arange(PERIOD / 2, size, PERIOD), np.arange(PERIOD / 2, size, PERIOD)),
        -1,
    ).reshape(-1, 2)
    out = []
    for t in range(frames):
        points = centres + np.asarray(step) * t
        clean = np.full((size, size), 20.0)
        for cy, cx in points:
            clean += 400 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 1.2**2))
        out.append(rng.poisson(clean))
    stack = np.stack(out).astype(np.float32)
    return stack[0] if frames == 1 else stack


@pytest.fixture(scope="module")
def image_run():
    return run(lattice_frames(), "haadf", pixel_size=PIXEL, restore=False, progress=False)


@pytest.fixture(scope="module")
def series_run():
    stack = lattice_frames(frames=6, step=(0.6, -0.4), seed=1)
    return run(stack, "haadf", pixel_size=PIXEL, frame_time=0.5, progress=False)


def test_an_image_is_located_and_its_lattice_found(image_run):
    assert image_run.kind == "image" and image_run.tracks is None
    assert len(image_run.columns) == 64  # 8 x 8 columns
    assert image_run.columns.attrs["spacing_px"] == pytest.approx(PERIOD, rel=0.05)
    summary = image_run.analysis.summary()
    assert summary["a_A"] == pytest.approx(PERIOD * PIXEL, rel=0.01)
    assert summary["vacancies"] == 0 and summary["angle_deg"] == pytest.approx(90, abs=0.5)
    assert image_run.strain is not None and image_run.pixel_size_source == "given"


def test_a_series_is_tracked_with_its_drift(series_run):
    assert series_run.kind == "series" and series_run.restored is None  # series: no restore
    tracks = series_run.tracks
    drift = np.asarray(tracks.attrs["drift"])
    np.testing.assert_allclose(drift[-1] - drift[0], [3.0, -2.0], atol=0.15)
    # interior columns keep one identity through all six frames
    interior = tracks[tracks["frame"] == 0]
    interior = interior[interior["y"].between(10, 50) & interior["x"].between(10, 50)]
    lengths = tracks.groupby("particle")["frame"].nunique()
    assert (lengths[interior["particle"]] == 6).all()
    assert series_run.features is not None and series_run.msd is not None
    assert series_run.summary()["trajectories"] == tracks["particle"].nunique()


def test_the_folder_holds_every_table_and_a_self_contained_report(series_run, tmp_path):
    written = write_run(series_run, tmp_path / "out", command="atomlens run x.tif -o out")
    names = {path.name for path in written}
    assert names == set(output_names("series", restored=False))
    tracks = pd.read_csv(tmp_path / "out" / "tracks.csv")
    assert len(tracks) == len(series_run.tracks)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["kind"] == "series" and summary["trajectories"] == tracks["particle"].nunique()
    page = (tmp_path / "out" / "report.html").read_text()
    # every figure is embedded (nothing fetched): five PNGs and the GIF movie
    assert page.count('src="data:image/png;base64,') == 6
    assert page.count('src="data:image/gif;base64,') == 1
    assert "http://" not in page and "https://" not in page
    assert "atomlens run x.tif -o out" in page
    with pytest.raises(FileExistsError):  # an earlier run is never replaced silently
        write_run(series_run, tmp_path / "out")


def test_a_file_keeps_its_calibration_and_is_never_modified(tmp_path):
    path = write_tiff(tmp_path / "image.tif", lattice_frames(), pixel_size=PIXEL)
    before = path.read_bytes()
    result = run(path, restore=False, progress=False)
    assert result.pixel_size == pytest.approx(PIXEL) and result.pixel_size_source == "file"
    assert path.read_bytes() == before


def test_restoration_runs_for_an_image_and_can_be_located_on(tmp_path):
    image = lattice_frames(size=96)
    result = run(image, pixel_size=PIXEL, locate_on="restored", progress=False)
    assert result.restored is not None and result.restored.shape == image.shape
    assert len(result.columns) == 144  # 12 x 12 columns on the restored image
    names = {p.name for p in write_run(result, tmp_path / "out")}
    assert {"restored.tif", "restored.png"} <= names


def test_columns_can_be_found_on_the_enhanced_image_and_fitted_on_the_counts():
    image = lattice_frames(size=96)
    result = run(image, pixel_size=PIXEL, restore=False, locate_on="enhanced", progress=False)
    assert result.enhanced is not None and result.enhanced.shape == image.shape
    assert result.columns.attrs["guided"]
    assert len(result.columns) == 144
    assert any("enhanced image" in note for note in result.notes)
    # an ABF image: the shipped generators know HAADF only; a note, and located on the counts
    abf = run(image.max() - image, "abf", pixel_size=PIXEL, restore=False,
              locate_on="enhanced", progress=False)  # fmt: skip
    assert abf.enhanced is None and not abf.columns.attrs["guided"]
    assert any(note.startswith("Not enhanced") for note in abf.notes)


def test_precise_refits_the_same_columns_and_is_recorded(image_run):
    result = run(lattice_frames(), "haadf", pixel_size=PIXEL, restore=False, precise=True,
                 progress=False)  # fmt: skip
    assert result.columns.attrs["precise"] and not image_run.columns.attrs["precise"]
    assert result.summary()["settings"]["precise"] is True
    assert len(result.columns) == len(image_run.columns) == 64
    moved = np.hypot(*(result.columns[["y", "x"]].to_numpy()
                       - image_run.columns[["y", "x"]].to_numpy()).T)  # fmt: skip
    assert 0 < moved.max() < 0.15 * PERIOD


def test_an_image_without_columns_is_refused_with_the_reason():
    noise = np.random.default_rng(3).poisson(50.0, (64, 64)).astype(np.float32)
    with pytest.raises(InputError, match="no periodic column arrangement"):
        run(noise, restore=False, progress=False)


@pytest.mark.parametrize(
    ("source", "options", "error", "message"),
    [
        (np.zeros((2, 3, 16, 16)), {}, InputError, "shape"),
        (np.full((32, 32), np.nan), {}, InputError, "NaN"),
        (np.ones((32, 32)), {"modality": "sem"}, ValueError, "modality"),
        (np.ones((32, 32)), {"locate_on": "restored", "restore": False}, ValueError, "restore"),
        (np.ones((32, 32)), {"locate_method": "structure"}, ValueError, "structure"),
        (
            np.ones((32, 32)),
            {"locate_on": "enhanced", "scheduler": "threads"},
            ValueError,
            "one process",
        ),
        (np.ones((32, 32)), {"pixel_size": -1.0}, ValueError, "pixel_size"),
        ("missing.tif", {}, FileNotFoundError, "No such file"),
    ],
)
def test_bad_input_is_refused_with_its_name(source, options, error, message):
    with pytest.raises(error, match=message):
        run(source, progress=False, **options)


def test_overwrite_removes_an_earlier_runs_files_only(image_run, series_run, tmp_path):
    earlier = tmp_path / "earlier"
    write_run(series_run, earlier)
    write_run(image_run, earlier, overwrite=True)  # an image's run writes no tracks
    assert not (earlier / "tracks.csv").exists() and (earlier / "atoms.csv").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "tracks.csv").write_text("the user's own table\n")
    write_run(image_run, mine, overwrite=True)  # not an earlier run's folder: left alone
    assert (mine / "tracks.csv").read_text() == "the user's own table\n"


def test_large_tables_written_by_the_helper_process_equal_the_direct_ones(
    series_run, tmp_path, monkeypatch
):
    import atomlens.pipeline.outputs as outputs

    write_run(series_run, tmp_path / "direct")
    monkeypatch.setattr(outputs, "LARGE_TABLE", 10)  # the tracks and atoms go to the helper
    write_run(series_run, tmp_path / "helper")
    for name in ("atoms.csv", "tracks.csv", "msd.csv", "events.csv"):
        direct = (tmp_path / "direct" / name).read_bytes()
        assert (tmp_path / "helper" / name).read_bytes() == direct, name


def test_a_failing_helper_leaves_no_folder(series_run, tmp_path, monkeypatch):
    import atomlens.pipeline.outputs as outputs

    monkeypatch.setattr(outputs, "LARGE_TABLE", 10)
    broken = series_run.msd.copy()
    broken["note"] = None
    broken.loc[broken.index[0], "note"] = _Unpicklable()  # fails on its way to the helper
    monkeypatch.setattr(series_run, "msd", broken)
    with pytest.raises(Exception, match="pickle"):
        write_run(series_run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("cannot pickle this value")
