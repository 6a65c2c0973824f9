import pytest

import sparseattn
from sparseattn.core import OpKey
from sparseattn.hw import load_technology
from sparseattn.hw.complexity import WEIGHTS_TEXT, op_cost, sofa_ablation, sufa_orders, weighted
from tests.helpers import random_qkv


def test_bit_weights():
    assert op_cost("add", 16) == 16 and op_cost("mul", 8) == 64 and op_cost("mac", 4) == 24
    assert op_cost("exp", 16) == 3 * 256 + 48 and op_cost("load", 64) == 0
    # the technology table's recipes: a divide is 6 multiply-adds, a leading-zero count half an adder
    assert op_cost("div", 16) == 6 * 256 + 6 * 16 and op_cost("lzc", 16) == 8
    assert "div = 6b^2 + 6b" in WEIGHTS_TEXT and "lzc = 0.5b" in WEIGHTS_TEXT


def test_weights_come_from_the_one_op_cost_table():
    """Every operation the energy model prices has a complexity weight, from the same recipe."""
    for op, recipe in load_technology().op_cost.items():
        adders = sum(w * (2 if p.endswith("_2x") else 1) for p, w in recipe.items() if p.startswith("int_add"))
        muls = sum(w * (4 if p.endswith("_2x") else 1) for p, w in recipe.items() if p.startswith("int_mul"))
        assert op_cost(op, 8) == pytest.approx(adders * 8 + muls * 64)
    assert weighted({OpKey("qk", "mac", 8): 10, ("predict", "shift", 4): 2}) == 10 * 80 + 2 * 4
    with pytest.raises(ValueError, match="no complexity weight"):
        op_cost("sqrt", 16)


def test_sofa_ablation_on_a_real_trace_structure():
    q, k, v = random_qkv(h=4, hkv=2, nq=256, nk=256, d=32, spread=1.5)
    seg = sparseattn.attention(q, k, v, "sofa", causal=True, k=0.25, Tc=4).trace
    full = sparseattn.attention(q, k, v, "sofa", causal=True, k=0.25, Tc=1).trace
    ab = sofa_ablation(seg, full)
    assert ab["baseline"]["normalised"] == 1.0
    assert ab["dlzs+sads+sufa"]["select"] < ab["dlzs"]["select"]  # segmented sorting does less work
    assert ab["dlzs"]["predict"] == ab["dlzs+sads+sufa"]["predict"]
    orders = sufa_orders(seg)
    assert set(orders) == {"descending", "ascending", "fa2"} and orders["fa2"]["cost_vs_fa2"] == 1.0
    assert orders["descending"]["softmax_cost"] < orders["ascending"]["softmax_cost"]
