"""Property-based tests of ``atomlens.restore.restore`` and ``atomlens restore``.

Images of every dtype, shape and content (constant, negative, NaN, infinite, huge and tiny
values, offsets, stacks) and hostile options. Contract:

- the library returns a finite float32 array of the input's shape, or raises a ``ValueError``
  subclass; it never modifies the input;
- every method keeps an image's units: restoring ``a * image + b`` gives ``a * restored + b``;
- the command exits 0 with a file that reads back with the input's shape, or 2 with one line;
  a failed run leaves no output behind and never writes over an input;
- one example takes under 20 s.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzz_strategies import HOSTILE_NUMBERS, image_verb_contract, numbers
from hypothesis import event, given, settings
from hypothesis import strategies as st

from atomlens import cli
from atomlens.io import read, write_tiff
from atomlens.restore import restore

#: Methods the fuzz suite runs (BM3D and NLM are too slow for many examples; the net is
#: exercised on small images).
FAST_METHODS = ("net", "gaussian", "wiener")
TIME_LIMIT = 20.0
FEW = settings(max_examples=max(10, settings.default.max_examples // 3))


@st.composite
def images(draw) -> np.ndarray:
    """2D images and small stacks of many dtypes, contents and scales."""
    ndim = draw(st.sampled_from([1, 2, 2, 2, 3, 4]))
    shape = tuple(draw(st.lists(st.integers(1, 80), min_size=ndim, max_size=ndim)))
    if ndim == 3:
        shape = (min(shape[0], 3), *shape[1:])
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64]))
    kind = draw(st.sampled_from(["counts", "constant", "noise", "special", "lattice"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "constant":
        array = np.full(shape, draw(st.floats(-1e6, 1e6)))
    elif kind == "special":
        array = rng.random(shape)
        array.flat[draw(st.integers(0, max(0, array.size - 1)))] = (
            draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300])) if array.size else 0
        )
    elif kind == "lattice" and ndim >= 2:
        y, x = np.indices(shape[-2:])
        array = 100 + 80 * np.cos(y / 1.3) ** 2 * np.cos(x / 1.3) ** 2
        array = np.broadcast_to(array, shape).copy()
        array = rng.poisson(array).astype(float)
    else:
        array = rng.poisson(draw(st.floats(0.1, 1e4)), size=shape).astype(float)
    scale = draw(st.sampled_from([1.0, 1e-6, 1e6, -1.0]))
    offset = draw(st.sampled_from([0.0, 1e4, -50.0]))
    with np.errstate(all="ignore"):
        array = array * scale + offset
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            array = np.clip(np.nan_to_num(array), info.min, info.max)
        return array.astype(dtype)


def _restore_under_contract(image: np.ndarray, **options) -> np.ndarray | None:
    return image_verb_contract(restore, image, TIME_LIMIT, **options)


@FEW
@given(image=images(), method=st.sampled_from(FAST_METHODS))
def test_any_image_is_restored_or_refused(image, method):
    _restore_under_contract(image, method=method, check_lattice=False)


@FEW
@given(
    modality=st.one_of(st.sampled_from(["haadf", "abf", "hrtem", "HAADF", "sem", ""]), st.none()),
    method=st.one_of(st.sampled_from(["net", "gaussian", "bm3d ", "x"]), st.integers()),
    pixel_size=st.one_of(st.none(), numbers("pixel_size", cheap=1.0)),
    tile=st.one_of(st.integers(-10, 600), st.sampled_from(HOSTILE_NUMBERS)),
    overlap=st.one_of(st.integers(-10, 300), st.booleans()),
    precision=st.sampled_from(["float32", "bfloat16", "fp8", None]),
)
def test_hostile_options_are_refused_or_work(
    modality, method, pixel_size, tile, overlap, precision
):
    image = np.random.default_rng(0).poisson(40, size=(48, 40)).astype(np.float32)
    options = dict(modality=modality, method=method, pixel_size=pixel_size, tile=tile,
                   overlap=overlap, precision=precision, check_lattice=False)  # fmt: skip
    try:
        _restore_under_contract(image, **options)
    except UserWarning:
        pass


@FEW
@given(
    seed=st.integers(0, 2**32 - 1),
    gain=st.sampled_from([1e-3, 0.5, 7.0, 1e4]),
    offset=st.sampled_from([0.0, -100.0, 3e4]),
    method=st.sampled_from(FAST_METHODS),
)
def test_every_method_keeps_the_units(seed, gain, offset, method):
    rng = np.random.default_rng(seed)
    y, x = np.indices((64, 64))
    image = rng.poisson(60 + 50 * np.cos(y / 1.5) ** 2 * np.cos(x / 1.5) ** 2).astype(np.float64)
    base = restore(image, method=method, check_lattice=False)
    scaled = restore(image * gain + offset, method=method, check_lattice=False)
    spread = gain * (base.max() - base.min())
    assert np.abs(scaled - (base * gain + offset)).max() < 2e-3 * spread + 1e-6 * abs(offset)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@FEW
@given(image=images(), suffix=st.sampled_from([".tif", ".h5", ".png", ""]))
def test_the_command_writes_a_file_or_one_line(folder, image, suffix):
    case = Path(tempfile.mkdtemp(dir=folder))
    source = case / "input.npy"
    np.save(source, image)
    output = case / f"out{suffix}"
    code = cli.main(["restore", str(source), "--modality", "haadf", "--method", "gaussian",
                     "-o", str(output), "--no-progress"])  # fmt: skip
    assert code in (0, 2)
    assert np.array_equal(np.load(source), image, equal_nan=True)
    if code == 0:
        assert read(output).data.shape == image.shape
    else:
        assert not output.exists()
    event(f"exit {code}")


def test_the_command_refuses_writing_over_its_input(folder):
    image = write_tiff(folder / "same.tif", np.random.default_rng(0).random((32, 32)))
    before = image.read_bytes()
    assert cli.main(["restore", str(image), "--modality", "haadf", "-o", str(image),
                     "--overwrite"]) == 2  # fmt: skip
    assert image.read_bytes() == before
