"""SOFA's Table II as data and its normalisation rules (issue 12, section 1)."""

import pytest

from sparseattn.hw.config import ConfigError
from sparseattn.hw.tableii import (
    Measured,
    area_at,
    claims_of,
    core_power_at,
    implied_multipliers,
    implied_vdd,
    load_table,
    mean,
    normalised_latency_ms,
    row_from_simulation,
)


def test_every_row_has_a_source_and_the_table_has_nine():
    table = load_table()
    assert [r.name for r in table.rows] == ["a3", "elsa", "sanger", "dota", "energon", "dtatrans", "spatten", "fact",
                                            "sofa"]
    assert all(r.source for r in table.rows)
    with pytest.raises(ConfigError, match="no row 'bogus'"):
        table.row("bogus")


def test_the_rules_reproduce_published_columns():
    t = load_table()
    a3 = t.row("a3")
    assert a3.gops / area_at(a3.area_mm2, a3.node_nm) == pytest.approx(a3.gops_per_mm2, rel=0.01)  # 217
    assert a3.gops / core_power_at(a3.core_w, a3.node_nm, 1.1) == pytest.approx(a3.core_gops_per_w, rel=0.01)
    core = core_power_at(a3.core_w, a3.node_nm, 1.1)  # normalised core power, unscaled IO power
    assert a3.gops / (core + a3.io_w) == pytest.approx(a3.device_gops_per_w, rel=0.01)  # 300
    fact = t.row("fact")
    assert normalised_latency_ms(fact.gops, 512, fact.clock_mhz, t) == pytest.approx(296, rel=0.01)
    assert implied_multipliers(fact, t) == 512
    assert implied_vdd(a3, t) == pytest.approx(1.1, rel=0.02)


def test_sofas_own_row_gives_its_printed_claims():
    t = load_table()
    c = claims_of(t.row("sofa"), t)
    assert mean(c["energy"]) == pytest.approx(15.78, abs=0.005)
    assert mean(c["area"]) == pytest.approx(10.26, abs=0.005)
    assert mean(c["speed"]) == pytest.approx(9.36, abs=0.005)
    assert set(c["energy"]) == {"a3", "elsa", "energon", "spatten"} and len(c["area"]) == 8


def test_a_simulated_row_is_normalised_like_the_papers():
    m = Measured(name="x", ops=137e9, latency_s=0.01, core_energy_j=0.01, io_energy_j=0.02, area_mm2=4.0,
                 node_nm=56, vdd=1.0, clock_mhz=500, multipliers=256)
    row = row_from_simulation(m)
    gops = 137e9 / 0.01 / 1e9  # 13,700
    assert row.gops == pytest.approx(gops)
    assert row.gops_per_mm2 == pytest.approx(gops / (4.0 / 4))  # area x (28 / 56)^2
    assert row.core_gops_per_w == pytest.approx(gops / 0.5)  # 1 W core x 28 / 56
    assert row.device_gops_per_w == pytest.approx(gops / (0.5 + 2.0))  # IO power unscaled
    assert row.latency_ms == pytest.approx(137 / (gops * 128 / 256 * 1000 / 500) * 1e3)
