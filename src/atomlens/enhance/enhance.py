"""The enhance verb: an experimental image (or stack) in, its clean-domain translation out.

:func:`enhance` runs the experiment -> clean generator of an unpaired CycleGAN pair (thesis 003,
chapter 3) at the canonical column spacing (:mod:`atomlens.enhance.preprocess`), in blended
tiles, and returns the input's shape in the input's units. Unlike :func:`atomlens.restore`,
which is trained on simulated pairs to return expected counts, enhancement learned from real
images without a truth: it returns an image that looks like a clean simulation, for finding and
seeing columns (``atomlens.locate(image, guide=enhanced)`` finds the candidates on it and fits
them on the raw counts; ``atomlens locate --enhance``), not counts to quantify.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from atomlens.core.validation import InputError, check_parameter
from atomlens.enhance.checks import MODALITIES, check_enhance_input, check_modality
from atomlens.restore.checks import check_tiles, warn_invented

__all__ = ["DEFAULT_MODEL", "MODALITIES", "Enhancer", "enhance", "load_enhancer"]

#: The shipped model.
DEFAULT_MODEL = "enhance-haadf"


class Enhancer:
    """A loaded generator pair with its config; call it on normalised canonical (n, h, w) tiles.

    Parameters
    ----------
    model : CyclePair
    config : dict
        The model folder's config (``task`` "image-enhancement").
    """

    def __init__(self, model: Any, config: dict[str, Any]):
        if config.get("task") != "image-enhancement":
            raise ValueError(
                f"The model is a {config.get('task')!r} model, not an image-enhancement network."
            )
        self.model = model.eval()
        self.config = config

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the generators were trained on."""
        return tuple(self.config.get("modalities", ()))

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        from atomlens.nn.tiling import predict_padded

        return predict_padded(self.model, tiles)  # a CyclePair runs its to_clean generator


@functools.lru_cache(maxsize=4)
def _load_cached(name: str) -> Enhancer:
    from atomlens.zoo import load_model

    model, config = load_model(name)
    return Enhancer(model, config)


def load_enhancer(model: str | Path = DEFAULT_MODEL) -> Enhancer:
    """The enhancement generators of a model name or folder (verified weights, cached)."""
    return _load_cached(str(model))


def _spacing_px(frames: np.ndarray, pixel_size: float | None, spacing: float | None) -> float:
    """The column spacing [px]: from ``spacing`` [Å] and ``pixel_size``, or the mean frame
    (of a stack: its frames registered first, :func:`atomlens.locate.register.aligned_mean`)."""
    from atomlens.locate import estimate_spacing
    from atomlens.locate.register import aligned_mean

    if spacing is not None:
        spacing = check_parameter("spacing", spacing, kind="pixel_size")
        if pixel_size is None:
            raise ValueError("spacing=... [Å] needs pixel_size=... [Å/px] to become pixels.")
        return spacing / pixel_size
    found = estimate_spacing(aligned_mean(frames))
    if not np.isfinite(found):
        raise InputError(
            "The image shows no periodic column lattice, so its column spacing (which sets the "
            "scale the network works at) cannot be estimated; give spacing=... [Å] with "
            "pixel_size=... [Å/px]."
        )
    return float(found)


def enhance(
    image: np.ndarray,
    modality: str = "haadf",
    pixel_size: float | None = None,
    *,
    spacing: float | None = None,
    model: str | Path | None = None,
    tile: int = 128,
    overlap: int = 32,
    check_lattice: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Enhance an experimental atomic-resolution image, or every frame of a stack.

    Parameters
    ----------
    image : ndarray (rows, cols) or (frames, rows, cols)
        Raw counts or intensities, any scale and offset; never modified.
    modality : {"haadf", "abf", "hrtem"}
        What the image shows (ADF counts as HAADF). The model must have been trained on it
        (the shipped ``enhance-haadf``: HAADF / ADF STEM only).
    pixel_size : float, optional
        [Å/px]; needed only with ``spacing``.
    spacing : float, optional
        The nearest-neighbour distance of the columns [Å]. By default it is estimated from the
        image in pixels (:func:`atomlens.locate.estimate_spacing` on the mean frame), which is
        all the network needs: it works at 8 px per column spacing.
    model : str or Path, optional
        A model name or folder instead of the shipped one.
    tile, overlap : int
        Tiles of ``tile`` px at the canonical scale, overlapping by ``overlap`` px.
    check_lattice : bool
        Warn when the enhanced image has spectral peaks the input lacks (an invented lattice;
        :func:`atomlens.restore.checks.invented_peaks`).
    progress : bool
        A progress bar over frames.

    Returns
    -------
    ndarray, float32, the input's shape
        The clean-domain image in the input's units (through the input's median and spread);
        its contrast is that of clean simulations, not calibrated counts.

    Raises
    ------
    InputError
        Not an image (NaN, constant, smaller than 16 px, wrong dimensions); no lattice to set
        the scale from and no ``spacing``.
    ValueError
        An unknown modality, or one the model was not trained on; ``spacing`` without
        ``pixel_size``; a spacing out of range; bad tile sizes.

    Examples
    --------
    >>> y, x = np.mgrid[:96, :96] - 4.0
    >>> lattice = 20 + 60 * np.cos(np.pi * y / 8) ** 8 * np.cos(np.pi * x / 8) ** 8
    >>> noisy = np.random.default_rng(0).poisson(lattice).astype(float)
    >>> enhanced = enhance(noisy)
    >>> enhanced.shape, enhanced.dtype.name
    ((96, 96), 'float32')
    """
    if pixel_size is not None:
        pixel_size = check_parameter("pixel_size", pixel_size)
    check_tiles(tile, overlap)
    array = check_enhance_input(image)
    enhancer = load_enhancer(model or DEFAULT_MODEL)
    modality = check_modality(modality, enhancer.modalities, str(model or DEFAULT_MODEL))
    frames = array.reshape(-1, *array.shape[-2:])
    spacing_px = _spacing_px(frames, pixel_size, spacing)
    out = _enhance_frames(frames, enhancer, spacing_px, tile=tile, overlap=overlap,
                          progress=progress)  # fmt: skip
    if check_lattice:
        warn_invented(frames, out, stack=array.ndim == 3, done="enhanced", by="the generator",
                      advice="compare with atomlens.restore")  # fmt: skip
    return out.reshape(array.shape)


def _enhance_frames(
    frames: np.ndarray,
    enhancer: Enhancer,
    spacing_px: float,
    *,
    tile: int,
    overlap: int,
    progress: bool,
) -> np.ndarray:
    from atomlens.enhance.preprocess import from_canonical, to_canonical
    from atomlens.nn.tiling import apply_tiled
    from atomlens.restore import normalise

    out = np.empty(frames.shape, np.float32)
    bar = tqdm(total=len(frames), desc="enhance", unit="frame", disable=not progress)
    for i, frame in enumerate(frames):
        canonical, _ = to_canonical(frame, spacing_px)
        scaling = normalise(canonical)
        normalised = np.clip(scaling.apply(canonical), -20.0, 20.0)
        enhanced = apply_tiled(normalised, enhancer, tile=tile, overlap=overlap)
        out[i] = scaling.invert(from_canonical(enhanced, frame.shape))
        bar.update(1)
    bar.close()
    return out
