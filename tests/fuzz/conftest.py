"""Settings shared by the fuzz suite (strategies: fuzz_strategies.py).

The suite asserts one contract for every public verb and reader: a clear error (a ValueError or
OSError subclass, never another exception) or a correct result; nothing a user had is
overwritten; time and memory stay bounded. ``ATOMLENS_MAX_ARRAY_GB`` is lowered to 0.25 GiB for
the whole suite, so an input that slips past a size check fails loudly instead of filling memory.

``HYPOTHESIS_PROFILE=thorough`` runs about four times as many examples as CI (250 against 60).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the test modules import fuzz_strategies.py (importlib mode)
    sys.path.insert(0, str(HERE))

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def small_memory_limit(monkeypatch):
    """Every array atomlens allocates in a fuzz test stays below 0.25 GiB."""
    monkeypatch.setenv("ATOMLENS_MAX_ARRAY_GB", "0.25")
