"""Hypothesis strategies for the fuzz suite: hostile numbers and parameter values, and the
contract every image-to-image verb keeps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from hypothesis import event
from hypothesis import strategies as st

from atomlens.core.validation import PARAMETERS

#: Values that broke the verbs before the validation layer (issue 9), tried first.
HOSTILE_NUMBERS = [
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    -1.0,
    1e-300,
    1e-7,
    1e300,
    -1e300,
    2**63,
]


def numbers(kind: str, *, cheap: float | None = None) -> st.SearchStrategy[float]:
    """Numbers for a parameter of ``kind``: hostile values, values around and inside the range.

    Parameters
    ----------
    kind : str
        An entry of ``PARAMETERS``.
    cheap : float, optional
        Draw valid values only up to this one: a valid but huge value (a 1 um thick specimen) is
        slow, not wrong, and the fuzz suite must stay fast. The upper edge is still refused.
    """
    valid = PARAMETERS[kind]
    high = valid.high if cheap is None else min(cheap, valid.high)
    inside = st.floats(valid.low, high, allow_nan=False)
    if valid.integer:
        inside = st.integers(int(valid.low), int(high)).map(float)
    edges = [valid.low, valid.low - 1, valid.high * 1.001 + 1, (valid.low + high) / 2]
    if cheap is None:
        edges.append(valid.high)
    outside = st.one_of(
        st.floats(max_value=valid.low, exclude_max=not valid.low_open),
        st.floats(min_value=valid.high, exclude_min=True),
    )
    return st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(edges), inside, outside)


def image_verb_contract(
    verb: Callable[..., np.ndarray], image: np.ndarray, time_limit: float, **options
) -> np.ndarray | None:
    """``verb(image, **options)`` returns a finite float32 array of the image's shape, or raises
    a ``ValueError`` with a message; it never modifies the input and ends within the limit [s]."""
    before = image.copy()
    start = time.perf_counter()
    try:
        out = verb(image, **options)
    except ValueError as error:
        event(f"refused: {type(error).__name__}")
        assert str(error)
        out = None
    assert time.perf_counter() - start < time_limit
    assert np.array_equal(image, before, equal_nan=True), f"{verb.__name__} modified its input"
    if out is not None:
        event("done")
        assert out.shape == image.shape and out.dtype == np.float32
        assert np.isfinite(out).all()
    return out
