"""Each method is deterministic on fixed inputs: the same output bits, kept pairs and trace twice in a row.

(Across machines float reductions may differ in the last bits -- AVX2 vs AVX-512 kernels -- so traces record the
CPU capability in ``meta["device"]`` and cross-machine comparisons use tolerances; see tests/hw.)
"""

import json

import pytest
import torch

import sparseattn
from sparseattn.methods import method_names
from tests.helpers import random_qkv

PARAMS = {"star_gpu": None}  # GPU-only: exercised by tests/kernels


@pytest.mark.parametrize("method", [m for m in method_names() if PARAMS.get(m, {}) is not None])
def test_same_inputs_same_bits(method):
    q, k, v = random_qkv(b=2, h=4, hkv=2, nq=48, nk=64, d=16, seed=11)
    a = sparseattn.attention(q, k, v, method, causal=True)
    b = sparseattn.attention(q, k, v, method, causal=True)
    assert torch.equal(a.out, b.out) and torch.equal(a.keep, b.keep)
    assert json.dumps(a.trace.to_json(), sort_keys=True) == json.dumps(b.trace.to_json(), sort_keys=True)
    assert a.trace.meta["device"].startswith("cpu: ")
