"""Property-based tests of ``atomlens.enhance.enhance`` and ``atomlens enhance``.

Images of every dtype, shape and content and hostile options. Contract:

- the library returns a finite float32 array of the input's shape, or raises a ``ValueError``
  subclass naming the problem; it never modifies the input;
- the command exits 0 with a file of the input's shape, or 2 with one line, leaving no output;
- one example takes under 20 s.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from fuzz_strategies import HOSTILE_NUMBERS, image_verb_contract, numbers
from hypothesis import event, given, settings
from hypothesis import strategies as st

from atomlens import cli
from atomlens.enhance import enhance
from atomlens.io import read

TIME_LIMIT = 20.0
FEW = settings(max_examples=max(10, settings.default.max_examples // 3))


@st.composite
def images(draw) -> np.ndarray:
    """2D images and small stacks: lattices at many spacings, noise, constants, NaN."""
    ndim = draw(st.sampled_from([1, 2, 2, 2, 3, 4]))
    shape = tuple(draw(st.lists(st.integers(1, 96), min_size=ndim, max_size=ndim)))
    if ndim == 3:
        shape = (min(shape[0], 2), *shape[1:])
    kind = draw(st.sampled_from(["lattice", "lattice", "noise", "constant", "special"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "lattice" and ndim >= 2:
        period = draw(st.floats(1.0, 40.0))
        y, x = np.indices(shape[-2:])
        clean = 10 + 50 * np.cos(np.pi * y / period) ** 4 * np.cos(np.pi * x / period) ** 4
        array = rng.poisson(np.broadcast_to(clean, shape)).astype(float)
    elif kind == "constant":
        array = np.full(shape, draw(st.floats(-1e6, 1e6)))
    elif kind == "special":
        array = rng.random(shape)
        if array.size:
            array.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300]))
    else:
        array = rng.normal(size=shape) * draw(st.sampled_from([1e-6, 1.0, 1e6]))
    dtype = draw(st.sampled_from([np.uint16, np.float32, np.float64]))
    if dtype == np.uint16:
        with np.errstate(all="ignore"):
            array = np.clip(np.nan_to_num(array, posinf=65535, neginf=0), 0, 65535)
    with np.errstate(all="ignore"):
        return array.astype(dtype)


def _under_contract(image: np.ndarray, **options) -> None:
    image_verb_contract(enhance, image, TIME_LIMIT, check_lattice=False, **options)


@FEW
@given(image=images())
def test_any_image_is_enhanced_or_refused(image):
    _under_contract(image)


@FEW
@given(
    modality=st.one_of(st.sampled_from(["haadf", "HAADF", "abf", "hrtem", "x", ""]), st.none()),
    pixel_size=st.one_of(st.none(), numbers("pixel_size", cheap=0.25)),
    spacing=st.one_of(st.none(), st.sampled_from([*HOSTILE_NUMBERS, 2.0, 0.3, 40.0])),
    tile=st.one_of(st.integers(-10, 300), st.sampled_from(HOSTILE_NUMBERS)),
)
def test_hostile_options_are_refused_or_work(modality, pixel_size, spacing, tile):
    y, x = np.indices((64, 64))
    image = np.random.default_rng(0).poisson(20 + 40 * np.cos(y / 2.5) ** 4 * np.cos(x / 2.5) ** 4)
    _under_contract(image.astype(np.float32), modality=modality, pixel_size=pixel_size,
                    spacing=spacing, tile=tile)  # fmt: skip


@FEW
@given(image=images(), suffix=st.sampled_from([".tif", ".h5", ""]))
def test_the_command_writes_a_file_or_one_line(image, suffix):
    case = Path(tempfile.mkdtemp())
    source = case / "input.npy"
    np.save(source, image)
    output = case / f"out{suffix}"
    code = cli.main(["enhance", str(source), "-o", str(output), "--no-progress"])
    assert code in (0, 2)
    assert np.array_equal(np.load(source), image, equal_nan=True)
    if code == 0:
        assert read(output).data.shape == image.shape
    else:
        assert not output.exists()
    event(f"exit {code}")
