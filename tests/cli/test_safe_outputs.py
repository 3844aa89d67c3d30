"""Nothing a user has is lost, nothing half-written is left by a failed or interrupted run."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import atomlens.cli.images as images_command
import atomlens.cli.ronchigram as ronchigram_command
import atomlens.physics.imaging.ronchigram
from atomlens.cli import main
from atomlens.io import write_ronchigram_dataset
from atomlens.io._atomic import atomic_outputs

RONCHIGRAM = [
    "simulate",
    "ronchigram",
    "--semiangle",
    "20",
    "--angular-sampling",
    "0.6",
    "--size",
    "32",
    "--specimen",
    "phase-grating",
]
FAILURES = [(OSError("disk full"), 2), (KeyboardInterrupt(), 130)]
STEM = [
    "simulate",
    "stem",
    "--size",
    "32",
    "--pixel-size",
    "0.25",
    "--thickness",
    "4",
]
IMAGE_FILES = ["image.tif", "clean.tif", "atoms.csv", "parameters.json"]


def tree(folder):
    """Every path under ``folder`` (hidden temporaries included) with a file's bytes."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def old_outputs(folder, names):
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_bytes(f"old {name}".encode())
    return tree(folder)


def fail_with(error):
    """A stand-in writer that raises ``error``; ``fail.calls`` counts the calls."""

    def fail(*args, **kwargs):
        fail.calls += 1
        raise error

    fail.calls = 0
    return fail


# ---------------------------------------------------------------------- atomic_outputs


def test_atomic_outputs_moves_every_file_into_place(tmp_path):
    targets = [tmp_path / "a.txt", tmp_path / "sub" / "b.txt"]
    with atomic_outputs(targets, create_folders=True) as out:
        for target in targets:
            out.path(target).write_text(target.name)
            assert not target.exists()  # nothing is in place before the block ends
    assert tree(tmp_path) == {"a.txt": b"a.txt", "sub": None, "sub/b.txt": b"b.txt"}


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failure_part_way_keeps_every_old_file(tmp_path, error):
    before = old_outputs(tmp_path, ["a.txt", "b.txt"])
    with pytest.raises(type(error)):
        with atomic_outputs([tmp_path / "a.txt", tmp_path / "b.txt"], overwrite=True) as out:
            out.path(tmp_path / "a.txt").write_text("new a")
            raise error
    assert tree(tmp_path) == before


def test_a_failed_move_is_rolled_back(tmp_path, monkeypatch):
    before = old_outputs(tmp_path, ["a.txt", "b.txt"])
    replace = os.replace

    def replace_but_not_b(source, target):
        if str(target).endswith("b.txt"):
            raise KeyboardInterrupt  # Ctrl-C between the two moves
        replace(source, target)

    monkeypatch.setattr(os, "replace", replace_but_not_b)
    with pytest.raises(KeyboardInterrupt):
        with atomic_outputs([tmp_path / "a.txt", tmp_path / "b.txt"], overwrite=True) as out:
            for name in ("a.txt", "b.txt"):
                out.path(tmp_path / name).write_text(f"new {name}")
    monkeypatch.undo()
    assert tree(tmp_path) == before


def test_refusals_come_before_any_work(tmp_path):
    (tmp_path / "a.json").mkdir()
    (tmp_path / "a.json" / "mine.txt").write_text("mine")
    (tmp_path / "b.txt").write_text("old")
    before = tree(tmp_path)
    with pytest.raises(IsADirectoryError):
        with atomic_outputs([tmp_path / "b.txt", tmp_path / "a.json"], overwrite=True):
            raise AssertionError("not reached")
    with pytest.raises(FileExistsError):
        with atomic_outputs([tmp_path / "b.txt"]):
            raise AssertionError("not reached")
    with pytest.raises(FileNotFoundError):
        with atomic_outputs([tmp_path / "missing" / "c.txt"]):
            raise AssertionError("not reached")
    assert tree(tmp_path) == before


def test_an_output_never_written_fails_the_block(tmp_path):
    with pytest.raises(FileNotFoundError, match="not written"):
        with atomic_outputs([tmp_path / "a.txt", tmp_path / "b.txt"]) as out:
            out.path(tmp_path / "a.txt").write_text("a")
    assert tree(tmp_path) == {}


def test_created_folders_go_again_but_never_a_users_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    before = tree(tmp_path)
    for target in (tmp_path / "new" / "deeper" / "a.txt", tmp_path / "mine" / "a.txt"):
        with pytest.raises(ValueError, match="boom"):
            with atomic_outputs([target], create_folders=True) as out:
                out.path(target).write_text("a")
                raise ValueError("boom")
        assert tree(tmp_path) == before


def test_an_existing_files_permissions_are_kept(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o640)
    with atomic_outputs([target], overwrite=True) as out:
        out.path(target).write_text("new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640


def test_an_interrupted_dataset_leaves_no_file(tmp_path):
    path = tmp_path / "x.h5"
    setup = {"energy_eV": 200e3, "semiangle_mrad": 20.0, "angular_sampling_mrad_per_px": 0.6}

    def blocks():
        yield np.zeros((1, 8, 8), np.float32)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_ronchigram_dataset(path, blocks(), [{"C10": 1.0}] * 2, setup)
    assert tree(tmp_path) == {}


# ---------------------------------------------------------------------- simulate ronchigram


def test_a_sidecar_path_that_is_a_folder_is_refused_before_the_work(tmp_path, capsys):
    old_outputs(tmp_path, ["r.tif"])
    (tmp_path / "r.json").mkdir()
    (tmp_path / "r.json" / "mine.txt").write_text("mine")
    before = tree(tmp_path)
    assert main([*RONCHIGRAM, "-o", str(tmp_path / "r.tif"), "--overwrite"]) == 2
    assert "r.json: a folder" in capsys.readouterr().err
    assert tree(tmp_path) == before


@pytest.mark.parametrize(("error", "status"), FAILURES)
def test_a_failed_sidecar_keeps_the_old_image_and_sidecar(tmp_path, monkeypatch, error, status):
    import atomlens.io

    before = old_outputs(tmp_path, ["r.tif", "r.json"])
    failing = fail_with(error)
    monkeypatch.setattr(atomlens.io, "write_ronchigram_sidecar", failing)
    assert main([*RONCHIGRAM, "-o", str(tmp_path / "r.tif"), "--overwrite"]) == status
    assert failing.calls == 1 and tree(tmp_path) == before


def test_a_ronchigram_and_its_sidecar_replace_the_old_pair(tmp_path):
    old_outputs(tmp_path, ["r.tif", "r.json"])
    assert main([*RONCHIGRAM, "-o", str(tmp_path / "r.tif"), "--overwrite"]) == 0
    assert sorted(tree(tmp_path)) == ["r.json", "r.tif"]
    assert not (tmp_path / "r.tif").read_bytes().startswith(b"old")


@pytest.mark.parametrize("overwrite", [False, True])
def test_ctrl_c_during_a_dataset_leaves_no_file(tmp_path, monkeypatch, overwrite):
    before = old_outputs(tmp_path, ["x.h5"]) if overwrite else {}
    calls = []

    def simulate(setup, aberrations, *args, **kwargs):
        calls.append(len(aberrations))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return np.zeros((len(aberrations), *setup.size), np.float32)

    # the command imports the simulator when it runs (it starts without torch)
    monkeypatch.setattr(atomlens.physics.imaging.ronchigram, "simulate_ronchigrams", simulate)
    monkeypatch.setattr(ronchigram_command, "DATASET_CHUNK_BYTES", 1)  # one image per block
    args = [*RONCHIGRAM, "--count", "3", "--range", "C10=-50:50", "--batch-size", "1"]
    args += ["--no-progress", "-o", str(tmp_path / "x.h5")] + ["--overwrite"] * overwrite
    assert main(args) == 130
    assert calls == [1, 1] and tree(tmp_path) == before


# ---------------------------------------------------------------------- simulate stem / series


def test_a_failed_run_leaves_no_new_folder(tmp_path, monkeypatch, capsys):
    import atomlens.physics.imaging.images

    failing = fail_with(ValueError("no image"))
    monkeypatch.setattr(atomlens.physics.imaging.images, "simulate_image", failing)
    assert main([*STEM, "-o", str(tmp_path / "new" / "run")]) == 2
    assert failing.calls == 1 and "no image" in capsys.readouterr().err
    assert tree(tmp_path) == {}


@pytest.mark.parametrize(("error", "status"), FAILURES)
def test_a_failed_write_keeps_the_users_folder_and_old_outputs(
    tmp_path, monkeypatch, error, status
):
    import atomlens.io

    folder = tmp_path / "run"
    before = old_outputs(folder, [*IMAGE_FILES, "notes.txt"])
    failing = fail_with(error)
    monkeypatch.setattr(atomlens.io, "write_json", failing)  # the last of the four
    assert main([*STEM, "-o", str(folder), "--overwrite"]) == status
    assert failing.calls == 1 and tree(folder) == before


def test_an_interrupted_write_into_a_new_folder_removes_it(tmp_path, monkeypatch):
    import atomlens.io

    failing = fail_with(KeyboardInterrupt())
    monkeypatch.setattr(atomlens.io, "write_csv", failing)
    assert main([*STEM, "-o", str(tmp_path / "run")]) == 130
    assert failing.calls == 1 and tree(tmp_path) == {}


def test_an_image_run_writes_its_four_files(tmp_path):
    folder = tmp_path / "run"
    assert main([*STEM, "-o", str(folder)]) == 0
    assert sorted(tree(folder)) == sorted(IMAGE_FILES)


def test_a_series_write_failure_keeps_the_old_series(tmp_path, monkeypatch):
    import atomlens.io

    folder = tmp_path / "series"
    before = old_outputs(folder, images_command.SERIES_OUTPUTS)
    failing = fail_with(OSError("disk full"))
    monkeypatch.setattr(atomlens.io, "write_json", failing)
    args = ["simulate", "series", "--size", "32", "--frames", "2"]
    assert main([*args, "-o", str(folder), "--overwrite"]) == 2
    assert failing.calls == 1 and tree(folder) == before


def test_output_file_that_is_a_folder_is_refused_in_an_output_folder(tmp_path, capsys):
    folder = tmp_path / "run"
    (folder / "atoms.csv").mkdir(parents=True)
    before = tree(tmp_path)
    assert main([*STEM, "-o", str(folder), "--overwrite"]) == 2
    assert "atoms.csv: a folder" in capsys.readouterr().err
    assert tree(tmp_path) == before


# ---------------------------------------------------------------------- a real Ctrl-C

CHILD = textwrap.dedent(
    """
    import signal
    import sys
    from atomlens.cli import build_parser, main

    # a parent that ignores SIGINT (a background job of a non-interactive shell) passes that
    # on; Ctrl-C as a shell delivers it is what is tested
    signal.signal(signal.SIGINT, signal.default_int_handler)
    build_parser()  # the imports, before the signal may come
    print("ready", flush=True)
    sys.exit(main(sys.argv[1:]))
    """
)


def test_sigint_stops_a_dataset_run_with_130_and_no_file(tmp_path):
    args = [*RONCHIGRAM, "--count", "100000", "--range", "C10=-500:500", "--no-progress"]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args, "-o", "x.h5"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # a moment into the simulation (100000 images take minutes)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert tree(tmp_path) == {}
