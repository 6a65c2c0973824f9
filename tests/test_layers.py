"""The package's layering (DESIGN.md, "Rooms and doors"), checked on the source: every import of every module,
function-level ones included, parsed with ``ast``.

    core <- kernels <- methods <- models <- eval <- train;  core <- hw (reads traces only);
    hw, eval <- dse <- report <- job <- cli;  train <- cli;  api re-exports and is imported by no lower layer.

(``train`` sits above ``eval``: fine-tuning reads eval's corpora and judges held-out loss with its perplexity.)

A package may import the packages below it (transitively) and itself; nothing inside the package imports ``api``,
``cli`` or the top-level ``sparseattn`` package (which re-exports ``api``), except ``sparseattn/__init__.py``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sparseattn"
TOP = "<top>"  # the top-level package sparseattn/__init__.py (it re-exports api)

# each layer and the layers directly below it; a layer may import everything reachable from it
BELOW: dict[str, set[str]] = {
    "core": set(),
    "kernels": {"core"},
    "methods": {"kernels"},
    "models": {"methods"},
    "eval": {"models"},
    "train": {"eval"},
    "hw": {"core"},
    "dse": {"hw", "eval"},
    "report": {"dse"},
    "job": {"report"},
    "cli": {"job", "train"},
    "api": {"methods"},
    TOP: {"api", "core"},
}

# imports that break the layering, each with why; each entry must still exist, so the list shrinks when they are fixed
KNOWN: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. sparseattn.kernels.star
    target: str  # the imported module (or package), e.g. sparseattn.core.blockplan
    line: int

    @property
    def where(self) -> str:
        return f"{self.module.replace('.', '/')}.py:{self.line}"


def layer(module: str) -> str:
    """``sparseattn.hw.spatial.plan`` -> ``hw``; the top-level package -> :data:`TOP`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else TOP


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path: Path, module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel.with_suffix(".py")).exists() or (ROOT / rel / "__init__.py").exists()


def imports_of(path: Path) -> list[Import]:
    """Every ``sparseattn`` import in ``path``, at any depth; ``from pkg import name`` counts as an import of
    ``pkg.name`` when that is a module, else of ``pkg``."""
    module = module_name(path)
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [Import(module, a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "sparseattn"]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(path, module, node)
            if base.split(".")[0] != "sparseattn":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append(Import(module, sub if _is_module(sub) else base, node.lineno))
    return list(dict.fromkeys(out))


@cache
def all_imports() -> tuple[Import, ...]:
    return tuple(i for p in sorted(PACKAGE.rglob("*.py")) for i in imports_of(p))


def allowed(src: str) -> set[str]:
    """``src`` and every layer below it."""
    seen, todo = {src}, [src]
    while todo:
        for b in BELOW.get(todo.pop(), set()):
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def violations(imports: tuple[Import, ...] | list[Import]) -> list[tuple[Import, str]]:
    """Imports that break the layering, each with the reason."""
    out = []
    for imp in imports:
        src, dst = layer(imp.module), layer(imp.target)
        if src not in BELOW:
            out.append((imp, f"{src!r} is not a layer of DESIGN.md (add it to BELOW in this test)"))
        elif dst in ("api", "cli", TOP) and src != TOP and src != dst:
            out.append((imp, f"imports {imp.target} from inside the package (only sparseattn/__init__.py may)"))
        elif dst not in allowed(src):
            out.append((imp, f"{src} may import only {sorted(allowed(src))}, not {dst}"))
    return out


def package_cycles(imports: tuple[Import, ...] | list[Import]) -> list[list[str]]:
    """Cycles of the graph of layers (an edge for every import between two layers), as lists of layers."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        src, dst = layer(imp.module), layer(imp.target)
        if src != dst:
            graph.setdefault(src, set()).add(dst)
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


def test_the_parser_sees_function_level_and_relative_imports():
    found = {(i.module, i.target) for i in all_imports()}
    assert ("sparseattn.api", "sparseattn.methods.entry") in found
    assert ("sparseattn", "sparseattn.api") in found
    # a function-level import (the Triton kernels are imported only when star_gpu runs)
    assert ("sparseattn.methods.blocksparse", "sparseattn.kernels.star") in found


def test_a_breaking_import_is_caught():
    bad = [Import("sparseattn.kernels.star", "sparseattn.methods.blocksparse", 3),
           Import("sparseattn.hw.gpu", "sparseattn.eval.corpora", 4),
           Import("sparseattn.models.patch", "sparseattn.api", 5),
           Import("sparseattn.dse.study", "sparseattn.report.claim", 6),
           Import("sparseattn.eval.sweep", "sparseattn", 7)]
    assert [i for i, _ in violations(bad)] == bad
    ok = [Import("sparseattn.report.sota", "sparseattn.kernels.star", 1), Import("sparseattn", "sparseattn.api", 2),
          Import("sparseattn.cli.dse_cmd", "sparseattn.cli._app", 3)]
    assert violations(ok) == []
    assert package_cycles([*bad[:1], Import("sparseattn.methods.blocksparse", "sparseattn.kernels.star", 9)]) == [
        ["kernels", "methods", "kernels"]]


def test_no_cycle_between_packages():
    cycles = package_cycles(all_imports())
    assert not cycles, "import cycles between packages: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_import_respects_the_layering():
    found = [(i, why) for i, why in violations(all_imports()) if (i.module, layer(i.target)) not in KNOWN]
    assert not found, "layer violations:\n" + "\n".join(f"  {i.where}: {why}" for i, why in found)


@pytest.mark.parametrize("key", sorted(KNOWN))
def test_known_exceptions_still_exist(key):
    """An entry of :data:`KNOWN` that no longer matches an import is stale: remove it."""
    assert any((i.module, layer(i.target)) == key for i, _ in violations(all_imports())), (
        f"{key} is no longer imported: remove it from KNOWN in tests/test_layers.py")
