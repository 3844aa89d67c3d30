"""Property-based tests of ``atomlens.locate.locate`` and ``atomlens locate``.

Images of every dtype, shape and content (constant, negative, NaN, infinite, huge and tiny
values, offsets, stacks) and hostile options. Contract:

- the library returns a table with the documented columns and finite positions inside the
  image, or raises a ``ValueError`` subclass; it never modifies the input;
- positions do not depend on the image's scale and offset;
- the command exits 0 with a CSV, or 2 with one line and no output;
- one example takes under 20 s.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fuzz_strategies import HOSTILE_NUMBERS, numbers
from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_fuzz_restore import images

from atomlens import cli
from atomlens.locate import COLUMNS, locate

TIME_LIMIT = 20.0
FEW = settings(max_examples=max(10, settings.default.max_examples // 3))


def _locate_under_contract(image: np.ndarray, **options) -> pd.DataFrame | None:
    before = image.copy()
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table = locate(image, **options)
    except ValueError as error:
        event(f"refused: {type(error).__name__}")
        assert str(error)
        table = None
    assert time.perf_counter() - start < TIME_LIMIT
    assert np.array_equal(image, before, equal_nan=True), "locate modified its input"
    if table is not None:
        event("located" if len(table) else "located nothing")
        assert list(table.columns[-len(COLUMNS) :]) == list(COLUMNS)
        rows, cols = image.shape[-2:]
        assert np.isfinite(table[["y", "x"]].to_numpy()).all()
        assert table["y"].between(-0.5, rows - 0.5).all()
        assert table["x"].between(-0.5, cols - 0.5).all()
        assert (table["sigma_x"] > 0).all() and (table["sigma_y"] > 0).all()
    return table


@FEW
@given(image=images(), pixel_size=st.sampled_from([None, 0.1, 0.5]))
def test_any_image_is_located_or_refused(image, pixel_size):
    _locate_under_contract(image, pixel_size=pixel_size)


@FEW
@given(
    modality=st.one_of(st.sampled_from(["haadf", "abf", "hrtem", "HAADF", "sem", ""]), st.none()),
    method=st.one_of(st.sampled_from(["classical", "unet", ""]), st.integers()),
    pixel_size=st.one_of(st.none(), numbers("pixel_size", cheap=1.0)),
    spacing=st.one_of(st.none(), st.sampled_from([*HOSTILE_NUMBERS, 0.5, 2.0, 50.0])),
    threshold=st.one_of(st.sampled_from([*HOSTILE_NUMBERS, 0.0, 3.0]), st.text(max_size=2)),
    rounds=st.one_of(st.integers(-2, 12), st.booleans(), st.floats(0, 3)),
)
def test_hostile_options_are_refused_or_work(modality, method, pixel_size, spacing, threshold,
                                             rounds):  # fmt: skip
    y, x = np.indices((48, 40))
    image = np.random.default_rng(0).poisson(40 + 60 * np.cos(y / 1.5) ** 2 * np.cos(x / 1.5) ** 2)
    _locate_under_contract(image.astype(np.float32), modality=modality, method=method,
                           pixel_size=pixel_size, spacing=spacing, threshold=threshold,
                           rounds=rounds)  # fmt: skip


@FEW
@given(
    seed=st.integers(0, 2**32 - 1),
    gain=st.sampled_from([1e-3, 0.5, 7.0, 1e4, -2.0]),
    offset=st.sampled_from([0.0, -100.0, 3e4]),
)
def test_positions_do_not_depend_on_scale_and_offset(seed, gain, offset):
    rng = np.random.default_rng(seed)
    y, x = np.indices((64, 64))
    image = rng.poisson(60 + 50 * np.cos(y / 1.5) ** 2 * np.cos(x / 1.5) ** 2).astype(np.float64)
    # a negative gain makes the columns dark: ABF against ABF of the negated image (HAADF has
    # steps ABF does not: the width refits and the lattice-site search)
    modality = "abf" if gain < 0 else "haadf"
    base = locate(np.sign(gain) * image, pixel_size=0.2, modality=modality)
    other = locate(image * gain + offset, pixel_size=0.2, modality=modality)
    assert len(base) == len(other)
    np.testing.assert_allclose(other[["y", "x"]], base[["y", "x"]], atol=1e-4)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@FEW
@given(image=images())
def test_the_command_writes_a_table_or_one_line(folder, image):
    case = Path(tempfile.mkdtemp(dir=folder))
    source = case / "input.npy"
    np.save(source, image)
    output = case / "atoms.csv"
    code = cli.main(["locate", str(source), "--pixel-size", "0.2", "-o", str(output),
                     "--no-progress"])  # fmt: skip
    assert code in (0, 2)
    assert np.array_equal(np.load(source), image, equal_nan=True)
    assert output.exists() == (code == 0)
    event(f"exit {code}")
