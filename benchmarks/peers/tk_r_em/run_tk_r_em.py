"""Restore images with tk_r_em (Lobato et al. 2023); runs INSIDE the tk_r_em environment.

This script imports TensorFlow and tk_r_em (GPL-3), so it must only ever be run with the python
of the environment made by ``setup.sh``, never imported by atomlens. atomlens benchmarks call it
through ``benchmarks/peers/tk_r_em_peer.py`` in a subprocess.

Usage::

    python run_tk_r_em.py IN.npz OUT.npz --model sfr_hrstem [--threads 2] [--patch-size 256]

``IN.npz`` holds ``images``: (n, h, w) float32 [counts] (any scale). ``OUT.npz`` gets

- ``restored``: (n, h, w) float32, in the input's units [counts];
- ``seconds``: (n,) float64 wall time per image [s], without TensorFlow start-up, model load and
  one warm-up call on the first image;
- ``cpu_seconds``: (n,) CPU time of this process per image, all threads [s] (with ``seconds``,
  shows how much other load on the machine slowed the run);
- ``warmup_seconds`` [s], ``model``, ``threads`` and ``method`` ("predict" or
  "predict_patch_based").

tk_r_em's networks normalise internally: their first layer (``lay_r_em_pp``) takes a shift and a
scale from the input image and their last layer (``lay_r_em_out``) applies them back, so raw
counts go in and the output comes back in the same units; no normalisation is done here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

MODELS = ("sfr_hrsem", "sfr_lrsem", "sfr_hrstem", "sfr_lrstem", "sfr_hrtem", "sfr_lrtem")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="npz with array 'images' (n, h, w) [counts]")
    parser.add_argument("output", help="npz to write 'restored' and 'seconds' to")
    parser.add_argument("--model", required=True, choices=MODELS, help="tk_r_em network name")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for TensorFlow")
    parser.add_argument(
        "--patch-size",
        type=int,
        default=0,
        help="use tk_r_em's predict_patch_based with this patch [px] and stride patch/2; "
        "0 (default): whole-image predict",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.patch_size < 0:
        parser.error(f"--patch-size must be >= 0, got {args.patch_size}")
    return args


def limit_threads(threads: int) -> None:
    """Limit TensorFlow, oneDNN and BLAS threads; must run before TensorFlow is imported."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def main(argv: list[str]) -> int:
    """Restore every image of the input file and write the output file."""
    args = parse_args(argv)
    limit_threads(args.threads)

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.disable_interactive_logging()  # predict_patch_based prints progress bars
    from tk_r_em import load_network

    with np.load(args.input) as data:
        images = np.asarray(data["images"], dtype=np.float32)
    if images.ndim != 3:
        raise SystemExit(f"'images' must be (n, h, w), got shape {images.shape}")

    net = load_network(args.model)

    def restore(image: np.ndarray) -> np.ndarray:
        if args.patch_size:
            size = args.patch_size
            out = net.predict_patch_based(image, patch_size=size, stride=size // 2, batch_size=16)
        else:
            out = net.predict(image[np.newaxis, :, :, np.newaxis], batch_size=1)
        out = np.asarray(out, dtype=np.float32).reshape(
            out.shape[-3:-1] if out.ndim == 4 else out.shape
        )
        # predict_patch_based does not crop the extra row/column it adds to odd sizes.
        return out[: image.shape[0], : image.shape[1]]

    # One warm-up call on the first image, not counted: the first call at a new shape traces the
    # Keras predict graph and builds oneDNN kernels (measured: 3.6 s against 2.6 s at 256 x 256 px).
    start = time.perf_counter()
    restore(images[0])
    warmup = time.perf_counter() - start

    restored = np.empty_like(images)
    seconds = np.empty(len(images))
    cpu_seconds = np.empty(len(images))
    for index, image in enumerate(images):
        start, cpu_start = time.perf_counter(), time.process_time()
        restored[index] = restore(image)
        seconds[index] = time.perf_counter() - start
        cpu_seconds[index] = time.process_time() - cpu_start

    np.savez(
        args.output,
        restored=restored,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        warmup_seconds=warmup,
        model=args.model,
        threads=args.threads,
        method="predict_patch_based" if args.patch_size else "predict",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
