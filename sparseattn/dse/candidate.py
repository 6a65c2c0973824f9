"""One design point: the architecture (with its mapping) and the method parameters a trial's values give.

Values are written to their targets with :func:`~sparseattn.hw.with_overrides` (a validated copy; no YAML is
copied). Three conveniences keep a point consistent with the schema, and are part of the search's semantics:

* a ``mapping.predict.*`` path on an architecture whose prediction tile is unset (it defaults to the formal tile)
  starts from the formal tile;
* a systolic array keeps its row count: setting ``units.<u>.count`` sets ``cols = count / rows`` (the count must
  be a multiple of the rows), and setting ``rows`` or ``cols`` sets ``count = rows x cols``;
* a unit whose area is the paper's published figure (``area_mm2``) keeps its area per PE when its count changes,
  so an area budget sees the change.

Method parameters: ``method.<name>`` sets a parameter; with a layer (``per_layer``) it sets that entry of a
per-layer list whose other entries keep the fixed value (``workload.method_params``) or the method's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..hw import with_overrides
from ..hw.config import ConfigError
from ..methods import registry
from .dims import Target


@dataclass
class Candidate:
    """The architecture and method parameters of one point, and the overrides that made the architecture."""

    arch: Any
    method_params: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)


def _unit(arch: Any, seg: str) -> Any | None:
    units = getattr(arch, "units", None) or []
    for i, u in enumerate(units):
        if u.name == seg or seg == str(i):
            return u
    return None


def _systolic_and_area(arch: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """Extra overrides keeping systolic shapes and published per-PE areas consistent (module docstring)."""
    extra: dict[str, Any] = {}
    for path, value in overrides.items():
        parts = path.split(".")
        if len(parts) != 3 or parts[0] != "units" or (unit := _unit(arch, parts[1])) is None:
            continue
        prefix, fld = f"units.{parts[1]}", parts[2]
        count = None
        if fld == "count":
            count = value
            if unit.rows is not None:
                if value % unit.rows:
                    raise ConfigError(f"{path}={value}: a systolic array keeps its {unit.rows} rows, so the count "
                                      f"must be a multiple of {unit.rows}")
                extra[f"{prefix}.cols"] = value // unit.rows
        elif fld in ("rows", "cols") and unit.rows is not None:
            rows = overrides.get(f"{prefix}.rows", unit.rows)
            cols = overrides.get(f"{prefix}.cols", unit.cols)
            count = rows * cols
            extra[f"{prefix}.count"] = count
        if count is not None and unit.area_mm2 is not None and f"{prefix}.area_mm2" not in overrides:
            extra[f"{prefix}.area_mm2"] = unit.area_mm2 * count / unit.count
    return extra


def arch_overrides(arch: Any, values: dict[Target, Any]) -> dict[str, Any]:
    """The dotted-path overrides of the architecture for ``values`` (method targets left out)."""
    overrides: dict[str, Any] = {}
    paths = {t.path: v for t, v in values.items() if not t.is_method}
    mapping = getattr(arch, "mapping", None)
    if mapping is not None and mapping.predict is None and any(p.startswith("mapping.predict.") for p in paths):
        overrides["mapping.predict"] = mapping.formal.model_dump()
    overrides.update(paths)
    overrides.update(_systolic_and_area(arch, paths))
    return overrides


def method_params(method: str, fixed: dict[str, Any], values: dict[Target, Any], n_layers: int) -> dict[str, Any]:
    """The method parameters of a point: ``fixed`` with each method target applied (per-layer entries padded to
    ``n_layers`` from the fixed value or the method's default)."""
    spec = registry.get_method(method)
    params = dict(fixed)
    for target, value in values.items():
        if not target.is_method:
            continue
        name = target.param
        if target.layer is None:
            params[name] = value
            continue
        current = params.get(name, spec.params.model_fields[name].default if name in spec.params.model_fields
                             else None)
        entries = list(current) if isinstance(current, list) else [current] * n_layers
        entries += [entries[-1] if entries else None] * (n_layers - len(entries))
        entries[target.layer] = value
        params[name] = entries
    return params


def build(arch: Any, method: str, fixed: dict[str, Any], values: dict[Target, Any], n_layers: int) -> Candidate:
    """The :class:`Candidate` for ``values``; a value the schema refuses raises :class:`ConfigError`."""
    overrides = arch_overrides(arch, values)
    new_arch = with_overrides(arch, overrides) if overrides else arch
    params = method_params(method, fixed, values, n_layers)
    if params:
        registry.parse_params(method, params)  # validated here: a bad value names the parameter
    return Candidate(arch=new_arch, method_params=params, overrides=overrides)
