"""Call the tk_r_em peer (Lobato et al. 2023) from atomlens benchmarks, through a subprocess.

tk_r_em is GPL-3 and needs TensorFlow, so it lives in its own environment made by
``benchmarks/peers/tk_r_em/setup.sh`` (default ``~/.cache/atomlens-peers/tk_r_em``, or
``$TK_R_EM_VENV``). This module imports neither: it writes the images to a temporary ``.npz``, runs
``run_tk_r_em.py`` with that environment's python and reads the result back.

tk_r_em's networks take raw images and normalise them internally (first layer ``lay_r_em_pp``:
shift and scale from the image; last layer ``lay_r_em_out``: the inverse), so the restored
images come back in the input's units [counts]; no mapping back is needed. Checked by hand:
restoring 10 x an image gives 10 x the restoration to a relative 1e-6.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from atomlens.core.validation import ParameterError, check_image

RUNNER = Path(__file__).resolve().parent / "tk_r_em" / "run_tk_r_em.py"
SETUP = RUNNER.with_name("setup.sh")

#: The tk_r_em network used for each atomlens modality: the high-resolution STEM and TEM networks
#: (the "lr" networks are for low-resolution, e.g. nanoparticle-scale, images).
MODELS = {"haadf": "sfr_hrstem", "abf": "sfr_hrstem", "hrtem": "sfr_hrtem"}


class PeerUnavailable(RuntimeError):
    """The tk_r_em environment is missing or broken."""


def tk_r_em_python() -> Path:
    """The python of the tk_r_em environment (``$TK_R_EM_VENV`` or the default path)."""
    default = Path.home() / ".cache" / "atomlens-peers" / "tk_r_em"
    return Path(os.environ.get("TK_R_EM_VENV", default)) / "bin" / "python"


def restore_with_tk_r_em(
    images: np.ndarray,
    modality: str,
    *,
    threads: int = 2,
    patch_size: int = 0,
    timeout: float = 3600.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Restore images with tk_r_em's pretrained network for the modality.

    Parameters
    ----------
    images : ndarray of shape (n, h, w) or (h, w)
        Raw images [counts], any scale.
    modality : {"haadf", "abf", "hrtem"}
        Picks the network: ``sfr_hrstem`` for HAADF and ABF, ``sfr_hrtem`` for HRTEM.
    threads : int
        CPU threads TensorFlow may use.
    patch_size : int
        0: whole-image ``predict``; otherwise tk_r_em's ``predict_patch_based`` with this patch
        [px] and half-patch stride (its fallback for images too large for memory).
    timeout : float
        Seconds before the subprocess is killed.

    Returns
    -------
    restored : ndarray of float32, shape (n, h, w)
        Restored images in the input's units [counts].
    seconds : ndarray of float64, shape (n,)
        Wall time per image [s], without TensorFlow start-up, model load and one warm-up call.

    Raises
    ------
    PeerUnavailable
        The environment is missing, or the subprocess failed or timed out.
    ParameterError
        Unknown modality or threads < 1.
    """
    if modality not in MODELS:
        raise ParameterError(
            f"modality must be one of {sorted(MODELS)}, got {modality!r}; use 'haadf' or 'abf' "
            "for STEM and 'hrtem' for TEM images."
        )
    if threads < 1:
        raise ParameterError(f"threads must be >= 1, got {threads}.")
    stack = check_image("images", images, ndim=(2, 3))
    single = stack.ndim == 2
    stack = stack[np.newaxis] if single else stack
    python = tk_r_em_python()
    if not python.exists():
        raise PeerUnavailable(
            f"the tk_r_em environment is missing ({python} not found); create it with "
            f"`bash {SETUP}` (or point TK_R_EM_VENV at an existing one)."
        )
    restored, seconds = _run(python, stack, MODELS[modality], threads, patch_size, timeout)
    return (restored[0] if single else restored), seconds


def _run(
    python: Path, stack: np.ndarray, model: str, threads: int, patch_size: int, timeout: float
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``run_tk_r_em.py`` on the stack in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="tk_r_em_") as folder:
        source, target = Path(folder) / "in.npz", Path(folder) / "out.npz"
        np.savez(source, images=stack)
        command = [str(python), str(RUNNER), str(source), str(target), "--model", model]
        command += ["--threads", str(threads), "--patch-size", str(patch_size)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise PeerUnavailable(f"tk_r_em did not finish within {timeout} s.") from error
        if done.returncode != 0 or not target.exists():
            raise PeerUnavailable(
                f"tk_r_em failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
            )
        with np.load(target) as result:
            return result["restored"].astype(np.float32), result["seconds"].astype(np.float64)
