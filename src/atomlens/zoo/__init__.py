"""Pretrained models: one entry point, weights shipped inside the package, loaded offline.

``load_model(name)`` finds ``<name>/model.safetensors`` + ``config.json`` + ``README.md`` (the model
card) in the folders of ``ATOMLENS_MODELS`` (user-trained models, ``os.pathsep``-separated) and
then in the package's ``zoo/models``; ``save_model`` writes such a folder. Weights are plain
tensors (safetensors, no pickle); the config names the architecture and its arguments and holds
the SHA-256 of the weights, which is checked on load.
"""

from atomlens.zoo.registry import (
    ARCHITECTURES,
    ModelNotFoundError,
    available_models,
    load_model,
    register_architecture,
    save_model,
)

__all__ = [
    "ARCHITECTURES",
    "ModelNotFoundError",
    "available_models",
    "load_model",
    "register_architecture",
    "save_model",
]
