"""Small real search spaces for the dse tests (STAR on Llama2-7B: each point is a real ~30 ms simulation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sparseattn.dse import parse_space, resolve

# q tile x k tile x double buffering on STAR's own 192 KB token buffer: 5 x 16 x 2 = 160 points, 92 of them
# feasible; the optimum (q=128, k=96, double buffered) sits on the buffer-fit boundary.
TILING: dict[str, Any] = {
    "name": "tiling-test",
    "workload": {"arch": "star", "shape": "llama2-7b", "seq": 4096},
    "parameters": [
        {"name": "q_tile", "path": "mapping.formal.q", "values": [16, 32, 64, 128, 256]},
        {"name": "k_tile", "path": "mapping.formal.k", "low": 16, "high": 256, "step": 16},
        {"path": "mapping.double_buffered", "values": [True, False]},
    ],
    "objectives": ["latency_ms"],
}

# 4 x 4 = 16 points, all feasible: small enough for the resume, Ray and PostgreSQL tests.
SMALL: dict[str, Any] = {
    "name": "small-test",
    "workload": {"arch": "star", "shape": "llama2-7b", "seq": 4096},
    "parameters": [
        {"name": "q_tile", "path": "mapping.formal.q", "values": [16, 32, 64, 128]},
        {"name": "k_tile", "path": "mapping.formal.k", "values": [16, 32, 48, 64]},
    ],
    "objectives": ["latency_ms", "dram_mb"],
}


def space_of(data: dict[str, Any], **changes: Any):
    return resolve(parse_space({**data, **changes}, "test"))


def write_space(tmp: Path, data: dict[str, Any], name: str = "space.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def tiling_space():
    return space_of(TILING)


@pytest.fixture
def small_space():
    return space_of(SMALL)
