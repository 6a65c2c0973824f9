"""Kernel tests run on CPU in Triton's interpreter by default: ``TRITON_INTERPRET=1`` is set here (unless the
caller set it), before any kernel module is imported -- Triton reads it when a kernel is defined.

On a CUDA machine, ``TRITON_INTERPRET=0 pytest tests/kernels`` runs the same tests compiled on the GPU (the
``device`` fixture follows the mode) plus the ones marked ``gpu``, which are skipped with a reason otherwise.
Without triton every kernel test is skipped with a reason.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

os.environ.setdefault("TRITON_INTERPRET", "1")

from sparseattn.kernels._runtime import interpreting

HAS_TRITON = importlib.util.find_spec("triton") is not None
ON_GPU = not interpreting() and torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if not str(item.fspath).startswith(here):
            continue
        if not HAS_TRITON:
            item.add_marker(pytest.mark.skip(reason="triton is not installed (pip install -e '.[dev]')"))
        elif "gpu" in item.keywords and not ON_GPU:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU and TRITON_INTERPRET=0"))
        elif not interpreting() and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="TRITON_INTERPRET=0 needs a CUDA GPU"))


@pytest.fixture(scope="session")
def device() -> str:  # session scope: hypothesis tests take it
    """Where the kernels run in this session: the interpreter's CPU, or the GPU."""
    return "cpu" if interpreting() else "cuda"
