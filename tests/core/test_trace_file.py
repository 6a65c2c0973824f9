"""The trace file format: round trip, version handling, and a fuzz of malformed files (only named errors)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseattn
from sparseattn.core import Workload
from sparseattn.core.trace_file import FORMAT_VERSION, TraceFormatError
from tests.helpers import random_qkv


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
    old = copy.deepcopy(BASE)
    old.pop("format_version")
    with pytest.raises(TraceFormatError, match="format 1"):
        Workload.from_json(old, "old.json")
    assert Workload.from_json(old, "old.json", upgrade=True).extra_reads == Workload.from_json(BASE).extra_reads
    old.pop("read_basis")  # an upgrade never guesses a scaling basis
    with pytest.raises(TraceFormatError, match="no read_basis entry"):
        Workload.from_json(old, "old.json", upgrade=True)


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


OPTIONAL = {("profile",), ("extra_reads",), ("read_basis",), ("samples",), ("meta",)}
LEAVES = [(p, v) for p, v in _paths(BASE) if not isinstance(v, dict | list)]
REQUIRED_KEYS = [p for p, _ in _paths(BASE) if isinstance(p[-1], str) and p not in OPTIONAL
                 and not (len(p) == 2 and p[0] in ("extra_reads", "read_basis", "samples"))
                 and p != ("shape", "layers")]


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
