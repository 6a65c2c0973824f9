"""The trace file format: round trip, version handling, and a fuzz of malformed files (only named errors)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseattn
from sparseattn.core import Workload
from sparseattn.core.records import BitplaneReads, MissingRecordError, SadsSetting, SufaCounts
from sparseattn.core.trace_file import FORMAT_VERSION, TraceFormatError
from tests.helpers import as_format_2, random_qkv


def _json() -> dict:
    q, k, v = random_qkv(h=4, hkv=2, nq=40, nk=48, d=16, seed=1)
    return sparseattn.attention(q, k, v, "pade", causal=True).trace.to_json()


BASE = _json()


def test_round_trip_keeps_everything(tmp_path):
    w = Workload.from_json(BASE)
    path = tmp_path / "t.json"
    w.save(path)
    back = Workload.load(path)
    assert back.to_json() == w.to_json() == json.loads(json.dumps(BASE))
    assert back.to_json()["format_version"] == FORMAT_VERSION
    assert set(back.samples) == {"bitserial_planes", "bitserial_busiest_nobs"}


def test_format_1_is_refused_or_upgraded_explicitly():
    old = as_format_2(BASE)
    old.pop("format_version")
    with pytest.raises(TraceFormatError, match="format 1"):
        Workload.from_json(old, "old.json")
    assert Workload.from_json(old, "old.json", upgrade=True).extra_reads == Workload.from_json(BASE).extra_reads
    old.pop("read_basis")  # an upgrade never guesses a scaling basis
    with pytest.raises(TraceFormatError, match="no read_basis entry"):
        Workload.from_json(old, "old.json", upgrade=True)


def _without_upgrade_note(data: dict) -> dict:
    out = copy.deepcopy(data)
    assert out["meta"].pop("upgraded").startswith("format 2 -> 3")
    return out


def test_format_2_is_refused_with_the_upgrade_named():
    with pytest.raises(TraceFormatError, match=r"old\.json: trace format 2 is refused.*upgrade_traces\.py"):
        Workload.from_json(as_format_2(BASE), "old.json")


def test_format_2_upgrade_round_trip_keeps_every_number():
    """PADE's bit-plane counts move from meta to their typed record; nothing else changes."""
    old = as_format_2(BASE)
    assert "bitplane_reads" in old["meta"] and "records" not in old
    up = Workload.from_json(old, "old.json", upgrade=True)
    assert _without_upgrade_note(up.to_json()) == json.loads(json.dumps(BASE))
    assert up.record(BitplaneReads) == Workload.from_json(BASE).record(BitplaneReads)


def _sofa(layers: int = 1, **params) -> list[Workload]:
    q, k, v = random_qkv(h=2, hkv=2, nq=48, nk=48, d=16, seed=3)
    return [sparseattn.attention(q, k, v, "sofa", causal=True, layer=i, **params).trace for i in range(layers)]


def test_format_2_upgrade_of_sofa_one_layer_and_stacked():
    (one,) = _sofa()
    up = Workload.from_json(as_format_2(one.to_json()), upgrade=True)
    assert _without_upgrade_note(up.to_json()) == json.loads(json.dumps(one.to_json()))
    assert up.record(SufaCounts).bits == 16 and up.record(SadsSetting).tc == [4]
    # format 2 kept a stacked trace's first layer's SU-FA and RASS counts only: they are not carried over, and a
    # model that needs them says so; the SADS setting of scalar parameters holds for every layer
    stacked = sum(_sofa(2, k=0.5, Tc=2))
    v2 = as_format_2(stacked.to_json())
    v2["meta"]["params"] = {"k": 0.5, "Tc": 2}  # as the bundled traces record them: the setting as given
    up = Workload.from_json(v2, upgrade=True)
    assert up.record(SadsSetting) == stacked.record(SadsSetting) and up.record(SadsSetting).tc == [2, 2]
    assert "not carried: sufa_counts" in up.meta["upgraded"] and not up.has(SufaCounts)
    from sparseattn.hw.complexity import sufa_orders

    with pytest.raises(MissingRecordError, match=r"complexity model \(hw/complexity.py\) needs the SufaCounts"):
        sufa_orders(up)
    v2["meta"]["params"] = {"Tc": [2, 3]}  # per-layer lists: format 2 kept only the first layer's
    assert not Workload.from_json(v2, upgrade=True).has(SadsSetting)


def test_records_with_a_typo_or_unknown_kind_or_version_are_refused():
    for mutate, match in (
        (lambda r: r["bitplane_reads"].update(k_plane=1.0), r"bitplane_reads.*k_plane"),
        (lambda r: r["bitplane_reads"].pop("k_planes"), r"bitplane_reads.*k_planes"),
        (lambda r: r.update(sufa=r.pop("bitplane_reads")), "unknown record kind 'sufa'"),
        (lambda r: r["bitplane_reads"].update(version=2), "version 2; this version reads 1"),
        (lambda r: r["bitplane_reads"].update(bits=True), r"bits"),
    ):
        bad = copy.deepcopy(BASE)
        mutate(bad["records"])
        with pytest.raises(TraceFormatError, match=match):
            Workload.from_json(bad, "typo.json")


def test_errors_name_the_file_and_key_path(tmp_path):
    bad = copy.deepcopy(BASE)
    bad["shape"]["heads"] = True  # a bool is not an int
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(TraceFormatError, match=r"bad\.json: invalid trace\n  shape\.heads"):
        Workload.load(path)
    path.write_text("{not json")
    with pytest.raises(TraceFormatError, match=r"bad\.json: not valid JSON"):
        Workload.load(path)
    with pytest.raises(TraceFormatError, match="does not exist"):
        Workload.load(tmp_path / "missing.json")


# ------------------------------------------------------------------------------------------------ fuzz
def _paths(node, prefix=()):
    """Every (path, value) of the JSON tree except under meta (free-form by design)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if prefix == () and key == "meta":
                continue
            yield (*prefix, key), value
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i), value
            yield from _paths(value, (*prefix, i))


OPTIONAL = {("profile",), ("extra_reads",), ("read_basis",), ("samples",), ("records",), ("scaled_from",), ("meta",)}
LEAVES = [(p, v) for p, v in _paths(BASE) if not isinstance(v, dict | list)]
REQUIRED_KEYS = [p for p, _ in _paths(BASE) if isinstance(p[-1], str) and p not in OPTIONAL
                 and not (len(p) == 2 and p[0] in ("extra_reads", "read_basis", "samples", "records"))
                 and p not in (("shape", "layers"), ("shape", "window"))]  # optional, with defaults


def _wrong(value):
    """Replacements that are invalid for a leaf of this kind (type swaps and non-finite numbers)."""
    if isinstance(value, bool):
        return [1, "true", None]
    if isinstance(value, int | float):
        return ["1", True, None, [value], float("nan"), float("inf"), -1e30]
    if isinstance(value, str):
        return [1, None, True, [value]]
    return ["x", True, -5]  # an optional field that is None (shape.window): any wrong type or value


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(data, path):
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


@settings(max_examples=150)
@given(st.data())
def test_fuzzed_traces_give_only_named_errors(data):
    bad = copy.deepcopy(BASE)
    if data.draw(st.booleans()):
        path = data.draw(st.sampled_from(REQUIRED_KEYS))
        _delete(bad, path)
    else:
        path, value = data.draw(st.sampled_from(LEAVES))
        replacement = data.draw(st.sampled_from(_wrong(value)))
        if isinstance(value, int) and not isinstance(value, bool) and replacement == -1e30 and path[-1] == "count":
            replacement = -1.0
        _set(bad, path, replacement)
    try:
        w = Workload.from_json(json.loads(json.dumps(bad, allow_nan=True)), "fuzz.json")
    except TraceFormatError as err:
        assert str(err).startswith("fuzz.json")
        return
    pytest.fail(f"mutating {path} was accepted: {w}")
