"""A space file checked against the real models: :func:`resolve` turns a :class:`SpaceFile` into a :class:`Space`.

Checks, each a :class:`SpaceError` naming the parameter:

* every path exists -- architecture and mapping paths through :func:`~sparseattn.hw.with_overrides` on the real
  architecture, ``method.<name>`` against the method's parameter model -- and every value of a parameter (all
  of a small grid, else its two ends) is accepted by the schema;
* accuracy-aware objectives have finite method parameters (choices or a stepped range), so the accuracy table
  can be computed before the study; SOFA's objective needs a SOFA-family method;
* some point satisfies the constraints: every architecture point of a grid up to :data:`EXHAUSTIVE` points is
  checked, else the corners and :data:`SAMPLED` random points; the error shows the least-violating point.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import SparseAttnError
from ..core.shape import Shape
from ..hw import load_arch, load_model_shape, load_trace, method_of, trace_for, with_density
from ..methods import registry
from .candidate import Candidate, build
from .constraints import Feasibility, check, check_budgets
from .dims import Dim, Target, expand
from .objectives import Objective, get_objective
from .qkv import capture_layers
from .space import ObjectiveSpec, SpaceError, SpaceFile

EXHAUSTIVE = 4096  # architecture points checked one by one when the grid is no larger
SAMPLED = 512  # random architecture points checked otherwise (besides the corners)
VALUES_CHECKED = 64  # a parameter with at most this many values has each one validated


@dataclass
class Space:
    """A resolved search space: the base architecture, the workload shape, the dims and the objectives."""

    file: SpaceFile
    arch: Any
    method: str
    shape_name: str
    shape: Shape
    dims: list[Dim]
    objectives: list[tuple[Objective, ObjectiveSpec]]
    n_layers: int
    accuracy_layers: list[int] | None
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ what the study needs
    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o, _ in self.objectives]

    @property
    def needs_sim(self) -> bool:
        return any(o.needs_sim for o, _ in self.objectives)

    @property
    def needs_accuracy(self) -> bool:
        return any(o.needs_accuracy for o, _ in self.objectives)

    @property
    def method_dims(self) -> list[Dim]:
        return [d for d in self.dims if any(t.is_method for t in d.targets)]

    @property
    def computed_trace(self) -> bool:
        """Trials need traces computed from cached Q/K/V (the space sets method parameters)."""
        return self.needs_sim and bool(self.method_dims or self.file.workload.method_params)

    def distributions(self) -> dict[str, Any]:
        return {d.name: d.distribution() for d in self.dims}

    def grid(self) -> dict[str, list[Any]]:
        """Raw values of every dim for Optuna's grid sampler (a continuous range is an error)."""
        out = {}
        for d in self.dims:
            values = d.grid()
            if values is None:
                raise SpaceError(f"parameter {d.name!r} is a continuous range: the grid sampler needs `values` or "
                                 "a `step`")
            out[d.name] = values
        return out

    def grid_size(self) -> int | None:
        sizes = [len(v) if (v := d.grid()) is not None else None for d in self.dims]
        return None if None in sizes else int(eval_product(sizes))

    def decode(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {d.name: d.decode(raw[d.name]) for d in self.dims}

    def encode(self, values: dict[str, Any]) -> dict[str, Any]:
        return {d.name: d.encode(values[d.name]) for d in self.dims}

    def targets(self, values: dict[str, Any]) -> dict[Target, Any]:
        return {t: values[d.name] for d in self.dims if d.name in values for t in d.targets}

    def candidate(self, values: dict[str, Any]) -> Candidate:
        """The architecture and method parameters of decoded ``values`` (a subset: the rest stay at base)."""
        return build(self.arch, self.method, self.file.workload.method_params, self.targets(values), self.n_layers)

    def feasibility(self, candidate: Candidate) -> Feasibility:
        return check(candidate.arch, self.shape, self.file.constraints)

    def method_points(self) -> list[dict[str, Any]]:
        """Every distinct method-parameter point of the space (for the accuracy table)."""
        dims = self.method_dims
        combos = itertools.product(*[d.values(None) for d in dims]) if dims else [()]
        points = {}
        for combo in combos:
            values = dict(zip([d.name for d in dims], combo, strict=True))
            params = self.candidate(values).method_params
            points[repr(sorted(params.items()))] = params
        return list(points.values())

    def base_trace(self) -> Any:
        """The bundled (or named) trace of a space that sets no method parameters."""
        spec = self.file.workload
        trace = load_trace(self.file.relative(spec.trace)) if spec.trace else trace_for(self.arch, self.shape.causal)
        return with_density(trace, spec.density) if spec.density is not None else trace

    def objective_context(self) -> dict[str, Any]:
        fields_ = registry.get_method(self.method).params.model_fields
        defaults = tuple(fields_[n].default if n in fields_ else None for n in ("k", "Tc"))
        return {"shape_name": self.shape_name, "layers": self.accuracy_layers, "defaults": defaults}


def eval_product(sizes: list[int]) -> int:
    out = 1
    for s in sizes:
        out *= s
    return out


# ---------------------------------------------------------------------------------------------- resolution
def _load_workload(f: SpaceFile) -> tuple[Any, str, str, Shape]:
    spec = f.workload
    try:
        arch = load_arch(f.relative(spec.arch))
        model_shape = load_model_shape(f.relative(spec.shape))
        return arch, method_of(arch), model_shape.name, model_shape.shape(spec.seq, spec.batch)
    except SparseAttnError as err:
        raise SpaceError(f"space {f.name!r}: workload: {err}") from None


def _check_method_paths(f: SpaceFile, dims: list[Dim], method: str) -> None:
    fields_ = registry.get_method(method).params.model_fields
    for d in dims:
        for t in d.targets:
            if t.is_method and t.param not in fields_:
                raise SpaceError(f"parameter {d.name!r}: {t.path!r} is not a parameter of method {method!r}; "
                                 f"its parameters: {', '.join(fields_)}")
    for name in f.workload.method_params:
        if name not in fields_:
            raise SpaceError(f"workload.method_params: {name!r} is not a parameter of method {method!r}; "
                             f"its parameters: {', '.join(fields_)}")


def _layers(f: SpaceFile, dims: list[Dim]) -> tuple[list[int] | None, int]:
    per_layer = sorted({t.layer for d in dims for t in d.targets if t.layer is not None})
    layers = list(f.accuracy.layers) if f.accuracy.layers else (per_layer or None)
    used = per_layer + (layers or []) + capture_layers(f.accuracy)
    return layers, max(used) + 1


def _check_objectives(f: SpaceFile, space: Space) -> None:
    if space.needs_accuracy:
        for d in space.method_dims:
            if d.grid() is None:
                raise SpaceError(f"parameter {d.name!r}: accuracy objectives need finite method parameters (the "
                                 "accuracy table is computed before the study): give `values` or a `step`")
    if "sofa" in space.objective_names:
        fields_ = registry.get_method(space.method).params.model_fields
        if not {"k", "Tc"} <= set(fields_):
            raise SpaceError(f"objective 'sofa' needs a SOFA-family method (parameters k and Tc); the workload's "
                             f"method is {space.method!r}")
        if space.accuracy_layers is None:
            raise SpaceError("objective 'sofa' sums over layers: give accuracy.layers or per_layer parameters")


def _check_values(space: Space) -> None:
    for d in space.dims:
        values = d.values() if (n := len(d.grid(5) or [])) and n <= VALUES_CHECKED else d.ends()
        for v in values:
            try:
                space.candidate({d.name: v})
            except (SparseAttnError, ValueError) as err:
                raise SpaceError(f"parameter {d.name!r} = {v!r} is refused: {err}") from None


def resolve(f: SpaceFile, check_values: bool = True, check_constraints: bool = True) -> Space:
    """The :class:`Space` of ``f``, checked (module docstring); workers skip the checks the driver made."""
    arch, method, shape_name, shape = _load_workload(f)
    dims = [d for p in f.parameters for d in expand(p)]
    names = [d.name for d in dims]
    if len(set(names)) != len(names):
        raise SpaceError(f"parameter names collide after per_layer expansion: {names}")
    _check_method_paths(f, dims, method)
    layers, n_layers = _layers(f, dims)
    objectives = [(get_objective(o), o) for o in f.objectives]
    space = Space(file=f, arch=arch, method=method, shape_name=shape_name, shape=shape, dims=dims,
                  objectives=objectives, n_layers=n_layers, accuracy_layers=layers)
    _check_objectives(f, space)
    try:
        check_budgets(arch, f.constraints)
    except SparseAttnError as err:
        raise SpaceError(f"space {f.name!r}: {err}") from None
    if check_values:
        _check_values(space)
    if check_constraints:
        check_satisfiable(space)
    return space


# ---------------------------------------------------------------------------------------------- satisfiability
def _arch_points(space: Space, seed: int = 0) -> tuple[list[dict[str, Any]], str]:
    """Architecture points to check (method dims do not change constraints) and how they were chosen."""
    dims = [d for d in space.dims if not any(t.is_method for t in d.targets)]
    if not dims:
        return [{}], "the base architecture"
    grids = [d.values() for d in dims]
    names = [d.name for d in dims]
    if eval_product([len(g) for g in grids]) <= EXHAUSTIVE:
        return [dict(zip(names, c, strict=True)) for c in itertools.product(*grids)], "every point"
    corners = [dict(zip(names, c, strict=True)) for c in itertools.islice(
        itertools.product(*[d.ends() for d in dims]), 1024)]
    rng = random.Random(seed)
    sampled = [{n: rng.choice(g) for n, g in zip(names, grids, strict=True)} for _ in range(SAMPLED)]
    return corners + sampled, f"{len(corners)} corners and {SAMPLED} random points"


def check_satisfiable(space: Space) -> None:
    """Raise :class:`SpaceError` when no checked point satisfies the constraints (module docstring)."""
    points, how = _arch_points(space)
    best: tuple[float, dict[str, Any], Feasibility | str] | None = None
    for values in points:
        try:
            feas = space.feasibility(space.candidate(values))
        except (SparseAttnError, ValueError) as err:
            best = best or (float("inf"), values, str(err))
            continue
        if feas.feasible:
            return
        if best is None or feas.violation < best[0]:
            best = (feas.violation, values, feas)
    assert best is not None
    _, values, why = best
    reasons = why if isinstance(why, str) else "; ".join(why.reasons)
    raise SpaceError(f"no point of space {space.file.name!r} satisfies its constraints (checked {how}, "
                     f"{len(points)} points); the closest, {values or 'the base architecture'}, fails: {reasons}")
