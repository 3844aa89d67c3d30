"""The physics subpackages load lazily, and their lazy maps agree with their typed imports."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PHYSICS = Path(importlib.import_module("atomlens.physics").__file__).parent
SUBPACKAGES = sorted(p.parent.name for p in PHYSICS.glob("*/__init__.py"))


def _typed_and_lazy(name):
    tree = ast.parse((PHYSICS / name / "__init__.py").read_text())
    typed, lazy = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("atomlens.physics"):
            typed.update({alias.name: node.module for alias in node.names})
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "attach":
            mapping = ast.literal_eval(node.args[1])
            lazy.update({n: module for module, names in mapping.items() for n in names})
    return typed, lazy


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_public_name_is_mapped_typed_and_resolves(name):
    typed, lazy = _typed_and_lazy(name)
    package = importlib.import_module(f"atomlens.physics.{name}")
    assert typed == lazy and set(lazy) == set(package.__all__) == set(dir(package))
    for attribute in package.__all__:
        assert getattr(package, attribute) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        package.not_a_name  # noqa: B018


def test_a_light_module_does_not_pull_in_torch_pandas_or_scipy_signal():
    code = (
        "import sys\n"
        "from atomlens.physics.optics import Aberrations, NAMES\n"
        "from atomlens.physics.detectors import ShotNoise\n"
        "print(sorted(m for m in ('torch', 'pandas', 'scipy.signal') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
