"""Where the extra columns found on enhanced images lie: on real but unscored columns, or nowhere.

For the SrTiO3 and Si HAADF scenes of ``evaluate_locate.py`` (scene 0, 0.1 Å/px, shot noise at
``--dose`` electrons per column, the same noise stream as ``evaluate_enhance.py``), the columns
``atomlens.locate`` finds on the enhanced image that match no scored (visible) column are
compared with every projected atom column of the scene, visible or not: an extra column within
0.35 spacings of one is a real column the score leaves out (the O columns of SrTiO3), the others
sit where there is no atom column (invented).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/enhance_extra_columns.py
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy.spatial import cKDTree

from atomlens.enhance import enhance
from atomlens.locate import locate
from atomlens.physics import STEMImaging, field, simulate_image
from atomlens.physics.structures.defects import vacancies
from evaluate_locate import MATERIALS, MODALITIES, SEED, ZONES, make_scene, noisy


def all_columns(material: str, pixel_size: float, size: int) -> np.ndarray:
    """Every projected column of the scene (as ``make_scene`` builds it) [px]."""
    rng = np.random.default_rng([SEED, MODALITIES.index("haadf"), MATERIALS.index(material), 0])
    atoms = field(material, (size, size), pixel_size, zone_axis=ZONES[material], thickness=40.0,
                  rotation=float(rng.uniform(0, 90)))  # fmt: skip
    atoms, _ = vacancies(atoms, fraction=0.03, whole_columns=True, rng=rng)
    return (
        simulate_image(atoms, pixel_size, STEMImaging(mode="HAADF"), rng=rng)
        .atoms[["y", "x"]]
        .to_numpy()
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dose", type=float, default=50.0)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    dose_index = 0  # evaluate_enhance's first dose (50) draws noise stream 0
    for material in ("SrTiO3", "Si"):
        scene = make_scene("haadf", material, 0, args.size, 0.1)
        image, _ = noisy(scene, args.dose, dose_index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = locate(enhance(image, check_lattice=False), pixel_size=0.1)
        points = found[["y", "x"]].to_numpy()
        distance, _ = cKDTree(scene.truth).query(points)
        extra = points[distance > 0.35 * scene.spacing]
        extra = extra[np.all((extra > scene.margin) & (extra < args.size - 1 - scene.margin), 1)]
        near, _ = cKDTree(all_columns(material, 0.1, args.size)).query(extra)
        real = int(np.sum(near < 0.35 * scene.spacing))
        print(f"{material}: {len(extra)} extra columns, {real} on an unscored atom column, "
              f"{len(extra) - real} at no atom column")  # fmt: skip


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
