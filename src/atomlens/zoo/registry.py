"""Find, load and save model folders (safetensors weights + config.json + README.md card)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from atomlens.core.validation import ModelNotFoundError
from atomlens.io import atomic_write

WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
LOG = "training_log.json"
ENVIRONMENT = "ATOMLENS_MODELS"

#: The most parameters a model config may ask for (4 GB in float32); the network is sized on
#: torch's "meta" device, which allocates nothing, before any real memory is used.
MAX_PARAMETERS = 10**9

#: Architecture name -> factory taking the config's "arguments".
ARCHITECTURES: dict[str, Callable[..., torch.nn.Module]] = {}


def register_architecture(name: str, factory: Callable[..., torch.nn.Module]) -> None:
    """Make an architecture loadable by name (e.g. from a plug-in)."""
    ARCHITECTURES[name] = factory


def _register_builtin() -> None:
    from atomlens import nn

    for name in nn.__all__:
        obj = getattr(nn, name)
        if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
            ARCHITECTURES.setdefault(name, obj)


def _shipped_folder() -> Path:
    return Path(str(resources.files("atomlens.zoo").joinpath("models")))


def _search_path() -> list[Path]:
    folders = [Path(p) for p in os.environ.get(ENVIRONMENT, "").split(os.pathsep) if p]
    folders.append(_shipped_folder())
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


def _shadowed(name: str, folder: Path) -> bool:
    """True when ``folder`` is a user model that hides the shipped model of the same name."""
    shipped = _shipped_folder() / name
    return (shipped / CONFIG).is_file() and folder.resolve() != shipped.resolve()


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{folder / CONFIG} is not a readable JSON model config: {error}"
        ) from None
    if not isinstance(config, dict):
        raise ValueError(f"{folder / CONFIG} must hold a JSON object, got {type(config).__name__}.")
    if not isinstance(config.get("sha256"), str):
        raise ValueError(
            f"{folder / CONFIG} has no SHA-256 of its weights: atomlens loads only verified "
            "weights. Write the folder with atomlens.zoo.save_model (or atomlens train), which "
            "records it."
        )
    if not isinstance(config.get("arguments", {}), dict):
        raise ValueError(f"{folder / CONFIG}: 'arguments' must be a JSON object.")
    return config


def _build(
    factory: Callable[..., torch.nn.Module], arguments: dict, folder: Path
) -> torch.nn.Module:
    """The architecture with these arguments, sized on the meta device before it is allocated."""
    try:
        with torch.device("meta"):
            shape_only = factory(**arguments)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{folder / CONFIG}: arguments {arguments} do not build: {error}"
        ) from None
    count = sum(p.numel() for p in shape_only.parameters())
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"{folder / CONFIG} asks for a network of {count:.3g} parameters, more than the "
            f"limit of {MAX_PARAMETERS:.0e}; the config is damaged or not meant for atomlens."
        )
    return factory(**arguments)


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
        A config without the SHA-256 of its weights, weights that do not match it, an unknown
        architecture, arguments that do not build or ask for more than :data:`MAX_PARAMETERS`,
        or weights that do not fit the architecture.

    Warns
    -----
    UserWarning
        When a model of ``ATOMLENS_MODELS`` is loaded by the name of a shipped model it hides.
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
        if _shadowed(str(name_or_folder), folder):
            warnings.warn(
                f"Model {name_or_folder!r} is loaded from {folder} ({ENVIRONMENT}), which hides "
                "the shipped model of that name.",
                UserWarning,
                stacklevel=2,
            )
    config = _read_config(folder)
    weights = folder / WEIGHTS
    if _sha256(weights) != config["sha256"]:
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
    model = _build(ARCHITECTURES[architecture], config.get("arguments", {}), folder)
    state = load_file(weights, device="cpu")
    if not all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point()):
        raise ValueError(f"{weights} holds NaN or infinite weights; the model is damaged.")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{weights} does not fit architecture {architecture!r}: {error}") from None
    return model.to(device).eval(), config


def save_model(
    model: torch.nn.Module,
    folder: str | Path,
    *,
    arguments: dict[str, Any],
    card: str,
    extra: dict[str, Any] | None = None,
    log: list[dict[str, Any]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model folder: weights, config (architecture, arguments, SHA-256, extra), card,
    and the training log when given.

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
    log : list of dict, optional
        The training's log records (``StreamingRun.log``), written as ``training_log.json``.
    overwrite : bool
        Replace the files of an existing folder.
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
    if log is not None:
        records = json.dumps(log, indent=1) + "\n"
        atomic_write(folder / LOG, lambda tmp: tmp.write_text(records), overwrite)
    return folder
