"""Restore every real image of ../shared/data/real and show input / network / BM3D side by side.

For each image: the restored image by the shipped network and by BM3D (parameters from the
image), before/after panels (a full view and a 128 px zoom) written to docs/images/restore/,
and the checks a microscopist would make where no truth exists:

- invented periodicity: spectral peaks of the output that the input lacks
  (``atomlens.restore.checks.invented_peaks``), expected 0;
- the residual (input - output) should be noise: its correlation with the output, and the ratio
  of its variance to the noise variance the Poisson-Gaussian fit predicts
  (``atomlens.restore.classical.estimate_noise``), expected near 1 where the output is right;
- edges: the mean absolute change of the output within 8 px of the image border against the
  interior (ringing at edges would raise it);
- seams: the output restored with 128 px tiles against 512 px tiles (same network), the largest
  difference relative to the image range;
- time per image.

    .venv/bin/python benchmarks/restore_real.py --data ../shared/data/real \\
        -o benchmarks/results/restore_real.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from atomlens.io import read
from atomlens.report import save_panels
from atomlens.restore import restore
from atomlens.restore.checks import invented_peaks
from atomlens.restore.classical import estimate_noise
from real_images import IMAGES  # benchmarks/real_images.py, beside this script

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images" / "restore"


def _checks(image: np.ndarray, restored: np.ndarray) -> dict[str, float]:
    residual = image - restored
    noise = estimate_noise(image)
    predicted = noise.variance(restored)
    border = np.zeros(image.shape, bool)
    border[:8], border[-8:], border[:, :8], border[:, -8:] = True, True, True, True
    change = np.abs(residual)
    return {
        "invented_peaks": len(invented_peaks(image, restored)),
        "residual_output_correlation": round(
            float(np.corrcoef(residual.ravel(), restored.ravel())[0, 1]), 3
        ),
        "residual_over_predicted_noise_variance": round(
            float(residual.var() / max(predicted.mean(), 1e-12)), 3
        ),
        "edge_over_interior_change": round(
            float(change[border].mean() / max(change[~border].mean(), 1e-12)), 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--methods", default="net,bm3d")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    methods = args.methods.split(",")
    FIGURES.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, (modality, pixel_default, what) in IMAGES.items():
        path = args.data / name
        if not path.is_file():
            print(f"skipped {name}: not in {args.data}")
            continue
        data = read(path)
        image = np.asarray(data.data, dtype=np.float32)
        if image.ndim == 3:  # an RGB(A) PNG
            image = image[..., :3].mean(axis=-1)
        pixel_size = float(data.pixel_size[0]) if data.pixel_size else pixel_default
        record: dict = {"what": what, "shape": list(image.shape), "pixel_size_A": pixel_size}
        outputs = {}
        for method in methods:
            start = time.perf_counter()
            out = restore(image, modality=modality, method=method, pixel_size=pixel_size,
                          check_lattice=False)  # fmt: skip
            seconds = time.perf_counter() - start
            outputs[method] = out
            record[method] = {"seconds": round(seconds, 2), **_checks(image, out)}
        if "net" in outputs:
            small = restore(image, modality=modality, tile=128, overlap=32, check_lattice=False)
            large = restore(image, modality=modality, tile=512, overlap=32, check_lattice=False)
            span = float(np.percentile(large, 99.5) - np.percentile(large, 0.5))
            record["net"]["tile_128_vs_512_max_difference_relative"] = round(
                float(np.abs(small - large).max()) / span, 4
            )
        stem = Path(name).stem
        titles = [f"input: {what}"] + [f"restored: {m}" for m in methods]
        save_panels(FIGURES / f"real_{stem}.png", [image, *outputs.values()], titles, pixel_size)
        rows, cols = image.shape
        y, x = max(0, rows // 2 - 64), max(0, cols // 2 - 64)
        zoom = [a[y : y + 128, x : x + 128] for a in (image, *outputs.values())]
        save_panels(FIGURES / f"real_{stem}_zoom.png", zoom, titles, pixel_size)
        results[name] = record
        print(json.dumps({name: record}))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
