"""Shared test settings: two torch threads (the CI machine has two cores), no GPU, no network."""

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared folder of real microscope files; tests using it skip when it is absent."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
    folder = Path(os.environ.get("ATOMLENS_REAL_DATA", default))
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} not present")
    return folder
