"""The enhance verb's input rules: what cannot be enhanced is refused before the network runs.

- :func:`check_enhance_input`: a real, finite 2D image or (frames, rows, cols) stack, at least
  :data:`MIN_SIZE` px, within the array size limit, and not constant.
- :func:`check_modality`: the modality is one the model's generators were trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atomlens.core.validation import check_frames

__all__ = ["MIN_SIZE", "MODALITIES", "check_enhance_input", "check_modality"]

#: Smallest image side the enhance verb accepts [px].
MIN_SIZE = 16
#: The modalities a model can declare.
MODALITIES = ("haadf", "abf", "hrtem")


def check_enhance_input(image: object) -> np.ndarray:
    """The image or stack as float32 (the caller's array never modified), or a clear error.

    Raises
    ------
    InputError
        Complex, non-numeric, NaN or infinite values; not 2-D or 3-D; a side under
        :data:`MIN_SIZE` px; a constant image or frame.
    SizeLimitError
        Larger than the array size limit (``ATOMLENS_MAX_ARRAY_GB``), before any copy.
    """
    return check_frames("image", image, min_size=MIN_SIZE, purpose="enhance")


def check_modality(modality: object, trained: Sequence[str], model: str) -> str:
    """The modality, lower case, if it is known and ``model`` was trained on it.

    Raises
    ------
    ValueError
        An unknown modality, or one the model's generators never saw.
    """
    if not isinstance(modality, str) or modality.lower() not in MODALITIES:
        raise ValueError(f"modality=... must be one of {', '.join(MODALITIES)}; got {modality!r}.")
    modality = modality.lower()
    if modality not in trained:
        raise ValueError(
            f"The enhancement model {model!r} was trained on "
            f"{', '.join(trained) or 'no stated modality'} images, not {modality}; "
            "train one for it with 'atomlens train enhance' (real images of that modality)."
        )
    return modality
