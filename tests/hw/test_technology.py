import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparseattn.core.errors import InvalidParameterError
from sparseattn.hw import load_technology

tech = load_technology()


def test_horowitz_anchors_are_reproduced_at_the_reference_node():
    # 45 nm, 0.9 V: 8-bit add 0.03 pJ, 32-bit add 0.1 pJ, 8-bit multiply 0.2 pJ, 32-bit multiply 3.1 pJ
    over = tech.pe_energy_overhead
    assert tech.op_energy_pj("add", 8, 45, 0.9) == pytest.approx(0.03 * over)
    assert tech.op_energy_pj("add", 32, 45, 0.9) == pytest.approx(0.1 * over)
    assert tech.op_energy_pj("mul", 8, 45, 0.9) == pytest.approx(0.2 * over)
    assert tech.op_energy_pj("mul", 32, 45, 0.9) == pytest.approx(3.1 * over)
    # a MAC is a multiplier plus an adder of twice the width
    assert tech.op_energy_pj("mac", 16, 45, 0.9) == pytest.approx(
        tech.op_energy_pj("mul", 16, 45, 0.9) + tech.op_energy_pj("add", 32, 45, 0.9)
    )


def test_node_and_voltage_scaling_follow_the_stated_rule():
    e45 = tech.op_energy_pj("mac", 8, 45, 0.9)
    assert tech.op_energy_pj("mac", 28, 28, 0.9) != e45
    assert tech.op_energy_pj("mac", 8, 28, 0.9) == pytest.approx(e45 * 28 / 45)
    assert tech.op_energy_pj("mac", 8, 28, 1.0) == pytest.approx(e45 * 28 / 45 * (1.0 / 0.9) ** 2)
    a45 = tech.pe_area_mm2({"mac": 1}, 8, 45)
    assert tech.pe_area_mm2({"mac": 1}, 8, 22) == pytest.approx(a45 * (22 / 45) ** 2)
    # SRAM area is calibrated at 28 nm on SOFA's 316 KB = 0.497 mm^2
    assert tech.sram_area_mm2(316, 28) == pytest.approx(0.497, rel=1e-3)
    # SRAM energy per byte grows as the square root of the bank size
    assert tech.sram_pj_per_byte(32, 45, 0.9) == pytest.approx(2 * tech.sram_pj_per_byte(8, 45, 0.9))
    assert tech.dram_pj_per_bit("hbm2") == 3.9


@given(op=st.sampled_from(["add", "mul", "mac", "compare", "shift", "exp", "div", "lzc"]),
       bits=st.integers(1, 31), node=st.sampled_from([22, 28, 40, 45, 55]))
def test_energy_and_area_grow_with_width(op, bits, node):
    assert 0 < tech.op_energy_pj(op, bits, node) < tech.op_energy_pj(op, bits + 1, node)
    assert 0 < tech.pe_area_mm2({op: 1}, bits, node) < tech.pe_area_mm2({op: 1}, bits + 1, node)
    assert math.isfinite(tech.op_energy_pj(op, bits, node))


def test_unknown_names_are_clear_errors():
    with pytest.raises(InvalidParameterError, match="no cost for operation 'fma'"):
        tech.op_energy_pj("fma", 8, 28)
    with pytest.raises(InvalidParameterError, match="unknown DRAM kind 'hbm9'"):
        tech.dram_pj_per_bit("hbm9")


def test_area_lives_with_technology():
    from sparseattn.hw import load_arch
    from sparseattn.hw.technology import area_items, leakage_mw, unit_area_mm2

    sofa = load_arch("sofa")
    items = {a.component: a for a in area_items(sofa, tech)}
    assert items["sa_qk"].mm2 == 1.2 and items["sa_qk"].basis == "published"  # the paper's module area
    assert items["ap"].basis == "model" and items["ap"].mm2 == pytest.approx(
        128 * tech.pe_area_mm2({"add": 1, "mul": 1}, 16, 28))
    assert items["token"].kind == "sram" and items["token"].mm2 == pytest.approx(tech.sram_area_mm2(192, 28))
    lanes = load_arch("pade").units[0]  # one adder per AND-tree input the lane completes per cycle
    assert unit_area_mm2(lanes, 28, tech) == pytest.approx(128 * tech.pe_area_mm2({"add": 41}, 8, 28))
    leak = leakage_mw(sofa, list(items.values()), tech)
    assert leak["sram"] == pytest.approx(tech.sram_leakage_mw(sofa.sram_kb, 28))
    assert leak["logic"] == pytest.approx(tech.logic_leakage_mw(sum(a.mm2 for a in items.values()
                                                                    if a.kind == "unit"), 28))
