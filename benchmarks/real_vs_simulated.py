"""Compare simulated HAADF images with real ones from ../shared/data/real (numbers only).

Run: ``.venv/bin/python benchmarks/real_vs_simulated.py [--data ../shared/data/real]``; writes
``benchmarks/results/real_vs_simulated.md``. The real images are not part of atomlens and are
neither copied nor plotted here; only measured numbers are reported.

For SrTiO3 [001] (Atomap's ADF test image) it measures, on the real image and on simulated images
at the same pixel size: the ratio of Ti-O to Sr column peak heights and the nearest column distance
(a check of the file's calibration).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from atomlens.io import read
from atomlens.physics import STEMImaging, field, simulate_image

RESULTS = Path(__file__).parent / "results"


def column_peaks(image: np.ndarray, min_distance_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima (y, x) [px] of a lightly smoothed image and their heights above background."""
    smooth = ndimage.gaussian_filter(np.asarray(image, float), 1.5)
    background = np.percentile(smooth, 5)
    size = 2 * min_distance_px + 1
    peaks = smooth == ndimage.maximum_filter(smooth, size=size)
    peaks &= smooth > background + 0.1 * (smooth.max() - background)
    border = min_distance_px
    peaks[:border] = peaks[-border:] = False
    peaks[:, :border] = peaks[:, -border:] = False
    rows, cols = np.nonzero(peaks)
    return np.column_stack([rows, cols]), smooth[rows, cols] - background


def measure(image: np.ndarray, pixel_size: float) -> dict:
    """Columns found, Ti-O / Sr peak-height ratio, nearest column distance [Å]."""
    positions, heights = column_peaks(image, max(2, int(1.2 / pixel_size)))
    # The two brightest sublattices: split the heights above the median into two classes.
    upper = np.sort(heights[heights >= np.median(heights)])
    threshold = upper.mean()
    for _ in range(20):
        low, high = upper[upper < threshold], upper[upper >= threshold]
        threshold = (low.mean() + high.mean()) / 2
    distances, _ = cKDTree(positions).query(positions, k=2)
    return {
        "columns": len(positions),
        "tio_sr": float(low.mean() / high.mean()),
        "nearest_A": float(np.median(distances[:, 1]) * pixel_size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    parser.add_argument("--data", type=Path, default=default)
    args = parser.parse_args()
    path = args.data / "SrTiO3_ADF_cropped.hdf5"
    if not path.exists():
        print(f"{path} not found; nothing to compare.")
        return
    real = read(path)
    pixel = real.pixel_size[0]
    measured_real = measure(np.asarray(real.data, float), pixel)
    rows = [("real ADF (Atomap test image)", measured_real)]
    atoms = field("SrTiO3", real.data.shape, pixel, thickness=80.0, rotation=0.0)
    for gamma, label in ((1.9, "HAADF default"), (0.8, "low-angle ADF")):
        simulated = simulate_image(
            atoms,
            pixel,
            STEMImaging(gamma=gamma),
            dose_per_pixel=2000,
            rng=np.random.default_rng(0),
        )
        rows.append(
            (
                f"atomlens, gamma = {gamma} ({label}), 8 nm, 2000 e-/px",
                measure(simulated.image, pixel),
            )
        )
    lines = [
        f"SrTiO3 [001], {real.data.shape[0]} x {real.data.shape[1]} px at {pixel * 100:.2f} pm/px. "
        "Peak heights above background; Ti-O / Sr compares the two brightest classes.",
        "",
        "| image | columns found | Ti-O / Sr | nearest column distance [Å] |",
        "|---|---|---|---|",
        *(
            f"| {name} | {m['columns']} | {m['tio_sr']:.2f} | {m['nearest_A']:.2f} |"
            for name, m in rows
        ),
        "",
        "Expected nearest column distance: a / 2 = 1.95 Å when the O columns are found, "
        "a / sqrt(2) = 2.76 Å (Sr to Ti-O) when they are not.",
        "",
        "Command: `.venv/bin/python benchmarks/real_vs_simulated.py`.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "real_vs_simulated.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
