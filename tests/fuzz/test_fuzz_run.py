"""Property-based tests of ``atomlens.pipeline.run`` (the chain behind ``atomlens run``).

Arrays of every shape and content (empty axes, one pixel, 1-D and 4-D, NaN and infinite pixels,
constant images, huge and negative counts, one-frame stacks) and hostile options. Contract: the
run returns a result whose tables match the input's kind, or raises a ``ValueError`` subclass
(``InputError``, ``ParameterError``) with a message; it never modifies its input.
"""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_strategies import HOSTILE_NUMBERS
from hypothesis import event, given, settings
from hypothesis import strategies as st

from atomlens.pipeline import run

# Each example runs the chain (locate and analyze at least): few examples.
FEW = settings(max_examples=max(10, settings.default.max_examples // 6))


@st.composite
def arrays(draw) -> np.ndarray:
    ndim = draw(st.sampled_from([1, 2, 2, 3, 4]))
    shape = tuple(draw(st.sampled_from([0, 1, 3, 24, 40, 40, 40])) for _ in range(ndim))
    kind = draw(st.sampled_from(["lattice", "noise", "constant", "hostile"]))
    if kind == "lattice":  # a lattice the chain runs on: an image or a short series
        shape = draw(st.sampled_from([(40, 40), (2, 40, 40), (3, 24, 40)]))
    size = int(np.prod(shape))
    if kind == "lattice":
        y, x = np.mgrid[: shape[-2], : shape[-1]]
        image = 50 + 400 * (np.cos(np.pi * y / 6) * np.cos(np.pi * x / 6)) ** 8
        data = np.broadcast_to(image, shape).astype(np.float32).copy()
    elif kind == "constant":
        data = np.full(shape, draw(st.sampled_from([0.0, 1.0, -5.0, 1e30])), np.float32)
    else:
        data = np.random.default_rng(draw(st.integers(0, 99))).poisson(30.0, size)
        data = data.reshape(shape).astype(np.float32)
    if kind == "hostile" and size:
        pixels = [v for v in HOSTILE_NUMBERS if isinstance(v, float)] + [1e38, -1e38]
        data.flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from(pixels))
    event(f"{len(shape)}-D {kind}")
    return data


@pytest.mark.filterwarnings("ignore:No pixel size")  # the run's notes say so too
@FEW
@given(data=arrays())
def test_any_array_is_run_or_refused_and_never_modified(data):
    before = data.copy()
    try:
        result = run(data, restore=False, progress=False)
    except ValueError as error:
        assert str(error)
        event(type(error).__name__)
    else:
        assert result.kind == ("image" if result.data.ndim == 2 else "series")
        assert result.columns is not None
        if result.kind == "series":
            assert "frame" in result.columns
    np.testing.assert_array_equal(data, before)


@FEW
@given(
    pixel_size=st.sampled_from([*HOSTILE_NUMBERS, 0.1, 1e9, "0.1"]),
    frame_time=st.sampled_from([*HOSTILE_NUMBERS, None, 0.5]),
    modality=st.sampled_from(["haadf", "HRTEM", "sem", "", None]),
)
def test_hostile_options_are_refused_or_work(pixel_size, frame_time, modality):
    y, x = np.mgrid[:32, :32]
    stack = np.stack([50 + 400 * (np.cos(np.pi * y / 6) * np.cos(np.pi * x / 6)) ** 8] * 2)
    try:
        run(stack, modality, pixel_size=pixel_size, frame_time=frame_time, progress=False)
    except ValueError as error:
        assert str(error)
