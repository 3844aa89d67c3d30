"""Call the Atomap peer (Nord et al. 2017) from atomlens benchmarks, through a subprocess.

Atomap and HyperSpy are GPL-3, so they live in their own environment made by
``benchmarks/peers/atomap/setup.sh`` (default ``~/.cache/atomlens-peers/atomap``, or
``$ATOMAP_VENV``). This module imports neither: it writes the images to a temporary ``.npz``, runs
``run_atomap.py`` with that environment's python and reads the positions back.

Atomap's documented workflow runs there with its default parameters: ``get_atom_positions``
(scikit-image ``peak_local_max``, minimum distance ``separation``), ``Sublattice``,
``find_nearest_neighbors``, centre-of-mass refinement, then 2-D Gaussian refinement. Atomap keeps
(x, y); the positions come back as (y, x) [px] with pixel centres at integer coordinates, y the
row, as in atomlens. Checked through ``run_atomap.py`` on a noiseless 96 x 128 image of 70
Gaussians at known sub-pixel positions: largest error 0.001 px (see ``atomap/README.md``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from atomlens.core.validation import ParameterError, check_image

RUNNER = Path(__file__).resolve().parent / "atomap" / "run_atomap.py"
SETUP = RUNNER.with_name("setup.sh")

#: Refinements ``run_atomap.py`` offers after ``get_atom_positions``.
REFINES = ("none", "com", "com+gaussian")


class PeerUnavailable(RuntimeError):
    """The Atomap environment is missing or broken."""


def atomap_python() -> Path:
    """The python of the Atomap environment (``$ATOMAP_VENV`` or the default path)."""
    default = Path.home() / ".cache" / "atomlens-peers" / "atomap"
    return Path(os.environ.get("ATOMAP_VENV", default)) / "bin" / "python"


def locate_with_atomap(
    images: np.ndarray,
    separation: int | np.ndarray,
    *,
    dark: bool = False,
    refine: str = "com+gaussian",
    threads: int = 1,
    timeout: float = 3600.0,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Locate atom columns with Atomap.

    Parameters
    ----------
    images : ndarray of shape (n, h, w) or (h, w)
        Images [counts], atoms bright (HAADF) unless ``dark``.
    separation : int or array_like of int, shape (n,)
        Atomap's ``separation``: the smallest distance between two columns [px], one for all
        images or one per image. Atomap's own advice is a little under the nearest-neighbour
        distance. Columns closer than ``separation`` to the image border are never found
        (``peak_local_max`` excludes that border).
    dark : bool
        Atoms are dark (ABF): each image is inverted as ``max - image`` before Atomap sees it.
    refine : {"com+gaussian", "com", "none"}
        Refinement after the initial peaks: Atomap's centre of mass then 2-D Gaussians (its
        documented workflow, the default), centre of mass only, or none.
    threads : int
        CPU threads for BLAS and numba in the subprocess.
    timeout : float
        Seconds before the subprocess is killed.

    Returns
    -------
    positions : list of ndarray of float64, shape (k, 2)
        Per image, the (y, x) positions [px], pixel centres at integer coordinates.
    seconds : ndarray of float64, shape (n,)
        Wall time per image [s], without imports and one warm-up on a small synthetic image.

    Raises
    ------
    PeerUnavailable
        The environment is missing, or the subprocess failed or timed out.
    ParameterError
        Bad separation, refine or threads.
    """
    if refine not in REFINES:
        raise ParameterError(f"refine must be one of {list(REFINES)}, got {refine!r}.")
    if threads < 1:
        raise ParameterError(f"threads must be >= 1, got {threads}.")
    stack = check_image("images", images, ndim=(2, 3))
    stack = stack[np.newaxis] if stack.ndim == 2 else stack
    separations = np.asarray(separation).reshape(-1)
    if separations.size not in (1, len(stack)):
        raise ParameterError(
            f"separation must be one value or one per image ({len(stack)}), "
            f"got {separations.size} values."
        )
    if separations.dtype.kind not in "iuf" or np.any(separations != np.round(separations)):
        raise ParameterError(f"separation must be whole pixels, got {separations.tolist()}.")
    if np.any(separations < 1):
        raise ParameterError(f"separation must be >= 1 px, got {separations.tolist()}.")
    python = atomap_python()
    if not python.exists():
        raise PeerUnavailable(
            f"the Atomap environment is missing ({python} not found); create it with "
            f"`bash {SETUP}` (or point ATOMAP_VENV at an existing one)."
        )
    return _run(python, stack, separations.astype(np.int64), dark, refine, threads, timeout)


def _run(
    python: Path,
    stack: np.ndarray,
    separations: np.ndarray,
    dark: bool,
    refine: str,
    threads: int,
    timeout: float,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Run ``run_atomap.py`` on the stack in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="atomap_") as folder:
        source, target = Path(folder) / "in.npz", Path(folder) / "out.npz"
        np.savez(source, images=stack, separation=separations, dark=bool(dark))
        command = [str(python), str(RUNNER), str(source), str(target)]
        command += ["--refine", refine, "--threads", str(threads), "--invert", "linear"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise PeerUnavailable(f"Atomap did not finish within {timeout} s.") from error
        if done.returncode != 0 or not target.exists():
            raise PeerUnavailable(f"Atomap failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        with np.load(target) as result:
            ends = np.cumsum(result["counts"])[:-1]
            positions = np.split(result["positions"].astype(np.float64), ends)
            return positions, result["seconds"].astype(np.float64)
