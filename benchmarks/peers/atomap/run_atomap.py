"""Locate atom columns with Atomap (Nord et al. 2017); runs INSIDE the Atomap environment.

This script imports Atomap and HyperSpy (both GPL-3), so it must only ever be run with the python
of the environment made by ``setup.sh``, never imported by atomlens. atomlens benchmarks call it
through ``benchmarks/peers/atomap_peer.py`` in a subprocess.

Usage::

    python run_atomap.py IN.npz OUT.npz [--refine com+gaussian] [--threads 1] [--invert linear]

``IN.npz`` holds ``images``: (n, h, w) float [counts], ``separation``: int, one for all images or
(n,) [px] (Atomap's minimum distance between two initial positions), and optionally ``dark``: bool
(ABF: atoms are dark, the image is inverted before Atomap sees it). ``OUT.npz`` gets

- ``positions``: (N, 2) float64, the refined (y, x) positions of all images one after the other
  [px], pixel centres at integer coordinates, y the row; ``counts``: (n,) int, how many rows of
  ``positions`` belong to each image;
- ``seconds``: (n,) float64 wall time per image [s], from the array to the refined positions
  (``get_atom_positions`` included), without imports and one uncounted warm-up on a small
  synthetic image; ``cpu_seconds``: (n,) CPU time of this process per image [s];
- ``steps``: (n,) str, the Atomap steps that ran on each image, e.g.
  ``"get_atom_positions,find_nearest_neighbors,center_of_mass,gaussian_2d"``;
- ``gaussian_fallbacks``: (n,) int, atoms whose 2-D Gaussian fit Atomap gave up on after its ten
  tries with shrinking masks, and placed at the centre of mass instead (Atomap marks them with
  ``amplitude_gaussian = 0``);
- ``warmup_seconds`` [s], ``refine``, ``invert``, ``threads`` and ``atomap_version``.

Workflow (Atomap's documented one, its default parameters)::

    peaks = atomap.api.get_atom_positions(signal, separation=separation)  # (x, y) columns
    sublattice = atomap.api.Sublattice(peaks, image)
    sublattice.find_nearest_neighbors()
    sublattice.refine_atom_positions_using_center_of_mass()  # mask: 0.25 x nearest distance
    sublattice.refine_atom_positions_using_2d_gaussian()  # mask: 0.40 x nearest distance

Atomap keeps positions as (x, y) = (column, row), pixel centres at integers; they are swapped to
(y, x) here. With fewer than 10 atoms ``find_nearest_neighbors()`` (9 neighbours) raises
IndexError, so it gets ``nearest_neighbors = atoms - 1``; with fewer than 2 atoms nothing is
refined.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

REFINES = ("none", "com", "com+gaussian")
INVERTS = ("linear", "reciprocal")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="npz with 'images' (n, h, w), 'separation' and 'dark'")
    parser.add_argument("output", help="npz to write 'positions', 'counts' and 'seconds' to")
    parser.add_argument(
        "--refine",
        default="com+gaussian",
        choices=REFINES,
        help="refinement after get_atom_positions (default: centre of mass, then 2-D Gaussians)",
    )
    parser.add_argument(
        "--invert",
        default="linear",
        choices=INVERTS,
        help="how dark images are inverted: 'linear' max - image (default), or 'reciprocal' "
        "1 / image as atomap.main.run_image_filtering(invert_signal=True) does",
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for BLAS and numba")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    return args


def quiet_environment(threads: int) -> None:
    """Limit threads, pick a non-GUI matplotlib backend; must run before any import below."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def main(argv: list[str]) -> int:
    """Locate the atom columns of every image of the input file and write the output file."""
    args = parse_args(argv)
    quiet_environment(args.threads)

    import importlib.metadata
    import logging
    import warnings

    # HyperSpy 2.5 warns about its own deprecated imports when atomap imports it, and its model
    # fitting may warn per atom; none of it is useful in a benchmark log.
    warnings.simplefilter("ignore")
    import atomap.api as am
    import hyperspy.api as hs
    import numpy as np

    hs.set_log_level("ERROR")
    logging.getLogger("atomap").setLevel(logging.ERROR)

    with np.load(args.input) as data:
        images = np.asarray(data["images"], dtype=np.float64)
        separation = np.asarray(data["separation"], dtype=np.int64).reshape(-1)
        dark = bool(data["dark"]) if "dark" in data.files else False
    if images.ndim != 3:
        raise SystemExit(f"'images' must be (n, h, w), got shape {images.shape}")
    if separation.size == 1:
        separation = np.repeat(separation, len(images))
    if separation.size != len(images) or np.any(separation < 1):
        raise SystemExit(f"'separation' must be >= 1, one or {len(images)} values: {separation}")

    def prepare(image: np.ndarray) -> np.ndarray:
        if not dark:
            return image
        if args.invert == "reciprocal":
            return 1.0 / np.maximum(image, np.finfo(np.float64).tiny)
        return image.max() - image

    def locate(image: np.ndarray, min_distance: int) -> tuple[np.ndarray, str, int]:
        signal = hs.signals.Signal2D(image)
        peaks = np.asarray(am.get_atom_positions(signal, separation=int(min_distance)))
        steps = ["get_atom_positions"]
        if len(peaks) == 0:
            return np.empty((0, 2)), ",".join(steps), 0
        sublattice = am.Sublattice(peaks, image=image)
        if args.refine != "none" and len(peaks) >= 2:
            sublattice.find_nearest_neighbors(nearest_neighbors=min(9, len(peaks) - 1))
            steps.append("find_nearest_neighbors")
            sublattice.refine_atom_positions_using_center_of_mass(show_progressbar=False)
            steps.append("center_of_mass")
            if args.refine == "com+gaussian":
                sublattice.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
                steps.append("gaussian_2d")
        fallbacks = 0
        if "gaussian_2d" in steps:
            fallbacks = sum(atom.amplitude_gaussian == 0.0 for atom in sublattice.atom_list)
        yx = np.column_stack([sublattice.y_position, sublattice.x_position]).astype(np.float64)
        return yx, ",".join(steps), int(fallbacks)

    # One uncounted warm-up on a small synthetic lattice: the first 2-D Gaussian fit pays for
    # HyperSpy's lazy imports and model set-up (0.6 to 2.6 s measured), which no later image pays.
    rows, cols = np.mgrid[0:40, 0:40]
    warm = sum(
        np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / 4.5)
        for y in range(6, 40, 9)
        for x in range(6, 40, 9)
    )
    start = time.perf_counter()
    locate(np.asarray(warm, dtype=np.float64), 4)
    warmup = time.perf_counter() - start

    found, steps, fallbacks = [], [], []
    seconds = np.empty(len(images))
    cpu_seconds = np.empty(len(images))
    for index, image in enumerate(images):
        start, cpu_start = time.perf_counter(), time.process_time()
        yx, ran, failed = locate(prepare(image), separation[index])
        seconds[index] = time.perf_counter() - start
        cpu_seconds[index] = time.process_time() - cpu_start
        found.append(yx)
        steps.append(ran)
        fallbacks.append(failed)

    np.savez(
        args.output,
        positions=np.concatenate(found) if found else np.empty((0, 2)),
        counts=np.array([len(yx) for yx in found], dtype=np.int64),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        steps=np.array(steps, dtype=str),
        gaussian_fallbacks=np.array(fallbacks, dtype=np.int64),
        warmup_seconds=warmup,
        refine=args.refine,
        invert=args.invert,
        threads=args.threads,
        atomap_version=importlib.metadata.version("atomap"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
