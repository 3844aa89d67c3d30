"""Gallery of simulated clean / distorted image pairs for several materials, STEM and HRTEM.

Run: ``.venv/bin/python benchmarks/simulator_gallery.py``; writes
``docs/images/simulated_images.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from atomlens.physics import HRTEMImaging, STEMImaging, field, simulate_image
from atomlens.physics.detectors import realistic_stem, realistic_tem
from atomlens.physics.structures.defects import vacancies
from atomlens.physics.structures.random_structures import nanoparticle_on_support
from atomlens.report.figures import plot_overlay, save_figure

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "simulated_images.png"
SHAPE = (192, 192)


def _fields(rng: np.random.Generator) -> list[tuple[str, object, float]]:
    mos2, _ = vacancies(
        field("MoS2", SHAPE, 0.12, rotation=12.0), fraction=0.03, element="S", rng=rng
    )
    particle, _ = nanoparticle_on_support(SHAPE, 0.2, radius=12.0, rng=rng)
    return [
        ("SrTiO3 [001], 4 nm", field("SrTiO3", SHAPE, 0.15, thickness=40.0, rotation=8.0), 0.15),
        ("Si [110], 4 nm", field("Si", SHAPE, 0.1, zone_axis=(1, 1, 0), thickness=40.0), 0.1),
        ("MoS2 monolayer, S vacancies", mos2, 0.12),
        ("Au particle on 3 nm a-C", particle, 0.2),
    ]


def main() -> None:
    rng = np.random.default_rng(0)
    cases = _fields(rng)
    fig = Figure(figsize=(3.0 * len(cases), 12.4))
    axes = fig.subplots(4, len(cases))
    modes = [
        ("HAADF-STEM", STEMImaging(), realistic_stem),
        ("HRTEM 300 kV", HRTEMImaging(), realistic_tem),
    ]
    for column, (name, atoms, pixel) in enumerate(cases):
        for block, (label, imaging, preset) in enumerate(modes):
            chain = preset(
                np.random.default_rng(column + 10 * block), dose_per_pixel_range=(100, 100)
            )
            result = simulate_image(
                atoms, pixel, imaging, distortions=chain, rng=np.random.default_rng(column)
            )
            plot_overlay(
                axes[2 * block, column], result.clean, None, pixel, title=f"{label}: {name}\nclean"
            )
            plot_overlay(
                axes[2 * block + 1, column],
                result.image,
                None,
                pixel,
                title="100 e-/px, realistic distortions",
            )
    fig.tight_layout()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, OUTPUT, dpi=80)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
