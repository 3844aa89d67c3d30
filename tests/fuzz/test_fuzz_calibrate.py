"""Property-based tests of ``atomlens.calibrate.estimate`` and ``atomlens calibrate``.

Images of every dtype, shape and content (constant, white noise, negative, NaN, huge values,
lattices, genuine simulated Ronchigrams with the right and a wrong calibration) and hostile
calibration flags. Contract:

- the library raises a ``ValueError`` or ``OSError`` subclass, or returns finite estimates with
  finite positive uncertainties and a sign probability in [0.5, 1];
- the command exits 0 with such a result, or 2 with one line ``atomlens calibrate: error: ...``
  (or an argparse usage message); a failed run leaves every file as it was, and no run writes
  over an input;
- an image that is not a Ronchigram (constant, white noise, a lattice) is always refused;
- one example takes under 20 s.

The genuine Ronchigrams are simulated once per module (fixed seeds), so the suite stays fast.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import tifffile
from fuzz_strategies import HOSTILE_NUMBERS, numbers
from hypothesis import event, given, note
from hypothesis import strategies as st

from atomlens import cli
from atomlens.calibrate import AberrationEstimate, estimate, estimate_batch

#: The calibration the genuine Ronchigrams were simulated with [eV, mrad, mrad/px].
ENERGY, SEMIANGLE, SAMPLING = 200e3, 30.0, 0.6
#: Their size [px]: the detector reaches 1.28 semi-angles, inside the trained geometry.
SIZE = 128
#: C10 [Å] of the genuine Ronchigrams; the first two are a defocus pair 200 Å (20 nm) apart.
C10 = (-300.0, -100.0, 150.0)
#: Content that is not a Ronchigram and must be refused.
NOT_RONCHIGRAMS = {"constant", "noise", "lattice"}
#: Longest time one example may take [s].
TIME_LIMIT = 20.0

HOSTILE_TEXT = [repr(v) for v in HOSTILE_NUMBERS] + ["1e999", "-0", "0x10", "", "abc", "1,5"]
DTYPES = [
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
]


@lru_cache(maxsize=1)
def genuine() -> tuple[np.ndarray, ...]:
    """Simulated Ronchigrams in counts (amorphous carbon, Poisson noise), made once per module."""
    from atomlens.physics import (
        Aberrations,
        AmorphousSpecimen,
        RonchigramSetup,
        ronchigram_camera,
        simulate_ronchigrams,
    )

    setup = RonchigramSetup(
        energy=ENERGY, semiangle=SEMIANGLE, angular_sampling=SAMPLING, size=SIZE
    )
    specimen = AmorphousSpecimen(thickness=60.0, slice_thickness=30.0)
    aberrations = [Aberrations(C10=c10, C12=60.0, phi12=0.4, C30=1e4) for c10 in C10]
    images = simulate_ronchigrams(
        setup, aberrations, specimen, seed=5, detector=ronchigram_camera(1e6)
    )
    return tuple(np.asarray(image, dtype=np.float32) for image in images)


@dataclass(frozen=True)
class Spec:
    """How to build one test image (hypothesis draws these; :func:`build` makes the array)."""

    kind: str
    shape: tuple[int, ...]
    dtype: str
    seed: int
    which: int = 0

    def __str__(self) -> str:
        return f"{self.kind} {self.shape} {self.dtype} seed={self.seed} which={self.which}"


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """White noise of one of several distributions."""
    kind = int(rng.integers(6))
    if kind == 0:
        return rng.random(shape)
    if kind == 1:
        return rng.poisson(rng.uniform(0.05, 2.0), shape).astype(float)
    if kind == 2:
        return rng.poisson(rng.uniform(2.0, 2000.0), shape).astype(float)
    if kind == 3:
        return rng.normal(rng.uniform(0, 100), rng.uniform(0.1, 10), shape)
    if kind == 4:
        return rng.exponential(rng.uniform(0.1, 100), shape)
    return (rng.random(shape) < rng.uniform(0.01, 0.5)).astype(float)


def _lattice(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A clean lattice: 2-3 plane waves of period 3-16 px, or Gaussian columns on a grid."""
    plane = shape[-2:] if len(shape) > 1 else (1, shape[0])
    y, x = np.indices(plane, dtype=float)
    if rng.random() < 0.5:
        image = np.zeros(plane)
        waves = int(rng.integers(2, 4))
        angle = rng.uniform(0, math.pi)
        for k in range(waves):
            period = rng.uniform(3, 16)
            direction = angle + k * math.pi / waves
            phase = rng.uniform(0, 2 * math.pi)
            image += np.cos(
                2 * math.pi / period * (x * np.cos(direction) + y * np.sin(direction)) + phase
            )
        image -= image.min()
    else:
        period = rng.uniform(4, 14)
        width = period / rng.uniform(4, 8)
        dy, dx = (y % period) - period / 2, (x % period) - period / 2
        image = np.exp(-(dx**2 + dy**2) / (2 * width**2))
    image = image * rng.uniform(1, 1000) + rng.uniform(0.01, 10)
    return np.broadcast_to(image.reshape(shape[-2:] if len(shape) > 1 else shape), shape).copy()


def _genuine(spec: Spec, rng: np.random.Generator) -> np.ndarray:
    """A genuine Ronchigram, cropped or stacked to ``spec.shape`` where that is asked for."""
    image = genuine()[spec.which % len(C10)]
    if len(spec.shape) == 2 and spec.shape != image.shape:
        rows, cols = (min(n, SIZE) for n in spec.shape)
        top = int(rng.integers(0, SIZE - rows + 1))
        left = int(rng.integers(0, SIZE - cols + 1))
        return image[top : top + rows, left : left + cols].copy()
    if len(spec.shape) == 3:
        return np.stack([genuine()[i % len(C10)] for i in range(spec.shape[0])])
    if len(spec.shape) == 1:
        return image[SIZE // 2].copy()
    return image.copy()


def build(spec: Spec) -> np.ndarray:
    """The array of ``spec``."""
    rng = np.random.default_rng(spec.seed)
    shape = spec.shape
    if spec.kind == "genuine":
        image = _genuine(spec, rng)
    elif spec.kind == "constant":
        image = np.full(shape, [0.0, 1.0, 7.0, 3e4, -5.0, 1e30][spec.which % 6])
    elif spec.kind == "noise":
        image = _noise(rng, shape)
    elif spec.kind == "lattice":
        image = _lattice(rng, shape)
    elif spec.kind == "negative":
        image = -_genuine(spec, rng) * rng.uniform(0.1, 10)
    elif spec.kind == "offset":  # a wrongly subtracted dark level
        image = _genuine(spec, rng)
        image = image - rng.uniform(0.2, 3) * float(image.max())
    elif spec.kind == "nan":
        image = _genuine(spec, rng).astype(np.float64)
        flat = image.reshape(-1)
        flat[rng.integers(0, flat.size, int(rng.integers(1, 5)))] = [np.nan, np.inf, -np.inf][
            spec.which % 3
        ]
    elif spec.kind == "huge":
        image = _genuine(spec, rng).astype(np.float64) * [1e30, 1e38, 1e300, 1e-300][spec.which % 4]
    else:  # pragma: no cover - the strategy draws only the kinds above
        raise AssertionError(spec.kind)
    return _cast(image, spec.dtype, rng)


def _cast(image: np.ndarray, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """``image`` as ``dtype``: integers clipped to the type's range, bool above the median."""
    if dtype == "bool":
        finite = image[np.isfinite(image)]
        return image > (np.median(finite) if finite.size else 0.0)
    if dtype.startswith("complex"):
        return (image + 1j * rng.random(image.shape)).astype(dtype)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        low, high = max(float(info.min), -(2.0**62)), min(float(info.max), 2.0**62)
        clean = np.nan_to_num(image, nan=0.0, posinf=high, neginf=low)
        return np.clip(np.rint(clean), low, high).astype(dtype)
    with np.errstate(over="ignore"):
        return image.astype(dtype)


def _shape(kind: str) -> st.SearchStrategy[tuple[int, ...]]:
    side = st.integers(1, 200)
    two_d = st.one_of(
        st.tuples(st.integers(1, 40), st.integers(1, 40)),  # tiny
        st.tuples(side, side),  # any, often non-square and odd
        st.sampled_from([(SIZE, SIZE), (SIZE - 1, SIZE - 3), (100, 127), (127, 97)]),
    )
    if kind == "genuine":
        return st.one_of(st.just((SIZE, SIZE)), two_d, st.just((SIZE,)), st.just((2, SIZE, SIZE)))
    return st.one_of(
        two_d,
        two_d,
        st.integers(1, 500).map(lambda n: (n,)),
        st.tuples(st.integers(1, 3), st.integers(1, 64), st.integers(1, 64)),
    )


KINDS = ["genuine", "genuine", "constant", "noise", "lattice", "negative", "offset", "nan", "huge"]


@st.composite
def specs(draw, kinds: list[str] = KINDS) -> Spec:
    """Any content, shape and dtype."""
    kind = draw(st.sampled_from(kinds))
    float_only = kind in ("nan", "huge")
    dtype = draw(
        st.sampled_from(["float32", "float64"] if float_only else DTYPES)
        if kind != "genuine"
        else st.sampled_from(["float32", "float32", "uint16", "int32", "float64", *DTYPES])
    )
    return Spec(
        kind=kind,
        shape=draw(_shape(kind)),
        dtype=draw(st.just(dtype)),
        seed=draw(st.integers(0, 2**32 - 1)),
        which=draw(st.integers(0, 5)),
    )


#: A genuine Ronchigram as a camera gives it: whole or cropped to at least 100 px, any real type.
GENUINE = st.builds(
    Spec,
    kind=st.just("genuine"),
    shape=st.one_of(
        st.just((SIZE, SIZE)), st.tuples(st.integers(100, SIZE), st.integers(100, SIZE))
    ),
    dtype=st.sampled_from(["float32", "uint16", "int32", "float64", "int16", "float16"]),
    seed=st.integers(0, 2**32 - 1),
    which=st.integers(0, len(C10) - 1),
)
#: Genuine Ronchigrams half of the time, anything else the other half.
IMAGES = st.one_of(GENUINE, specs())


def _calibration_value(kind: str, right: float, wrong: list[float]) -> st.SearchStrategy[float]:
    """The right value (mostly), a wrong but valid one, or a hostile number."""
    return st.one_of(st.just(right), st.sampled_from(wrong), numbers(kind))


ENERGIES = _calibration_value("energy", ENERGY, [100e3, 196e3, 300e3])
SEMIANGLES = _calibration_value("semiangle", SEMIANGLE, [20.0, 25.0, 33.0, 45.0])
SAMPLINGS = _calibration_value("angular_sampling", SAMPLING, [0.3, 0.42, 0.8, 0.9, 1.2, 5.0])
#: The right calibration half of the time, each value drawn on its own the other half.
CALIBRATIONS = st.one_of(
    st.just((ENERGY, SEMIANGLE, SAMPLING)), st.tuples(ENERGIES, SEMIANGLES, SAMPLINGS)
)


def _check_result(result: AberrationEstimate) -> None:
    assert isinstance(result, AberrationEstimate)
    values, sigma = np.asarray(result.values), np.asarray(result.sigma)
    assert values.shape == sigma.shape == (8,)
    assert np.isfinite(values).all() and np.isfinite(sigma).all(), (values, sigma)
    assert (sigma > 0).all(), sigma
    assert 0.5 <= result.sign_probability <= 1.0
    if result.alternative is not None:
        assert np.isfinite(result.alternative).all()


def _call(function, *args, **kwargs):
    """``function(*args, **kwargs)`` -> (result or None, error or None), within the time limit."""
    start = time.perf_counter()
    try:
        result, error = function(*args, **kwargs), None
    except (ValueError, OSError) as caught:  # the documented errors; anything else fails
        result, error = None, caught
    seconds = time.perf_counter() - start
    assert seconds < TIME_LIMIT, f"{seconds:.1f} s"
    if error is not None:
        event(f"refused: {type(error).__name__}")
        assert str(error).strip(), "an error without a message"
    else:
        event("accepted")
    return result, error


# ------------------------------------------------------------------ the library


@given(spec=IMAGES, calibration=CALIBRATIONS)
def test_estimate_gives_a_clear_error_or_a_finite_result(spec, calibration):
    energy, semiangle, sampling = calibration
    image = build(spec)
    note(f"{spec}: {image.dtype} {image.shape}")
    before = image.copy()
    result, error = _call(
        estimate, image, energy=energy, semiangle=semiangle, angular_sampling=sampling
    )
    if error is None:
        assert spec.kind not in NOT_RONCHIGRAMS, f"a {spec.kind} image was accepted: {result}"
        _check_result(result)
    np.testing.assert_array_equal(image, before)  # the input is never modified


@given(spec=specs(kinds=list(NOT_RONCHIGRAMS)), sampling=st.sampled_from([0.3, 0.6, 1.0, 2.0]))
def test_what_is_not_a_ronchigram_is_refused(spec, sampling):
    image = build(spec)
    note(f"{spec}: {image.dtype} {image.shape}")
    _, error = _call(estimate, image, energy=ENERGY, semiangle=SEMIANGLE, angular_sampling=sampling)
    assert error is not None


@given(
    items=st.lists(st.one_of(st.integers(0, len(C10) - 1), IMAGES), min_size=1, max_size=4),
    offsets=st.one_of(
        st.none(),
        st.lists(
            st.one_of(st.sampled_from([0.0, 200.0, -450.0]), numbers("aberration")),
            min_size=1,
            max_size=4,
        ),
    ),
)
def test_combined_ronchigrams_give_a_clear_error_or_a_finite_result(items, offsets):
    """1-4 Ronchigrams, the same one twice: combined with offsets [Å], else one by one."""
    images = [genuine()[item] if isinstance(item, int) else build(item) for item in items]
    note(f"{[str(item) for item in items]}, offsets {offsets}")
    calibration = {"energy": ENERGY, "semiangle": SEMIANGLE, "angular_sampling": SAMPLING}
    if offsets is not None or len(images) == 1:
        result, error = _call(estimate, images, offsets=offsets, **calibration)
        if error is None:
            _check_result(result)
            assert len({id(image) for image in images}) == len(images)  # never the same twice
    else:
        batch, error = _call(estimate_batch, images, **calibration)
        if error is None:
            assert len(batch) == len(images)
            for one in batch:
                _check_result(one)
    if error is None:
        assert all(isinstance(item, int) or item.kind not in NOT_RONCHIGRAMS for item in items)
    else:
        assert offsets is None or len(offsets) == len(images) or "offsets" in str(error)


# ------------------------------------------------------------------ the command


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _hostile(kind: str) -> st.SearchStrategy[str]:
    """A text argparse refuses or a number outside (or at the edge of) the valid range."""
    return st.one_of(st.sampled_from(HOSTILE_TEXT), numbers(kind).map(repr))


OFFSETS = st.lists(
    st.one_of(
        st.sampled_from(["0", "20", "-45", "1e7", "1e8", "nan", "inf", "", "x"]),
        st.floats(allow_nan=True).map(repr),
    ),
    min_size=1,
    max_size=5,
).map(",".join)


def _write(path: Path, image: np.ndarray) -> Path:
    """Write ``image`` as TIFF where the name asks for it and TIFF can hold it, else .npy."""
    if path.suffix == ".npy" or image.ndim not in (2, 3) or image.dtype.kind not in "biuf":
        path = path.with_suffix(".npy")
        np.save(path, image)
    else:
        tifffile.imwrite(path, image, photometric="minisblack")
    return path


@st.composite
def command_lines(draw):
    """Files to write (name -> Spec or a genuine index), and the argv after 'calibrate'."""
    count = draw(st.integers(1, 4))
    files: list[tuple[str, Spec | int | str]] = []
    for number in range(count):
        if files and draw(st.integers(0, 4)) == 0:  # the same file again, or a copy of it
            source = draw(st.sampled_from([name for name, _ in files]))
            if draw(st.booleans()):
                files.append((source, "same"))
            else:
                files.append((f"copy{number}{Path(source).suffix}", source))
            continue
        content = draw(st.one_of(st.integers(0, len(C10) - 1), GENUINE, specs()))
        suffix = draw(st.sampled_from([".npy", ".npy", ".tif"]))
        files.append((f"image{number}{suffix}", content))
    # Each part is right or left out, except at most two drawn to be hostile.
    hostile = draw(
        st.sets(
            st.sampled_from(["--energy", "--semiangle", "--angular-sampling", "--offsets",
                             "--c30-sign", "output"]),
            max_size=2,
        )
    )  # fmt: skip
    argv = []
    for flag, kind, right in (
        ("--energy", "energy", ENERGY),
        ("--semiangle", "semiangle", SEMIANGLE),
        ("--angular-sampling", "angular_sampling", SAMPLING),
    ):
        if flag in hostile:
            argv.append(f"{flag}={draw(_hostile(kind))}")
        elif draw(st.integers(0, 5)) < 5:  # mostly the right value: .npy files hold none
            argv.append(f"{flag}={right!r}")
    if "--offsets" in hostile:
        argv.append(f"--offsets={draw(OFFSETS)}")
    elif draw(st.booleans()):  # one offset per file, 20 nm apart as the genuine pair
        argv.append("--offsets=" + ",".join(["0", "20", "-45", "35"][:count]))
    if "--c30-sign" in hostile:
        argv.append(f"--c30-sign={draw(st.sampled_from(['0', 'plus', '', '++']))}")
    elif draw(st.booleans()):
        argv.append(f"--c30-sign={draw(st.sampled_from(['+', '-']))}")
    bad = ["existing", "input", "inside-a-file", "folder"]
    output = draw(st.sampled_from(bad if "output" in hostile else [None, "new"]))
    overwrite = draw(st.booleans())
    return files, argv, output, overwrite


@given(case=command_lines())
def test_the_command_keeps_its_contract(case, capsys):
    files, argv, output, overwrite = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names, kinds, written = [], set(), {}
        for name, content in files:
            path = folder / name
            if content == "same":
                path = written[name]
            elif isinstance(content, str):
                path = path.with_suffix(written[content].suffix)
                shutil.copy(written[content], path)
            elif isinstance(content, int):
                path = _write(path, genuine()[content])
                kinds.add("genuine")
            else:
                path = _write(path, build(content))
                kinds.add(content.kind)
            written[name] = path
            names.append(str(path))
        (folder / "notes.txt").write_text("the user's file")
        (folder / "results").mkdir()
        target = {
            None: None,
            "new": folder / "estimate.json",
            "existing": folder / "notes.txt",
            "input": Path(names[0]),
            "inside-a-file": folder / "notes.txt" / "estimate.json",
            "folder": folder / "results",
        }[output]
        extra = ["-o", str(target)] if target is not None else []
        extra += ["--overwrite"] if overwrite else []
        before = _digest(folder)
        command = ["calibrate", *names, *argv, *extra, "--json", "--no-progress"]
        note(f"{files} -> {command}")
        start = time.perf_counter()
        try:
            status = cli.main(command)
        except SystemExit as exit_:  # argparse refusing a value
            status = exit_.code
        assert time.perf_counter() - start < TIME_LIMIT
        captured = capsys.readouterr()
        event(f"exit {status}")
        assert status in (0, 2), captured.err
        after = _digest(folder)
        for name in names:  # no input is ever changed
            key = str(Path(name).relative_to(folder))
            assert after.get(key) == before[key], f"{name} changed"
        if status == 2:
            if "usage:" not in captured.err:
                lines = [line for line in captured.err.splitlines() if line.strip()]
                assert len(lines) == 1, captured.err
                assert lines[0].startswith("atomlens calibrate: error: "), captured.err
            assert after == before, "a failed run changed or left files"
            return
        assert not kinds & NOT_RONCHIGRAMS, f"{kinds} accepted: {captured.out}"
        assert output in (None, "new") or (output == "existing" and overwrite)
        changed = {k for k in after if after[k] != before.get(k)}
        assert changed <= ({str(target.relative_to(folder))} if target else set()), changed


# ------------------------------------------------------------------ regression examples


@pytest.mark.parametrize("which", range(len(C10)))
def test_the_genuine_ronchigrams_are_accepted(which):
    result = estimate(
        genuine()[which], energy=ENERGY, semiangle=SEMIANGLE, angular_sampling=SAMPLING
    )
    _check_result(result)
