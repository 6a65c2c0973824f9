"""Fuzz of the architecture, technology and model-shape files: random deletions of required keys, type swaps and
non-finite or out-of-range numbers never produce a traceback or a result, only a ConfigError naming the file."""

from __future__ import annotations

import copy
import math
from typing import Any, get_args, get_origin

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sparseattn.hw.config import ConfigError, validated
from sparseattn.hw.schema import CONFIG_DIR, AcceleratorArch, GpuArch
from sparseattn.hw.shapes import ModelShape
from sparseattn.hw.technology import Technology

FILES = [(AcceleratorArch, "pade.yaml"), (AcceleratorArch, "sofa.yaml"), (GpuArch, "h100.yaml"),
         (Technology, "technology.yaml")]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in get_args(annotation):
        m = _model_of(a)
        if m is not None:
            return m
    return None


def _required(model: type[BaseModel], data: Any, prefix: tuple = ()):
    """Paths of required keys present in ``data`` (recursing into sub-models and lists of them)."""
    if not isinstance(data, dict):
        return
    for name, field in model.model_fields.items():
        if name not in data:
            continue
        if field.is_required():
            yield (*prefix, name)
        sub = _model_of(field.annotation)
        if sub is not None and isinstance(data[name], list) and get_origin(field.annotation) is list:
            for i, item in enumerate(data[name]):
                yield from _required(sub, item, (*prefix, name, i))
        elif sub is not None:
            yield from _required(sub, data[name], (*prefix, name))


def _leaves(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*prefix, i))
    else:
        yield prefix, node


def _bad(value):
    if isinstance(value, bool):
        return ["yes", 1, None]
    if isinstance(value, int | float):
        return [True, "7", math.nan, math.inf, -1e30]
    if isinstance(value, str):
        return [None, 3, [value]]
    return [None]


def _apply(data, path, value=None, delete=False):
    node = data
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


CASES = []
for model, name in FILES:
    base = yaml.safe_load((CONFIG_DIR / name).read_text())
    validated(model, base, name)  # the bundled file itself is valid
    free = ("description", "source", "name", "method", "normalised", "holds", "executes", "replace_reads")
    leaves = [(p, v) for p, v in _leaves(base) if not any(str(k) in free for k in p)
              and not (name == "technology.yaml" and p[0] == "op_cost")]  # op_cost weights may be 0 or large
    CASES.append((model, name, base, list(_required(model, base)), leaves))
shape_base = yaml.safe_load((CONFIG_DIR.parent / "shapes" / "llama2-7b.yaml").read_text())
CASES.append((ModelShape, "llama2-7b.yaml", shape_base, list(_required(ModelShape, shape_base)),
              [(p, v) for p, v in _leaves(shape_base) if p[0] not in ("name", "description", "source")]))


@settings(max_examples=200)
@given(st.data())
def test_mutated_config_files_give_only_named_errors(data):
    model, name, base, required, leaves = data.draw(st.sampled_from(CASES))
    bad = copy.deepcopy(base)
    if data.draw(st.booleans()) and required:
        path = data.draw(st.sampled_from(required))
        _apply(bad, path, delete=True)
    else:
        path, value = data.draw(st.sampled_from(leaves))
        replacement = data.draw(st.sampled_from(_bad(value)))
        _apply(bad, path, replacement)
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        validated(model, bad, name)
