"""Find, load and save model folders (safetensors weights + config.json + README.md card)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from atomlens.io import atomic_write

WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
ENVIRONMENT = "ATOMLENS_MODELS"

#: Architecture name -> factory taking the config's "arguments".
ARCHITECTURES: dict[str, Callable[..., torch.nn.Module]] = {}


class ModelNotFoundError(LookupError):
    """No model folder of that name in ``ATOMLENS_MODELS`` or the package."""


def register_architecture(name: str, factory: Callable[..., torch.nn.Module]) -> None:
    """Make an architecture loadable by name (e.g. from a plug-in)."""
    ARCHITECTURES[name] = factory


def _register_builtin() -> None:
    from atomlens import nn

    for name in nn.__all__:
        obj = getattr(nn, name)
        if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
            ARCHITECTURES.setdefault(name, obj)


def _search_path() -> list[Path]:
    folders = [Path(p) for p in os.environ.get(ENVIRONMENT, "").split(os.pathsep) if p]
    folders.append(Path(str(resources.files("atomlens.zoo").joinpath("models"))))
    return folders


def available_models() -> dict[str, Path]:
    """Model names and their folders; user folders shadow the shipped ones."""
    found: dict[str, Path] = {}
    for folder in _search_path():
        if folder.is_dir():
            for child in sorted(folder.iterdir()):
                if (child / WEIGHTS).is_file() and (child / CONFIG).is_file():
                    found.setdefault(child.name, child)
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(
    name_or_folder: str | Path, *, device: str | None = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a model in eval mode with its config.

    Parameters
    ----------
    name_or_folder : str or Path
        A model name (see :func:`available_models`) or a model folder.

    Raises
    ------
    ModelNotFoundError
        Unknown name (the message lists the available ones).
    ValueError
        Corrupt weights (SHA-256 mismatch) or an unknown architecture.
    """
    folder = Path(name_or_folder)
    if not (folder / CONFIG).is_file():
        models = available_models()
        if str(name_or_folder) not in models:
            known = ", ".join(models) or "none"
            raise ModelNotFoundError(
                f"No model {name_or_folder!r}; available: {known}. Set {ENVIRONMENT} to a folder "
                "of your own trained models to add some."
            )
        folder = models[str(name_or_folder)]
    config = json.loads((folder / CONFIG).read_text())
    weights = folder / WEIGHTS
    if config.get("sha256") and _sha256(weights) != config["sha256"]:
        raise ValueError(
            f"{weights} does not match the SHA-256 in its config: corrupt or replaced."
        )
    _register_builtin()
    architecture = config.get("architecture")
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"{folder} needs architecture {architecture!r}, which atomlens does not know; "
            f"known: {', '.join(sorted(ARCHITECTURES))}."
        )
    model = ARCHITECTURES[architecture](**config.get("arguments", {}))
    model.load_state_dict(load_file(weights, device="cpu"))
    return model.to(device).eval(), config


def save_model(
    model: torch.nn.Module,
    folder: str | Path,
    *,
    arguments: dict[str, Any],
    card: str,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model folder: weights, config (architecture, arguments, SHA-256, extra) and card.

    Parameters
    ----------
    model : torch.nn.Module
        Its class name is the architecture name (register others with ``register_architecture``).
    folder : str or Path
    arguments : dict
        Constructor arguments that rebuild the model.
    card : str
        The model card (Markdown): training data, command, measured metrics.
    extra : dict, optional
        More JSON-serialisable configuration (input normalisation, output names and units...).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = atomic_write(folder / WEIGHTS, lambda tmp: save_file(state, tmp), overwrite)
    config = {
        "architecture": type(model).__name__,
        "arguments": arguments,
        "sha256": _sha256(weights),
        **(extra or {}),
    }
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(folder / CONFIG, lambda tmp: tmp.write_text(text), overwrite)
    atomic_write(folder / CARD, lambda tmp: tmp.write_text(card), overwrite)
    return folder
