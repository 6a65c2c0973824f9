"""Architecture kinds declare their capabilities; a caller that needs one a kind lacks gets a clear error."""

from __future__ import annotations

import copy
from dataclasses import fields

import pytest

from sparseattn.core.shape import Shape
from sparseattn.dse import SpaceError
from sparseattn.dse.constraints import check
from sparseattn.dse.space import Constraints
from sparseattn.hw import load_arch, replicate
from sparseattn.hw.normalise import at_node, iso
from sparseattn.hw.registry import (
    _KINDS,
    ArchKind,
    Capabilities,
    MissingCapabilityError,
    arch_kind,
    capabilities,
    kinds,
    method_of,
    register_kind,
    require,
)
from sparseattn.hw.spatial import load_mesh
from sparseattn.hw.technology import load_technology
from tests.dse.conftest import SMALL, space_of

SHAPE = Shape(batch=1, heads=32, kv_heads=32, q_len=1024, k_len=1024, head_dim=128, causal=True)


def _archs() -> dict:
    return {"accelerator": load_arch("star"), "gpu": load_arch("h100"), "replicated": replicate(load_arch("sofa"), 2),
            "mesh": load_mesh("spatial-star-4x4")}


def test_every_kind_declares_its_capabilities():
    archs = _archs()
    assert set(kinds()) == set(archs)
    for name, arch in archs.items():
        caps = capabilities(arch)
        assert isinstance(caps, Capabilities), name
        assert isinstance(method_of(arch), str) and method_of(arch)
        assert {f.name for f in fields(caps)} >= {"runs_trace", "mapping", "area_mm2", "sram_kb", "method"}


def test_what_each_builtin_kind_offers():
    archs, tech = _archs(), load_technology()
    gpu = capabilities(archs["gpu"])
    assert (gpu.runs_trace, gpu.mapping, gpu.check_fit, gpu.sram_kb, gpu.normalisable) == (False, None, None, None,
                                                                                          False)
    assert gpu.area_mm2(archs["gpu"], tech) == archs["gpu"].die_area_mm2
    acc = capabilities(archs["accelerator"])
    assert acc.runs_trace and acc.normalisable and acc.mapping(archs["accelerator"]) == archs["accelerator"].mapping
    assert acc.sram_kb(archs["accelerator"]) == archs["accelerator"].sram_kb
    mesh = archs["mesh"]
    caps = capabilities(mesh)
    assert caps.sram_kb(mesh) == mesh.cores * mesh.core.sram_kb
    assert caps.area_mm2(mesh, tech) > mesh.cores * capabilities(mesh.core).area_mm2(mesh.core, tech)  # + routers
    rep = archs["replicated"]
    base = capabilities(rep.base)
    assert capabilities(rep).area_mm2(rep, tech) == pytest.approx(2 * base.area_mm2(rep.base, tech))
    assert capabilities(rep).sram_kb(rep) == 2 * base.sram_kb(rep.base)
    assert method_of(rep) == method_of(rep.base) == "sofa"
    assert capabilities(replicate(archs["gpu"], 2)).runs_trace is False


def test_require_names_the_caller_the_architecture_and_the_kind():
    with pytest.raises(MissingCapabilityError, match=r"the SRAM budget .* needs an on-chip SRAM total, which the GPU "
                                                     r"'h100' \(kind 'gpu'\) does not have"):
        require(load_arch("h100"), "sram_kb", "the SRAM budget (constraints.sram_kb_max)")
    with pytest.raises(ValueError, match="unknown capability 'speed'"):
        require(load_arch("h100"), "speed", "x")
    assert require(load_arch("star"), "sram_kb", "x")(load_arch("star")) == load_arch("star").sram_kb


def test_a_new_kind_without_area_or_sram_fails_the_dse_budgets_clearly(monkeypatch):
    """Before capabilities, an architecture of a kind DSE did not know got area 0 and SRAM 0: the budgets passed."""
    monkeypatch.setitem(_KINDS, "toy", None)  # restored after the test
    toy = copy.copy(load_arch("h100"))
    object.__setattr__(toy, "kind", "toy")
    gpu = arch_kind("gpu")
    caps = Capabilities(method=lambda a: "dense", runs_trace=False, mapping=None, check_fit=None, area_mm2=None,
                        sram_kb=None, normalisable=False)
    register_kind(ArchKind("toy", gpu.schema, gpu.simulate, caps, noun="toy"))
    assert check(toy, SHAPE, Constraints()).feasible  # no budget: nothing to measure
    with pytest.raises(MissingCapabilityError, match=r"area budget \(constraints.area_mm2_max\) needs an area model, "
                                                     r"which the toy 'h100' \(kind 'toy'\)"):
        check(toy, SHAPE, Constraints(area_mm2_max=100.0))
    with pytest.raises(MissingCapabilityError, match=r"SRAM budget \(constraints.sram_kb_max\) needs an on-chip SRAM"):
        check(toy, SHAPE, Constraints(sram_kb_max=100.0))


def test_the_dse_budgets_measure_every_kind_that_can():
    """A mesh's area and SRAM were read as 0 (it is no AcceleratorArch): a 1 mm2 budget passed."""
    mesh = load_mesh("spatial-star-4x4")
    over = check(mesh, SHAPE, Constraints(area_mm2_max=1.0, sram_kb_max=1.0))
    assert not over.feasible and over.values["area"] > 0 and over.values["sram"] > 0
    assert any("area" in r for r in over.reasons) and any("SRAM" in r for r in over.reasons)
    # its cores' buffers are checked with the core's mapping, as an accelerator's are
    assert check(mesh, SHAPE, Constraints()).values["buffers"] == check(mesh.core, SHAPE, Constraints()).values[
        "buffers"]


def test_a_space_with_a_budget_its_architecture_cannot_measure_is_refused():
    data = copy.deepcopy(SMALL)
    data["constraints"] = {"sram_kb_max": 500.0}
    data["workload"] = {**data.get("workload", {}), "arch": "h100"}
    with pytest.raises(SpaceError, match=r"SRAM budget \(constraints.sram_kb_max\) needs an on-chip SRAM total, "
                                         r"which the GPU 'h100'"):
        space_of(data)


def test_normalising_needs_a_normalisable_kind():
    with pytest.raises(MissingCapabilityError, match="kind 'mesh', which cannot be normalised"):
        iso(load_mesh("spatial-star-4x4"))
    with pytest.raises(MissingCapabilityError, match="kind 'replicated'"):
        at_node(replicate(load_arch("star"), 2), 7)


def test_simulate_refuses_the_options_a_kind_has_no_use_for():
    from typer.testing import CliRunner

    from sparseattn.cli import app

    mesh = "sparseattn/hw/spatial/configs/spatial-star-4x4.yaml"
    r = CliRunner().invoke(app, ["simulate", "--arch", mesh, "--iso"], terminal_width=200)
    assert r.exit_code == 2 and "--iso do not apply to the mesh 'spatial-star-4x4'" in r.output
    assert "cannot be normalised" in r.output
    r = CliRunner().invoke(app, ["simulate", "--arch", "h100", "--k-tile", "64", "--density", "0.5"],
                           terminal_width=200)
    assert r.exit_code == 2 and "--density, --k-tile do not apply to the GPU 'h100'" in r.output
    assert "whatever the trace" in r.output and "takes no mapping" in r.output
