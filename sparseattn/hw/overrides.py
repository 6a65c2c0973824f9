"""Dotted-path overrides of any configuration model, validated: the design-space search varies architecture and
mapping fields without copying YAML.

``with_overrides(arch, {"units.sa_qk.count": 512, "mapping.formal.k": 128})`` returns a new, validated copy. A path
walks fields by name; a list of named items (units, buffers) is entered by an item's ``name`` or by its index. An
unknown key, a path through an unset block, or a value the schema refuses is a :class:`ConfigError` naming the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from .config import ConfigError, validated

M = TypeVar("M", bound=BaseModel)


def _child(node: Any, seg: str, path: str) -> tuple[Any, Any]:
    """The container and key under which ``seg`` lives in ``node``."""
    if isinstance(node, dict):
        if seg not in node:
            raise ConfigError(f"override {path!r}: unknown key {seg!r}; known: {', '.join(sorted(node))}")
        return node, seg
    if isinstance(node, list):
        names = [item.get("name") if isinstance(item, dict) else None for item in node]
        if seg in names:
            return node, names.index(seg)
        if seg.lstrip("-").isdigit() and -len(node) <= int(seg) < len(node):
            return node, int(seg)
        raise ConfigError(f"override {path!r}: no item {seg!r}; items: {', '.join(str(n) for n in names)} "
                          f"(or an index below {len(node)})")
    raise ConfigError(f"override {path!r}: {seg!r} is inside a value that is not a block ({node!r}); set the "
                      "enclosing block as a whole")


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    node: Any = data
    segments = path.split(".")
    for seg in segments[:-1]:
        container, key = _child(node, seg, path)
        node = container[key]
    container, key = _child(node, segments[-1], path)
    container[key] = value


def with_overrides(model: M, overrides: Mapping[str, Any]) -> M:
    """A validated copy of ``model`` with each dotted ``path: value`` of ``overrides`` applied (module docstring)."""
    data = model.model_dump(mode="json")
    for path, value in overrides.items():
        _set(data, path, value.model_dump(mode="json") if isinstance(value, BaseModel) else value)
    name = getattr(model, "name", type(model).__name__)
    return validated(type(model), data, f"{name} with overrides {dict(overrides)}")
