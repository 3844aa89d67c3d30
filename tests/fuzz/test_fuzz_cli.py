"""Property-based tests of the ``atomlens`` command: random flags with hostile values.

Contract for every run: exit 0 with finite outputs, or exit 2 with one line on stderr that starts
with ``atomlens COMMAND: error:`` and leaves nothing behind; a file the user had is never changed
unless ``--overwrite`` was given.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from fuzz_strategies import HOSTILE_NUMBERS
from hypothesis import event, given
from hypothesis import strategies as st

from atomlens import cli

# A huge aberration gives a valid Ronchigram with a warning that its edge may alias.
pytestmark = pytest.mark.filterwarnings("ignore:The probe .* needs oversampling:RuntimeWarning")

HOSTILE_TEXT = [repr(v) for v in HOSTILE_NUMBERS] + ["1e999", "-0", "0x10", "", "abc", "1,5"]

RONCHIGRAM_FLAGS = {
    "--energy": "energy",
    "--semiangle": "semiangle",
    "--angular-sampling": "angular_sampling",
    "--edge-width": "edge_width",
    "--source-size": "source_size",
    "--thickness": "thickness",
    "--dose": "dose_per_image",
    "--psf-sigma": "psf_sigma",
    "--C10": "aberration",
    "--C12": "aberration",
    "--phi12": "aberration_angle",
}
# Valid values are drawn only up to a cost that keeps one run under a second: a valid 1 um thick
# specimen or a 100 Å pixel over a 1 um field is slow, not wrong.
CHEAP = {"thickness": 40.0, "pixel_size": 0.5, "slice_thickness": 40.0}
STEM_FLAGS = {
    "--pixel-size": "pixel_size",
    "--thickness": "thickness",
    "--energy": "energy",
    "--semiangle": "semiangle",
    "--source-size": "source_size",
    "--dose": "dose_per_pixel",
    "--rotation": "rotation",
    "--vacancies": None,
}
HRTEM_FLAGS = {
    "--pixel-size": "pixel_size",
    "--thickness": "thickness",
    "--objective-aperture": "objective_aperture",
    "--focal-spread": "focal_spread",
    "--divergence": "divergence",
    "--slice-thickness": "slice_thickness",
    "--dose": "dose_per_pixel",
}


def _flag_values(flags: dict[str, str | None]) -> st.SearchStrategy[list[str]]:
    """A few of ``flags``, each with a hostile, edge or ordinary value, as argv words."""
    from fuzz_strategies import numbers

    def value(kind: str | None) -> st.SearchStrategy[str]:
        ordinary = st.floats(-2, 2) if kind is None else numbers(kind, cheap=CHEAP.get(kind))
        return st.one_of(st.sampled_from(HOSTILE_TEXT), ordinary.map(repr))

    pairs = st.lists(
        st.sampled_from(sorted(flags)).flatmap(lambda f: value(flags[f]).map(lambda v: [f, v])),
        min_size=1,
        max_size=3,
        unique_by=lambda pair: pair[0],
    )
    return pairs.map(lambda ps: [f"{flag}={text}" for flag, text in ps])


def _run(argv: list[str], capsys) -> tuple[int, str]:
    start = time.perf_counter()
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse refusing a value that is not a number
        status = exit_.code
    assert time.perf_counter() - start < 30, argv
    return status, capsys.readouterr().err


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _check_contract(status: int, err: str, command: str, folder: Path, before: dict) -> None:
    event(f"exit {status}")
    assert status in (0, 2), (status, err)
    if status == 2 and "usage:" not in err:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"atomlens {command}: error: "), err
        assert _digest(folder) == before, "a failed run changed or left files"


@given(argv=_flag_values(RONCHIGRAM_FLAGS))
def test_simulate_ronchigram_flags(argv, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        status, err = _run(
            [
                "simulate",
                "ronchigram",
                "--size",
                "16",
                "--no-progress",
                "-o",
                str(folder / "r.tif"),
                *argv,
            ],
            capsys,
        )
        _check_contract(status, err, "simulate", folder, {})
        if status == 0:
            image = tifffile.imread(folder / "r.tif")
            assert image.shape == (16, 16) and np.isfinite(image).all()


@pytest.mark.parametrize(("kind", "flags"), [("stem", STEM_FLAGS), ("hrtem", HRTEM_FLAGS)])
@given(data=st.data())
def test_simulate_image_flags(kind, flags, data, capsys):
    argv = data.draw(_flag_values(flags))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        status, err = _run(
            ["simulate", kind, "--size", "24", "-o", str(folder / "out"), *argv], capsys
        )
        _check_contract(status, err, "simulate", folder, {})
        if status == 0:
            image = tifffile.imread(folder / "out" / "image.tif")
            assert image.shape == (24, 24) and np.isfinite(image).all()


@given(argv=_flag_values(RONCHIGRAM_FLAGS), overwrite=st.booleans())
def test_an_existing_output_is_changed_only_with_overwrite(argv, overwrite, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "r.tif").write_bytes(b"the user's data")
        (folder / "r.json").write_text("{}")
        before = _digest(folder)
        extra = ["--overwrite"] if overwrite else []
        status, err = _run(
            [
                "simulate",
                "ronchigram",
                "--size",
                "16",
                "--no-progress",
                "-o",
                str(folder / "r.tif"),
                *extra,
                *argv,
            ],
            capsys,
        )
        if not overwrite:
            assert status == 2
        _check_contract(status, err, "simulate", folder, before)
        if status != 0:
            assert _digest(folder) == before
