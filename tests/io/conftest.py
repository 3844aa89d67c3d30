"""Fixtures for the atomlens.io tests: small synthetic images and the optional real files."""

import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent

# the test modules import the format writers in fake_microscope_files.py; this keeps that
# working under pytest's importlib import mode too (the default mode already adds HERE)
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture
def real_file(real_data):
    """Path of a real file by name, in the shared folder that ``real_data`` (tests/conftest.py)
    finds through $ATOMLENS_REAL_DATA; the test is skipped when the file is not there."""

    def find(name: str) -> Path:
        path = real_data / name
        if not path.is_file():
            pytest.skip(f"real data file {path} not available")
        return path

    return find


@pytest.fixture
def ramp() -> np.ndarray:
    """A non-square (24, 32) uint16 image whose every value is distinct (catches transposes
    and flips)."""
    return np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 3 + 7
