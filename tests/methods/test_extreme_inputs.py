"""Finite inputs at extreme scales give a finite answer or a clear error, never NaN rows: PADE keeps each row's
best key (its max-ensure) when the guard margin vanishes below the score precision, and logits that would
overflow the compute dtype are refused naming the input."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseattn
from tests.helpers import random_qkv


def _qkv():
    return random_qkv(h=2, hkv=2, nq=64, nk=64, d=32)


def _low_key_row(value: float):
    q, k, v = _qkv()
    k = k.clone()
    k[0, 0, 3] = value
    return q, k, v


PADE_CASES = {
    "q and k x5e3": (lambda: tuple(x * 5e3 if i < 2 else x for i, x in enumerate(_qkv())), {}),
    "a key row at -1e10": (lambda: _low_key_row(-1e10), {}),
    "radius=1e-7": (_qkv, {"radius": 1e-7}),
    "scale=1e30": (_qkv, {"scale": 1e30}),
}


@pytest.mark.parametrize("case", list(PADE_CASES))
def test_pade_keeps_every_rows_best_key(case):
    make, params = PADE_CASES[case]
    q, k, v = make()
    r = sparseattn.attention(q, k, v, "pade", causal=True, **params)
    assert torch.isfinite(r.out).all(), f"{case}: {int((~torch.isfinite(r.out)).any(-1).sum())} NaN rows"
    assert bool(r.keep.any(dim=-1).all()), f"{case}: a row kept no key"


@settings(max_examples=12, deadline=None)
@given(spread=st.floats(1e-3, 1e6), radius=st.floats(1e-9, 10.0))
def test_pade_rows_never_empty_at_any_scale(spread, radius):
    q, k, v = random_qkv(h=1, hkv=1, nq=32, nk=32, d=16, spread=spread)
    r = sparseattn.attention(q, k, v, "pade", causal=True, radius=radius)
    assert torch.isfinite(r.out).all()
    assert bool(r.keep.any(dim=-1).all())


@pytest.mark.parametrize("method", ["dense", "pade", "sofa", "topk"])
def test_logits_that_overflow_are_refused_naming_the_input(method):
    q, k, v = _low_key_row(-3e38)
    with pytest.raises(ValueError, match=r"logits .*overflow.*\bk\b"):
        sparseattn.attention(q, k, v, method, causal=True)


CPU_METHODS = [m for m in sparseattn.list_methods() if not m.endswith("_gpu")]


@pytest.mark.parametrize("method", CPU_METHODS)
def test_a_huge_finite_key_gives_a_finite_answer_or_names_the_input(method):
    q, k, v = _low_key_row(1e20)
    try:
        r = sparseattn.attention(q, k, v, method, causal=True)
    except ValueError as err:
        assert re.search(r"\b[qkv]\b", str(err)) and " x " not in f" {err} ", str(err)
        return
    assert torch.isfinite(r.out).all(), method
