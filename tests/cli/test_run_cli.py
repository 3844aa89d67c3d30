"""``atomlens run``: one file in, a folder of tables and one HTML report out, seen in a browser."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from atomlens.cli import main
from atomlens.io import write_tiff

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)  # fmt: skip


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, drifting_stack):
    folder = tmp_path_factory.mktemp("run_cli")
    series = write_tiff(
        folder / "series.tif", drifting_stack(frames=5, step=(0.5, 0.3)), pixel_size=0.2
    )
    assert main(["run", str(series), "--frame-time", "0.5", "-o", str(folder / "out")]) == 0
    return folder


def test_the_run_writes_its_folder_and_says_where_the_report_is(run_folder, capsys):
    out = run_folder / "out"
    assert {"tracks.csv", "events.csv", "movie.gif", "report.html"} <= {
        p.name for p in out.iterdir()
    }
    with Image.open(out / "movie.gif") as movie:
        assert movie.n_frames == 5
    series = run_folder / "series.tif"
    assert main(["run", str(series), "-o", str(out)]) == 2  # exists: --overwrite needed
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["run", str(series), "-o", str(out), "--overwrite", "--workers", "2"]) == 2
    assert "--workers needs --scheduler" in capsys.readouterr().err
    assert main(["run", str(run_folder / "none.tif"), "-o", str(out)]) == 2
    assert "No such file" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt install chromium)")
def test_the_report_renders_in_a_headless_browser(run_folder, tmp_path):
    report = (run_folder / "out" / "report.html").resolve()
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*browser, "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    # the report's own script counts the pictures the browser decoded once the page loaded
    body = re.search(r'<body data-pictures-loaded="(\d+)" data-pictures="(\d+)"', dom)
    assert body is not None, "the page's load script did not run"
    loaded, total = map(int, body.groups())
    assert total >= 7 and loaded == total
    shot = tmp_path / "report.png"
    subprocess.run(
        [*browser, "--window-size=1200,3000", f"--screenshot={shot}", report.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    with Image.open(shot) as picture:
        pixels = np.asarray(picture.convert("L"), dtype=float)
    assert pixels.shape == (3000, 1200)
    assert pixels.std() > 20  # text and figures, not a blank page


def test_precise_is_passed_to_the_chain(tmp_path, drifting_stack, monkeypatch):
    import atomlens.pipeline

    seen = []
    original = atomlens.pipeline.run

    def spy(*args, **kwargs):
        seen.append(kwargs.get("precise"))
        return original(*args, **kwargs)

    monkeypatch.setattr(atomlens.pipeline, "run", spy)
    image = write_tiff(tmp_path / "image.tif", drifting_stack(frames=1)[0], pixel_size=0.2)
    assert main(["run", str(image), "--no-restore", "--precise", "-o", str(tmp_path / "a")]) == 0
    assert seen == [True]
