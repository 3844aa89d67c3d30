"""Property-based tests of ``atomlens train calibrate generate|fit|recalibrate``.

Hostile values for every size, budget and device flag, and hostile paths (an existing file
without ``--overwrite``, an output that is an input, an output inside a file). Contract:

- exit 0 with finite outputs, or exit 2 with one line ``atomlens train: error: ...`` (or an
  argparse usage message); a failed run leaves every file as it was and no new file;
- no run writes over an input or over a file the user had without ``--overwrite``;
- one example takes under 20 s. Valid values are drawn only where they are cheap (1-2
  Ronchigrams, 1-3 steps, a network of width 1-4): a valid but large value is slow, not wrong.

The bank, its validation chunk and a trained model are made once per module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from atomlens import cli

#: Longest time one example may take [s].
TIME_LIMIT = 20.0

BAD_TEXT = ["", "abc", "1,5", "0x10", "nan", "inf", "-inf", "1e999", "1e300", "-1e300"]
BAD_COUNTS = [*BAD_TEXT, "0", "-1", "-0", "1.5", str(2**63), str(2**31), str(10**7 + 1), "1e7"]
BAD_FRACTIONS = [*BAD_TEXT, "0", "-0", "-1", "1", "1.0000001", "2", "1e-320"]
DEVICES = ["cpu", "auto", "cuda", "cuda:99", "cuda:-1", "mps", "meta", "", "gpu", "cpu:0", "xla"]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _folders(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_dir()}


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    note(f"atomlens {' '.join(argv)}")
    start = time.perf_counter()
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse refusing a value
        status = exit_.code
    seconds = time.perf_counter() - start
    assert seconds < TIME_LIMIT, f"{seconds:.1f} s: {argv}"
    captured = capsys.readouterr()
    event(f"exit {status}")
    return status, captured.out, captured.err


def _check_failure(status: int, err: str, folder: Path, before: dict, folders: set) -> None:
    assert status in (0, 2), err
    if status == 2:
        if "usage:" not in err:
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("atomlens train: error: "), err
        assert _digest(folder) == before, "a failed run changed or left files"
        assert _folders(folder) == folders, "a failed run left folders"


def _train(*words: str) -> None:
    assert cli.main(["train", "calibrate", *words, "--threads", "1", "--device", "cpu"]) == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A bank of 2 Ronchigrams, a validation bank of 2, and a model trained for one step."""
    folder = tmp_path_factory.mktemp("train")
    bank, model = folder / "bank", folder / "model"
    _train("generate", "--bank", str(bank), "--chunks", "1", "--chunk-size", "2")
    _train("generate", "--bank", str(bank / "validation"), "--seed", "500000", "--chunks", "1",
           "--chunk-size", "2")  # fmt: skip
    _train("fit", "--bank", str(bank), "-o", str(model), "--steps", "1", "--width", "2",
           "--batch", "2")  # fmt: skip
    return bank, model


@st.composite
def flags(draw, table: dict[str, tuple[st.SearchStrategy[str], st.SearchStrategy[str]]]):
    """argv words for ``table`` (flag -> (cheap valid values, values to refuse)): each flag
    left out or valid, and at most two of them (often none) with a value to refuse."""
    names = sorted(table)
    hostile = draw(st.sets(st.sampled_from(names), max_size=2))
    words = []
    for name in names:
        valid, bad = table[name]
        if name in hostile:
            words.append(f"{name}={draw(bad)}")
        elif draw(st.booleans()):
            words.append(f"{name}={draw(valid)}")
    return words


def _valid(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


def _bad(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from([*BAD_TEXT, *values])


COMMON = {
    "--device": (_valid("cpu", "auto", "cpu:0"), _bad(*DEVICES[2:])),
    "--threads": (_valid("1", "2"), st.sampled_from(BAD_COUNTS)),
}
GENERATE = COMMON | {
    "--chunks": (_valid("1", "2"), st.sampled_from(BAD_COUNTS)),
    "--chunk-size": (_valid("1"), st.sampled_from(BAD_COUNTS)),
    "--seed": (st.integers(0, 2**40).map(str), _bad("-1", "1.5", str(2**63), str(2**70))),
    "--prior": (_valid("broad", "corrected"), _bad("wide", "BROAD")),
}
FIT = COMMON | {
    "--minutes": (_valid("0.002", "0.05"), _bad("0", "-0", "-1", "1e7", "1e6.5")),
    "--batch": (_valid("1", "2", "4"), st.sampled_from([*BAD_COUNTS, "4097", str(2**40)])),
    "--width": (_valid("1", "2", "4"), st.sampled_from([*BAD_COUNTS, "257", str(2**40)])),
    "--lr": (_valid("1e-3", "0.5", "1"), st.sampled_from([*BAD_FRACTIONS, "1e3"])),
    "--ema": (_valid("0", "0.5", "0.998"), st.sampled_from(BAD_FRACTIONS)),
    "--seed": (st.integers(0, 2**40).map(str), _bad("-1", "1.5", str(2**63), str(2**70))),
    "--log-every": (_valid("1", "2", "1000"), st.sampled_from(BAD_COUNTS)),
    "--validate-every": (_valid("1", "2", "1000"), st.sampled_from(BAD_COUNTS)),
    "--refresh-every": (_valid("1", "2", "1000"), st.sampled_from(BAD_COUNTS)),
    "--checkpoint-every": (_valid("1", "2", "1000"), st.sampled_from(BAD_COUNTS)),
}


# ------------------------------------------------------------------ generate


@given(
    argv=flags(GENERATE),
    where=st.sampled_from(["new", "new", "nested", "existing-bank", "a-file", "inside-a-file"]),
)
def test_generate_keeps_its_contract(argv, where, trained, capsys):
    bank, _ = trained
    if not any(word.startswith("--chunks=") for word in argv):
        argv.append("--chunks=1")  # the default (100 chunks of 512) is not cheap
    if not any(word.startswith("--chunk-size=") for word in argv):
        argv.append("--chunk-size=1")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "notes.txt").write_text("the user's file")
        target = {
            "new": folder / "bank",
            "nested": folder / "a" / "b" / "bank",
            "existing-bank": folder / "old",
            "a-file": folder / "notes.txt",
            "inside-a-file": folder / "notes.txt" / "bank",
        }[where]
        if where == "existing-bank":
            shutil.copytree(bank, target)
        before, folders = _digest(folder), _folders(folder)
        status, _out, err = _run(
            ["train", "calibrate", "generate", "--bank", str(target), *argv], capsys
        )
        _check_failure(status, err, folder, before, folders)
        if status == 0:
            assert where in ("new", "nested", "existing-bank")
            after = _digest(folder)
            assert all(after[name] == digest for name, digest in before.items())
            for chunk in sorted(target.glob("chunk_*.npz")):
                with np.load(chunk) as data:
                    grids, truth = data["grids"], data["coefficients"]
                assert grids.shape[1:] == (96, 96) and truth.shape == (len(grids), 8)
                assert np.isfinite(grids).all() and np.isfinite(truth).all()


# ------------------------------------------------------------------ fit


@st.composite
def fit_cases(draw):
    """The flags of a fit run whose valid values are all cheap, and where its files go."""
    steps = draw(st.one_of(_valid("1", "2", "3"), _valid("1"), st.sampled_from(BAD_COUNTS)))
    argv = [f"--steps={steps}", *draw(flags(FIT))]  # the default 60 minutes is not cheap
    if not any(word.startswith("--width=") for word in argv):
        argv.append("--width=2")  # the default 16 is cheap but not tiny
    output = draw(st.sampled_from(["new", "new", "existing", "bank", "card", "inside-a-file"]))
    checkpoint = draw(
        st.sampled_from([None, "new", "existing", "card", "output", "chunk", "inside-a-file"])
    )
    card = draw(st.sampled_from([None, "card", "missing", "folder"]))
    resume, overwrite = draw(st.booleans()), draw(st.booleans())
    return argv, output, checkpoint, card, resume, overwrite


@given(case=fit_cases())
def test_fit_keeps_its_contract(case, trained, capsys):
    argv, output, checkpoint, card, resume, overwrite = case
    bank, _ = trained
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(bank, folder / "bank")
        (folder / "card.md").write_text("# my model\n")
        (folder / "notes.txt").write_text("the user's file")
        (folder / "old-model").mkdir()
        (folder / "old-model" / "config.json").write_text("{}")
        (folder / "a-folder").mkdir()
        paths = {
            "new": folder / "model",
            "existing": folder / "old-model",
            "bank": folder / "bank",
            "card": folder / "card.md",
            "inside-a-file": folder / "notes.txt" / "model",
        }
        target = paths[output]
        words = ["--bank", str(folder / "bank"), "-o", str(target)]
        checkpoints = {
            "new": folder / "run.pt",
            "existing": folder / "notes.txt",
            "card": folder / "card.md",
            "output": target,
            "chunk": folder / "bank" / "chunk_000000.npz",
            "inside-a-file": folder / "notes.txt" / "run.pt",
        }
        cards = {
            "card": folder / "card.md",
            "missing": folder / "missing.md",
            "folder": folder / "a-folder",
        }
        if checkpoint is not None:
            words += ["--checkpoint", str(checkpoints[checkpoint])]
        if card is not None:
            words += ["--card", str(cards[card])]
        words += ["--resume"] if resume else []
        words += ["--overwrite"] if overwrite else []
        before, folders = _digest(folder), _folders(folder)
        status, _out, err = _run(["train", "calibrate", "fit", *words, *argv], capsys)
        _check_failure(status, err, folder, before, folders)
        if status != 0:
            return
        after = _digest(folder)
        inputs = [k for k in before if k.startswith("bank") or (card == "card" and k == "card.md")]
        assert all(after.get(k) == before[k] for k in inputs), "an input changed"
        assert output == "new" or (output == "existing" and overwrite)
        written = {str(target.relative_to(folder))}
        if checkpoint is not None:  # a user's file only with --overwrite, never an input
            path = str(checkpoints[checkpoint].relative_to(folder))
            assert path not in before or overwrite or resume
            written.add(path)
        changed = {k for k in after if after[k] != before.get(k)}
        assert all(any(k == w or k.startswith(w + "/") for w in written) for k in changed)
        config = json.loads((target / "config.json").read_text())
        assert np.isfinite(config["sigma_factors"]).all()
        assert (target / "model.safetensors").is_file()


# ------------------------------------------------------------------ recalibrate


@given(
    model=st.sampled_from(
        ["model", "model", "bank", "missing", "a-file", "empty", "broken-config"]
    ),
    validation=st.sampled_from(
        ["validation", "validation", "bank", "missing", "a-file", "empty", "model"]
    ),
    argv=flags(COMMON),
)
def test_recalibrate_keeps_its_contract(model, validation, argv, trained, capsys):
    bank, trained_model = trained
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(bank, folder / "bank")
        shutil.copytree(trained_model, folder / "model")
        (folder / "notes.txt").write_text("the user's file")
        (folder / "empty").mkdir()
        shutil.copytree(trained_model, folder / "broken-config")
        (folder / "broken-config" / "config.json").write_text('{"task": "ronchigram-aber')
        paths = {
            "model": folder / "model",
            "bank": folder / "bank",
            "validation": folder / "bank" / "validation",
            "missing": folder / "missing",
            "a-file": folder / "notes.txt",
            "empty": folder / "empty",
            "broken-config": folder / "broken-config",
        }
        argv = ["--model", str(paths[model]), "--bank", str(paths[validation]), *argv]
        before, folders = _digest(folder), _folders(folder)
        status, out, err = _run(["train", "calibrate", "recalibrate", *argv], capsys)
        _check_failure(status, err, folder, before, folders)
        if status == 0:
            assert model == "model"
            after = _digest(folder)
            changed = {k for k in after if after[k] != before.get(k)}
            assert changed <= {"model/config.json"}, changed
            summary = json.loads(out)
            assert all(np.isfinite(v) for v in summary.values())
