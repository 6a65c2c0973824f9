"""Fixtures for the hardware models: a small hand-checkable accelerator and small real traces."""

from __future__ import annotations

from typing import Any

import pytest

from sparseattn import attention
from sparseattn.hw.schema import AcceleratorArch, validated
from tests.helpers import random_qkv


def tiny_arch_dict(**dataflow: Any) -> dict[str, Any]:
    """A small accelerator whose traffic is easy to count by hand (every buffer tiny unless overridden)."""
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
        "dataflow": {"q_tile": 64, "k_tile": 64, "kv_bits": 16, "q_bits": 16, "gqa_share": False, **dataflow},
    }


def tiny_arch(**dataflow: Any) -> AcceleratorArch:
    return validated(AcceleratorArch, tiny_arch_dict(**dataflow), "tiny")


@pytest.fixture(scope="module")
def dense_trace():
    """The dense trace of a small bidirectional GQA shape: 2 query heads on 1 KV head, 256 tokens, d=64."""
    q, k, v = random_qkv(h=2, hkv=1, nq=256, nk=256, d=64)
    return attention(q, k, v, "dense", causal=False).trace
