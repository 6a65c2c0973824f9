"""The driver's typed counts: a method's steps add to a declared dataclass, so a typo'd counter fails."""

from __future__ import annotations

from dataclasses import dataclass, field, is_dataclass

import pytest

import sparseattn
from sparseattn.core.driver import NoCounts, Tally
from sparseattn.methods.pade.method import Pade, PadeCounts
from sparseattn.methods.registry import get_method
from tests.helpers import random_qkv


@dataclass
class _Counts:
    hits: float = 0.0
    blocks: list[int] = field(default_factory=list)


def test_tally_adds_declared_counters_and_refuses_typos():
    tally = Tally(_Counts)
    tally.add(hits=2)
    tally.add(hits=3.5)
    tally.append("blocks", 7)
    assert tally["hits"] == 5.5 and tally.counts.blocks == [7]
    with pytest.raises(KeyError, match=r"_Counts declares no float counter 'hit' \(it declares: hits\)"):
        tally.add(hit=1)
    with pytest.raises(KeyError, match="declares no float counter 'hit'"):
        _ = tally["hit"]  # a read of an undeclared name is not a silent zero
    with pytest.raises(KeyError, match="declares no list counter 'hits'"):
        tally.append("hits", 1)
    with pytest.raises(KeyError, match="it declares: none"):
        Tally(NoCounts).add(anything=1)


def test_every_method_declares_the_counters_its_steps_use():
    """Every registered method runs with its declared counts type (a step adding an undeclared counter would raise)."""
    q, k, v = random_qkv(h=4, hkv=2, nq=48, nk=48, d=16, seed=4)
    for name in sparseattn.list_methods():
        if name == "star_gpu":  # the Triton kernels (tests/kernels)
            continue
        assert is_dataclass(get_method(name).factory.counts), name
        sparseattn.attention(q, k, v, name, causal=True)
    assert Pade.counts is PadeCounts
