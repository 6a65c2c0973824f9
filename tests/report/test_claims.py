"""The claims as honest brackets: one accounting per design, "up to" as the maximum, derivations that check, every
choice sourced in the claims file, every claim a point inside its bracket."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparseattn.hw import load_model_shape
from sparseattn.hw.config import ConfigError
from sparseattn.hw.tableii import load_table
from sparseattn.report.brackets import EVALUATORS, a100_design, accounted, aggregate, bracket, value
from sparseattn.report.claim import sim
from sparseattn.report.claim_rows import build_claim
from sparseattn.report.claimsfile import load_claims
from sparseattn.report.sota import simulated_row

LLAMA = load_model_shape("llama2-7b")


def test_sofa_has_one_accounting_kv_generated_x_read_once_no_voltage_factor():
    """SOFA's claims (A100 and Table II alike) simulate K/V generated on chip from X, X read once per layer, the
    projection charged outside attention, and normalise core power as the paper's own row is (no (1/0.9 V)^2)."""
    sofa = accounted("sofa")
    assert dict(sofa.overrides)["operands.kv_source"] == "generated"
    shape = LLAMA.shape(512)
    r = sim(sofa, "llama2-7b", 512)
    assert "k" not in r.dram_bytes and "v" not in r.dram_bytes and "weights" not in r.dram_bytes
    assert r.dram_bytes["x"] == pytest.approx(shape.layers * 512 * shape.heads * shape.head_dim)  # 8-bit X, once
    assert "kvgen" not in r.stage_cycles  # the projection is the linear layer's block
    row = simulated_row("sofa", design=sofa)
    assert row.core_gops_per_w == pytest.approx(row.gops / row.core_w, rel=1e-9)  # 28 nm, 1.0 V: no factor
    paper = load_table().row("sofa")
    assert paper.core_gops_per_w == pytest.approx(paper.gops / paper.core_w, rel=1e-3)  # the paper's row alike
    file = load_claims()
    for spec in file.claims:  # every SOFA claim runs that one design
        if spec.paper == "sofa" and spec.evaluate in ("a100", "table2"):
            assert file.overrides("sofa") == sofa.overrides


def test_up_to_means_the_maximum_for_every_star_claim():
    for spec in load_claims().claims:
        if spec.paper == "star" and spec.evaluate != "spatial":
            assert spec.aggregate == "max", spec.id
    spec = load_claims().claim("star_speed_vs_a100")
    per = EVALUATORS["a100"](spec, load_claims().points())
    assert aggregate(spec.aggregate, per) == max(per.values())


def test_a100_derivation_counts_the_full_score_matrix():
    """Eager attention computes the full S^2 whatever the causal mask: the implied rate counts it."""
    c = build_claim(load_claims().claim("sofa_speed_vs_a100"))
    (text,) = [d for d in c.derivation if "implied rate" in d]
    assert "full S^2" in text


def test_pade_derivations_say_prefill_is_compute_and_the_power_is_inconsistent():
    c = build_claim(load_claims().claim("pade_energy_vs_h100"))
    power = [d for d in c.derivation if d.startswith("power consistency")]
    assert power and "must be normalised" in power[0] and "4.19x" in power[0]
    compute = [d for d in c.derivation if "compute-bound" in d]
    assert compute and "mostly compute" in compute[0]


def test_every_choice_has_a_source_and_a_point_among_its_values():
    file = load_claims()
    assert len(file.claims) == 15 and any(c.value == 20.1 for c in file.claims)
    for name, ch in file.choices.items():
        assert ch.source and ch.why and ch.point in ch.values, name
        if ch.why.startswith("middle"):  # no source picks one: the middle value of the range
            assert ch.values.index(ch.point) == (len(ch.values) - 1) // 2, name


def test_bad_claims_file_is_refused(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("accounting: {}\nchoices: {x: {what: w, values: [1, 2], point: 3, source: src, why: why}}\n"
                   "claims: []\n")
    with pytest.raises(ConfigError, match="point"):
        load_claims(str(bad))


def test_a_bracket_contains_its_point_and_each_swing_is_the_claim_at_that_value():
    spec = load_claims().claim("sofa_energy_vs_a100")
    b = bracket(spec)
    assert b.low <= b.point <= b.high and b.most in spec.choices
    (prec,) = [s for s in b.swings if s.choice == "a100_precision"]
    again = value(spec, {**load_claims().points(), "a100_precision": "fp16"})
    assert prec.values["fp16"] == pytest.approx(again)
    assert a100_design({**load_claims().points(), "a100_precision": "fp16"}).overrides != a100_design(
        load_claims().points()).overrides


def test_pade_survivor_buffer_holds_survivors_k_and_v_so_surviving_v_is_read_once():
    """PADE's 320 KB buffer at 20% density holds 12,800 tokens' survivors: 12,800 x 0.20 x (64 B K + 64 B V) =
    320 KiB exactly; modelled so, a head's surviving V is read once, not once per query group."""
    assert 12_800 * 0.20 * (64 + 64) == 320 * 1024
    pade = accounted("pade", "iso")
    assert dict(pade.overrides)["mapping.kv_residency"] == "survivors"
    shape = LLAMA.shape(2048)
    int8_v = shape.layers * shape.kv_heads * shape.k_len * shape.head_dim
    r = sim(pade, "llama2-7b", 2048)
    assert r.dram_bytes["v"] <= 1.01 * int8_v
    assert r.dram_bytes["k"] <= 1.01 * int8_v  # K planes reused across groups: at most INT8 K once per head


def test_tornado_bars_are_sorted_by_swing_and_span_each_choice():
    from sparseattn.report.tornado import _bars

    c = build_claim(load_claims().claim("pade_energy_vs_sanger"))
    bars = _bars(c)
    assert [b[0] for b in bars] == sorted((b[0] for b in bars), key=lambda n: -dict(
        (b[0], b[2] / b[1]) for b in bars)[n])
    for name, lo, hi, _, _ in bars:
        values = c.swings[name.replace(" ", "_")]
        assert lo == pytest.approx(min(values.values()) / c.paper_value)
        assert hi == pytest.approx(max(values.values()) / c.paper_value)


def test_docs_and_readme_claims_table_are_generated_from_the_committed_results():
    """docs/reproduce.md and the README's claims table are what `sparseattn reproduce --write-docs` makes of
    benchmarks/results/reproduce/reproduce.json: editing either by hand (or a stale result) fails here."""
    import json

    from sparseattn.report.claims_docs import DOCS_MD, README, RESULTS_JSON, docs_markdown, readme_with_table

    data = json.loads(RESULTS_JSON.read_text())
    assert DOCS_MD.read_text() == docs_markdown(data)
    assert README.read_text() == readme_with_table(README.read_text(), data)
    assert [c["id"] for c in data["claims"]] == [c.id for c in load_claims().claims]  # results from this file
    assert {c["id"]: c["paper_value"] for c in data["claims"]} == {c.id: c.value for c in load_claims().claims}


def test_readme_without_markers_is_refused():
    from sparseattn.report.claims_docs import readme_with_table

    with pytest.raises(ValueError, match="markers"):
        readme_with_table("# no table here\n", {"claims": []})


def test_validation_counts_independent_figures_and_shows_pades_implied_throughput_and_area_blocks():
    from sparseattn.report.validation import pade_area_blocks, validation

    checks = validation()
    sofa = {c.figure: c for c in checks if c.design == "sofa"}
    assert not sofa["GOPS/mm^2 (28 nm)"].independent and not sofa["latency (ms, 128 multipliers at 1 GHz)"].independent
    assert sofa["GOPS"].independent and sofa["device GOPS/W"].independent
    pade = {c.figure: c for c in checks if c.design == "pade"}
    implied = pade["GOPS (implied: GOPS/W x power)"]
    assert implied.published == pytest.approx(11_740 * 0.591, rel=1e-3) and not implied.independent
    assert 0.2 < implied.ratio < 0.5  # our PADE runs at about a third of the throughput its figures imply
    blocks = {b.block: b for b in pade_area_blocks()}
    assert blocks["scoreboards"].ours_mm2 == 0 and blocks["scoreboards"].published_mm2 == pytest.approx(0.037 * 4.53)
    assert sum(b.published_mm2 for b in blocks.values()) == pytest.approx(4.53)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=8))
def test_aggregates_order_and_refuse_non_positive_items(values):
    per = {str(i): v for i, v in enumerate(values)}
    mean, geo, top = (aggregate(r, per) for r in ("mean", "geomean", "max"))
    assert geo <= mean * (1 + 1e-9) and mean <= top * (1 + 1e-9) and top == max(values)
    with pytest.raises(ValueError, match="finite and positive"):
        aggregate("mean", {**per, "bad": 0.0})


def test_gpu_power_scaling_busy_charges_full_power_to_partly_filled_kernels():
    from sparseattn.hw import load_arch
    from sparseattn.hw.gpu_power import Kernel, dynamic_joules

    a100 = load_arch("a100")
    busy = a100.model_copy(update={"power_scaling": "busy"})
    half, full = Kernel("k", 1e-3, 0.5), Kernel("k", 1e-3, 1.0)
    assert dynamic_joules(busy, [half]) == pytest.approx(2 * dynamic_joules(a100, [half]))
    assert dynamic_joules(busy, [full]) == pytest.approx(dynamic_joules(a100, [full]))


def test_typed_rows_read_back_from_the_results_file():
    import json

    from sparseattn.report.claim_rows import rows_from_json
    from sparseattn.report.claims_docs import RESULTS_JSON

    rows = rows_from_json(json.loads(RESULTS_JSON.read_text()))
    assert len(rows) == 15 and all(r.low <= r.point <= r.high for r in rows)
    assert {r.id for r in rows if r.in_bracket} <= {r.id for r in rows}
