"""Shared fixtures of the locate tests."""

import pytest


@pytest.fixture
def thread_pools(monkeypatch):
    """``watch(module)`` replaces ``module.ThreadPoolExecutor`` by one that records the
    threads of every pool it makes; the list of them is returned."""
    pools = []

    def watch(module):
        class CountedPool(module.ThreadPoolExecutor):
            def __init__(self, threads):
                pools.append(threads)
                super().__init__(threads)

        monkeypatch.setattr(module, "ThreadPoolExecutor", CountedPool)
        return pools

    return watch
