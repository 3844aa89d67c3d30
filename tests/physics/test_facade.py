"""The lazy facade ``atomlens.physics``, its type stub and the subpackages' exports."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import atomlens.physics as physics

STUB = Path(physics.__file__).with_suffix(".pyi")
SUBPACKAGES = ["optics", "potentials", "structures", "imaging", "detectors", "dynamics"]


def _stub() -> tuple[dict[str, str], list[str]]:
    """Names the stub imports, each with its absolute module, and the stub's ``__all__``."""
    tree = ast.parse(STUB.read_text())
    imported, listed = {}, []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = node.module if node.level == 0 else f"atomlens.physics.{node.module}"
            for alias in node.names:
                assert alias.asname == alias.name, f"{alias.name} is not re-exported as itself"
                imported[alias.name] = module
        elif isinstance(node, ast.Assign) and node.targets[0].id == "__all__":
            listed = ast.literal_eval(node.value)
    return imported, listed


def test_every_public_name_resolves_from_its_module():
    for name in physics.__all__:
        module = importlib.import_module(physics._WHERE[name])
        assert getattr(physics, name) is getattr(module, name), name


def test_lazy_map_all_and_stub_list_the_same_names():
    imported, listed = _stub()
    assert set(physics._WHERE) == set(physics.__all__)
    assert imported == physics._WHERE
    assert listed == physics.__all__
    assert sorted(dir(physics)) == sorted(physics.__all__)


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        physics.not_a_name  # noqa: B018
    assert not hasattr(physics, "energy")  # moved to atomlens.core


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackages_export_their_names(package):
    module = importlib.import_module(f"atomlens.physics.{package}")
    assert module.__doc__ and "Modules\n-------" in module.__doc__
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), f"atomlens.physics.{package}.{name}"


def test_importing_physics_io_or_core_does_not_import_torch():
    code = (
        "import sys, atomlens.physics, atomlens.io, atomlens.core\n"
        "heavy = [m for m in ('torch', 'atomlens.physics.optics') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
