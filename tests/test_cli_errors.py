"""The command line reports every failure in one line: expected ones with exit 2, unexpected ones
with exit 1 and the path of a full report, never a bare traceback."""

from __future__ import annotations

import pytest

from atomlens import cli


def _failing(error: BaseException):
    def run(args):
        raise error

    return run


@pytest.fixture
def info_raises(monkeypatch):
    """Make ``atomlens info`` raise the given exception."""

    def install(error: BaseException) -> None:
        original = cli.build_parser

        def build():
            parser = original()
            commands = next(a for a in parser._actions if a.dest == "command")
            commands.choices["info"].set_defaults(run=_failing(error))
            return parser

        monkeypatch.setattr(cli, "build_parser", build)

    return install


def test_an_unexpected_error_prints_one_line_and_writes_a_report(
    info_raises, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ATOMLENS_ERROR_DIR", str(tmp_path))
    info_raises(ZeroDivisionError("float division by zero"))
    assert cli.main(["info", "x.tif"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(
        "atomlens info: internal error (ZeroDivisionError: float division by zero)"
    )
    (report,) = tmp_path.glob("atomlens-error-*.txt")
    assert str(report) in err
    text = report.read_text()
    assert "command: atomlens info x.tif" in text and "Traceback" in text
    assert "ZeroDivisionError" in text


def test_two_failures_never_share_a_report(info_raises, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATOMLENS_ERROR_DIR", str(tmp_path))
    info_raises(RuntimeError("boom"))
    cli.main(["info", "a"])
    cli.main(["info", "b"])
    assert len(list(tmp_path.glob("atomlens-error-*.txt"))) == 2


def test_out_of_memory_is_one_line_with_exit_2(info_raises, capsys):
    info_raises(MemoryError())
    assert cli.main(["info", "x.tif"]) == 2
    assert capsys.readouterr().err.strip() == (
        "atomlens info: error: out of memory; reduce the sizes or counts asked for."
    )


def test_verbose_shows_the_traceback(info_raises):
    info_raises(ZeroDivisionError("x"))
    with pytest.raises(ZeroDivisionError):
        cli.main(["-v", "info", "x.tif"])


def test_library_errors_name_the_flag(capsys, tmp_path):
    status = cli.main(
        ["simulate", "ronchigram", "--energy", "1e300", "-o", str(tmp_path / "r.tif")]
    )
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == (
        "atomlens simulate: error: --energy (beam energy) must lie in [1000, 1e+07] eV, "
        "got 1e+300 eV."
    )
    assert not list(tmp_path.iterdir())


def test_sigterm_stops_like_ctrl_c_with_exit_143(monkeypatch, capsys):
    import signal

    original = cli.build_parser

    def build():
        parser = original()
        commands = next(a for a in parser._actions if a.dest == "command")
        commands.choices["info"].set_defaults(run=lambda args: signal.raise_signal(signal.SIGTERM))
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["info", "x.tif"]) == 143
    assert capsys.readouterr().err.strip() == "atomlens info: terminated"
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is only ours while we run


def test_ctrl_c_while_building_the_parser_exits_130(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["info", "x.tif"]) == 130
    assert capsys.readouterr().err.strip() == "atomlens: interrupted"


def test_a_dataset_that_would_not_fit_on_the_disk_is_refused_before_work(
    tmp_path, monkeypatch, capsys
):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**40, 2**40 - 2**20, 2**20))
    argv = ["simulate", "ronchigram", "--count", "100", "--size", "64", "--range", "C10=-5:5"]
    assert cli.main([*argv, "-o", str(tmp_path / "d.h5")]) == 2
    err = capsys.readouterr().err
    assert "would take 0.00153 GiB, more than the 0.000977 GiB free" in err
    assert not list(tmp_path.iterdir())


def test_a_dataset_count_beyond_its_range_is_refused(tmp_path, capsys):
    argv = ["simulate", "ronchigram", "--count", "1000000000", "--range", "C10=-5:5"]
    assert cli.main([*argv, "-o", str(tmp_path / "d.h5")]) == 2
    assert "--count (number of items) must lie in [1, 1e+07], got 1000000000" in (
        capsys.readouterr().err
    )


def test_a_failed_demo_leaves_no_folder_and_keeps_an_old_one_intact(tmp_path, monkeypatch):
    from atomlens.cli import demo

    def fail(folder, *, seed=0):
        raise ValueError("the HAADF example failed")

    monkeypatch.setattr(demo, "haadf_example", fail)
    monkeypatch.setattr(demo, "ronchigram_examples", lambda args, paths: None)
    assert cli.main(["demo", "--output", str(tmp_path / "new"), "--size", "112"]) == 2
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "haadf.png").write_bytes(b"old figure")
    assert cli.main(["demo", "--output", str(old), "--size", "112", "--overwrite"]) == 2
    assert [p.name for p in old.iterdir()] == ["haadf.png"]
    assert (old / "haadf.png").read_bytes() == b"old figure"


def test_demo_refuses_a_ronchigram_too_small_to_calibrate(tmp_path, capsys):
    assert cli.main(["demo", "--output", str(tmp_path / "d"), "--size", "48"]) == 2
    assert "--size must be at least 112 px" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
