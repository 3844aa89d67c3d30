"""Docstrings, comments and docs cite files and modules that exist.

Scans the source (``src/``), the benchmark scripts, ``docs/*.md`` and ``README.md`` for
repository-relative paths (``docs/...``, ``benchmarks/...``, ``tests/...``, ``src/...``,
``../shared/...``, ``<folder>/<name>.py``, bare ``<name>.py`` / ``<name>.md``) and for dotted
``atomlens.<module>[.<name>]`` references, and asserts that each one exists. CHANGELOG.md is
history and is not scanned.
"""

import importlib
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PACKAGE = ROOT / "src" / "atomlens"

SCANNED = sorted(
    [
        *PACKAGE.rglob("*.py"),
        *PACKAGE.rglob("*.pyi"),
        *(ROOT / "benchmarks").glob("*.py"),
        *(ROOT / "docs").glob("*.md"),
        ROOT / "README.md",
    ]
)

# ``docs/x.md``, ``../shared/data/real``, ``physics/imaging/stem.py``, ``test_probe.py``
PATH = re.compile(
    r"(?<![\w./-])"
    r"((?:\.\./shared|docs|benchmarks|tests|src)/[\w./{},*-]*[\w/}*]"
    r"|(?:[\w-]+/)*[\w-]+\.(?:py|pyi|md))"
    r"(?![\w/<(-])"
)
MODULE = re.compile(r"(?<![\w./])atomlens(?:\.[A-Za-z_]\w*)+(?![\w-])")  # not "atomlens.x-schema"

# Folders and files the user makes (command examples), not part of the repository.
USER_MADE = ("demo_output", "BANK", "MODEL", "EVAL", "OUT", "OLD")


def _expand(path: str) -> list[str]:
    """``a/b.{md,json}`` -> ``a/b.md``, ``a/b.json``."""
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    head, tail = path[: match.start()], path[match.end() :]
    return [e for option in match.group(1).split(",") for e in _expand(head + option + tail)]


@cache
def _basenames() -> frozenset[str]:
    folders = [ROOT / "src", ROOT / "tests", ROOT / "benchmarks", ROOT / "docs"]
    names = {p.name for folder in folders for p in folder.rglob("*") if p.is_file()}
    names |= {p.name for p in ROOT.iterdir()}
    if SHARED.is_dir():
        names |= {p.name for p in SHARED.glob("*.md")}
    return frozenset(names)


def _exists(path: str, source: Path) -> bool | None:
    """True or False; None when the path cannot be checked here."""
    if path.startswith(USER_MADE) or "*" in path:
        return None
    if path.startswith("../shared/"):
        return (ROOT / path).exists() if SHARED.is_dir() else None
    if "/" not in path:  # a bare file name: somewhere in the repository
        return path in _basenames()
    bases = [ROOT, PACKAGE, source.parent, *source.parents]
    return any((base / path).exists() for base in bases)


def _references(pattern: re.Pattern, text: str):
    for line_number, line in enumerate(text.splitlines(), 1):
        for match in pattern.finditer(line):
            yield line_number, match.group(1 if pattern.groups else 0)


def _name(source: Path) -> str:
    return str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source)


def _missing_paths(source: Path) -> list[str]:
    text = source.read_text(encoding="utf-8")
    missing = []
    for line_number, reference in _references(PATH, text):
        for path in _expand(reference.rstrip(".")):
            if _exists(path, source) is False:
                missing.append(f"{_name(source)}:{line_number}: {path}")
    return missing


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for stop in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:stop]))
        except ModuleNotFoundError:
            continue
        try:
            for name in parts[stop:]:
                target = getattr(target, name)
        except AttributeError:
            return False
        return True
    return False


def _missing_modules(source: Path) -> list[str]:
    text = source.read_text(encoding="utf-8")
    return [
        f"{_name(source)}:{line_number}: {dotted}"
        for line_number, dotted in _references(MODULE, text)
        if not _resolves(dotted)
    ]


@pytest.mark.parametrize("source", SCANNED, ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_files_exist(source):
    assert _missing_paths(source) == []


@pytest.mark.parametrize("source", SCANNED, ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_modules_exist(source):
    assert _missing_modules(source) == []


def test_the_scanner_finds_references(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "See docs/nowhere.md, benchmarks/results/x.{md,json} and ``atomlens.physics.nowhere``;\n"
        "docs/conventions.md, tests/physics/test_probe.py, test_probe.py and "
        "``atomlens.physics.Aberrations`` exist; run with --out BANK/chunk.npz.\n",
        encoding="utf-8",
    )
    missing = [m.split(": ")[1] for m in _missing_paths(page)]
    assert missing == ["docs/nowhere.md", "benchmarks/results/x.md", "benchmarks/results/x.json"]
    assert [m.split(": ")[1] for m in _missing_modules(page)] == ["atomlens.physics.nowhere"]
