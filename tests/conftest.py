"""Shared test fixtures."""

import pytest


@pytest.fixture
def one_torch_thread():
    """Tiny models run small ops: one thread is as fast, and immune to oversubscription when other
    processes share the CPUs. The previous thread count is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
