"""Fixtures for the hardware models: a small hand-checkable accelerator and small real traces."""

from __future__ import annotations

from typing import Any

import pytest

from sparseattn import attention
from sparseattn.hw.config import validated
from sparseattn.hw.schema import AcceleratorArch, Operands
from tests.helpers import random_qkv

OPERAND_FIELDS = set(Operands.model_fields)


def tiny_arch_dict(**fields: Any) -> dict[str, Any]:
    """A small accelerator whose traffic is easy to count by hand (every buffer tiny unless overridden). Keyword
    arguments go to its ``operands`` block when they name an operand field, else to its ``mapping``."""
    operands = {"kv_bits": 16, "q_bits": 16, **{k: v for k, v in fields.items() if k in OPERAND_FIELDS}}
    mapping = {"formal": {"q": 64, "k": 64}, "gqa_share": False,
               **{k: v for k, v in fields.items() if k not in OPERAND_FIELDS}}
    return {
        "kind": "accelerator",
        "name": "tiny",
        "method": "dense",
        "clock_mhz": 1000,
        "node_nm": 28,
        "units": [
            {"name": "pe", "kind": "mac_array", "count": 64, "bits": 32, "executes": ["qk/*", "pv/*"]},
            {"name": "sfu", "kind": "vector_unit", "count": 8, "bits": 32, "executes": ["softmax/*", "*/*"]},
        ],
        "buffers": [
            {"name": "kv", "kb": 40, "holds": ["k", "v"]},
            {"name": "qo", "kb": 40, "holds": ["q", "o", "scores"]},
        ],
        "dram": {"kind": "hbm2", "gbps": 64, "efficiency": 1.0, "latency_ns": 0},
        "operands": operands,
        "mapping": mapping,
    }


def tiny_arch(**fields: Any) -> AcceleratorArch:
    return validated(AcceleratorArch, tiny_arch_dict(**fields), "tiny")


@pytest.fixture(scope="module")
def dense_trace():
    """The dense trace of a small bidirectional GQA shape: 2 query heads on 1 KV head, 256 tokens, d=64."""
    q, k, v = random_qkv(h=2, hkv=1, nq=256, nk=256, d=64)
    return attention(q, k, v, "dense", causal=False).trace
