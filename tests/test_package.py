"""The package's face: ``import atomlens`` is cheap and reaches every subpackage lazily."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import atomlens

STUB = Path(atomlens.__file__).with_suffix(".pyi")


def _modules_after(code: str) -> set[str]:
    """The names in sys.modules after running ``code`` in a fresh interpreter."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output.splitlines()[-1]))


def test_import_is_cheap():
    loaded = _modules_after("import atomlens")
    heavy = {"torch", "matplotlib", "scipy", "pandas", "abtem", "ase"}
    assert not heavy & loaded
    assert not {m for m in loaded if m.startswith("atomlens.")}


def test_the_command_line_starts_without_torch():
    # torch takes about 1.5 s to import; only the commands that simulate or run a network need
    # it, and they import it when they run
    assert "torch" not in _modules_after("import atomlens.cli")


def test_the_command_lines_default_specimen_is_amorphous_carbon():
    from atomlens.cli import build_parser
    from atomlens.cli.ronchigram import build_specimen
    from atomlens.physics.potentials import AMORPHOUS_CARBON_DENSITY

    args = build_parser().parse_args(["simulate", "ronchigram", "-o", "r.tif"])
    assert build_specimen(args).density == AMORPHOUS_CARBON_DENSITY
    args = build_parser().parse_args(["simulate", "ronchigram", "--density", "0.05", "-o", "r.tif"])
    assert build_specimen(args).density == 0.05


def test_subpackage_loads_on_first_use():
    loaded = _modules_after("import atomlens\natomlens.core.wavelength(200e3)")
    assert "atomlens.core" in loaded
    assert "atomlens.calibrate" not in loaded
    assert "torch" not in loaded


@pytest.mark.parametrize(
    ("subpackage", "name"),
    [
        ("calibrate", "estimate"),
        ("calibrate", "AberrationEstimate"),
        ("physics", "simulate_ronchigram"),
        ("io", "read"),
        ("data", "RonchigramSampler"),
        ("train", "fit_streaming"),
        ("zoo", "load_model"),
        ("nn", "ResNet18Regressor"),
        ("report", "save_figure"),
        ("core", "wavelength"),
    ],
)
def test_names_resolve(subpackage, name):
    module = getattr(atomlens, subpackage)
    assert module.__name__ == f"atomlens.{subpackage}"
    assert callable(getattr(module, name))


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        atomlens.nonexistent  # noqa: B018
    assert not hasattr(atomlens, "estimate")


def test_dir_lists_subpackages():
    assert set(atomlens.__all__) <= set(dir(atomlens))
    assert "__version__" in dir(atomlens)


def test_stub_matches_lazy_list():
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    imported = {
        alias.asname
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "atomlens"
        for alias in node.names
    }
    (stub_all,) = (
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "__all__"
    )
    assert imported == set(stub_all) == set(atomlens.__all__)
    subpackages = {p.parent.name for p in Path(atomlens.__file__).parent.glob("*/__init__.py")}
    assert set(atomlens.__all__) == subpackages - {"cli"}


def test_calibrate_exports_its_verb_result_and_loader_only():
    face = {"estimate", "estimate_batch", "combine", "AberrationEstimate", "load_estimator"}
    face |= {"measure", "MeasureOptions"}  # the physics-based measurement from several images
    face |= {"tune", "SimulatedMicroscope"}  # the closed tuning loop in simulation
    face |= {"estimate_vae_em"}  # VAE-EM from several images
    face |= {"measure_holograms", "HologramOptions"}  # a through-focus series as holograms
    preprocessing = {"ronchigram_input", "RonchigramInput", "find_bright_field_disc"}
    preprocessing |= {"canonical_grid", "CANONICAL_EXTENT", "CANONICAL_SIZE"}
    exported = set(atomlens.calibrate.__all__)
    assert face <= exported <= face | preprocessing
