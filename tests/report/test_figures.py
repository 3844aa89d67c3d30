"""atomlens.report draws with matplotlib's Figure API and leaves pyplot's state alone."""

import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

from atomlens.report import plot_overlay, save_overlay


def test_save_overlay_writes_png(tmp_path):
    image = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    atoms = pd.DataFrame({"y": [10.0, 20.0], "x": [12.0, 30.0], "species": ["Sr", "Ti"]})
    path = save_overlay(tmp_path / "overlay.png", image, atoms, 0.2, title="test")
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size == (550, 550)  # 5 x 5 inches at 110 dpi


def test_backend_and_pyplot_untouched(tmp_path):
    """In a fresh interpreter with a chosen backend: no switch, no figures registered."""
    script = f"""
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
import atomlens.report as report

report.save_overlay({str(tmp_path / "a.png")!r}, np.ones((8, 8)), None, 0.1)
fig = Figure(figsize=(2, 2))
report.plot_overlay(fig.subplots(), np.eye(8), None, None)
report.save_figure(fig, {str(tmp_path / "b.png")!r})
print(matplotlib.get_backend(), plt.get_fignums())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "[]"]
    assert (tmp_path / "a.png").stat().st_size > 0
    assert (tmp_path / "b.png").stat().st_size > 0


def test_no_pyplot_import(tmp_path):
    script = "import sys, numpy as np, atomlens.report as r\n"
    script += "r.save_overlay(sys.argv[1], np.ones((8, 8)), None, 0.1)\n"
    script += "print('matplotlib.pyplot' in sys.modules)"
    path = tmp_path / "overlay.png"
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert path.stat().st_size > 0


def test_plot_overlay_on_figure():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    plot_overlay(ax, np.ones((10, 10)), None, 0.5, title="t")
    assert ax.get_title() == "t"


def test_trajectories_are_drawn_still_thin_and_moving_red():
    from atomlens.report.series import MOVING, STILL, trajectory_figure

    tracks = pd.DataFrame(
        {
            "frame": [0, 1, 2, 0, 1, 2, 0],
            "particle": [5, 5, 5, 2, 2, 2, 9],  # 9: one detection, not drawn
            "y": [10.0, 10.2, 10.1, 20.0, 23.0, 26.0, 30.0],
            "x": [10.0, 10.1, 10.0, 5.0, 5.0, 5.0, 30.0],
        }
    )
    fig = trajectory_figure(np.zeros((40, 40)), tracks.sample(frac=1, random_state=0))
    still, moving = fig.axes[0].collections[-2:]
    np.testing.assert_allclose(still.get_segments()[0], [[10.0, 10.0], [10.1, 10.2], [10.0, 10.1]])
    np.testing.assert_allclose(moving.get_segments()[0], [[5.0, 20.0], [5.0, 23.0], [5.0, 26.0]])
    assert len(still.get_segments()) == len(moving.get_segments()) == 1
    assert still.get_linewidth()[0] == STILL["linewidth"] < MOVING["linewidth"]
