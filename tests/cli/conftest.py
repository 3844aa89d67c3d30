"""Fixtures shared by the command tests."""

import numpy as np
import pytest


def _drifting_stack(frames=4, shape=(64, 64), period=8.0, step=(1.5, -1.0), seed=0):
    """Poisson images of a square lattice of columns drifting by ``step`` px per frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    stack = []
    for t in range(frames):
        yy, xx = y - period / 2 - step[0] * t, x - period / 2 - step[1] * t
        clean = 20 + 300 * np.cos(np.pi * yy / period) ** 16 * np.cos(np.pi * xx / period) ** 16
        stack.append(rng.poisson(clean))
    return np.stack(stack).astype(np.float32)


@pytest.fixture(scope="session")
def drifting_stack():
    """``drifting_stack(frames, shape, period [px], step (dy, dx) [px/frame], seed)``: a float32
    stack of a square lattice of columns drifting by ``step`` per frame, with Poisson noise."""
    return _drifting_stack
