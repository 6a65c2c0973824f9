"""Every file, module or object the code's prose names exists: docstrings and comments of the package, the
benchmarks and scripts, comments of the bundled YAML and Markdown files, the README and ``docs/*.md``.

* a path under ``sparseattn/``, ``docs/``, ``benchmarks/``, ``scripts/`` or ``tests/`` (globs allowed) exists in
  the repository;
* a Sphinx role (``:mod:``, ``:func:``, ``:class:``, ``:meth:``, ``:attr:``, ``:data:``, ``:exc:``) resolves, as
  Sphinx would: absolute, relative to the module (``.registry``), or a name of the module or of one of its classes;
* nothing points at notes outside the repository (``shared/research``, ``research/*.md``, ``anchors.md`` ...):
  a source is a paper section, a data file or a document of the repository.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import io
import re
import tokenize
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"(?<![\w/.-])((?:sparseattn|docs|benchmarks|scripts|tests)/[\w./*<>{},-]*[\w*}>])")
ROLE = re.compile(r":(mod|func|class|meth|attr|data|exc):`([^`]+)`")
# notes outside the repository, and the numbered sections (§2.3) of those notes -- the papers number theirs III-B
NOTES = re.compile(r"shared/research|shared/seeds|\bresearch/[\w.-]+\.md|"
                   r"\b(?:anchors|sofa_star|pade|oracle_frontier|evaluation_audit|assets)\.md\b|§ ?\d")


@dataclass(frozen=True)
class Ref:
    file: Path
    line: int
    kind: str  # "path", "note" or a role
    target: str

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}: {self.kind} {self.target!r}"


def prose(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of the prose of ``path``: docstrings and comments of Python, comments of YAML, all of
    Markdown."""
    src = path.read_text()
    if path.suffix == ".md":
        return list(enumerate(src.splitlines(), 1))
    if path.suffix in (".yaml", ".yml"):
        return [(i, line[line.index("#"):]) for i, line in enumerate(src.splitlines(), 1) if "#" in line]
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                out.append((node.body[0].lineno, doc))
    out += [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(src).readline)
            if t.type == tokenize.COMMENT]
    return out


def documented_files() -> list[Path]:
    files = [p for p in sorted((ROOT / "sparseattn").rglob("*")) if p.suffix in (".py", ".yaml", ".yml", ".md")]
    files += sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))
    return [*files, ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def module_of(path: Path) -> str | None:
    rel = path.relative_to(ROOT)
    if rel.parts[0] != "sparseattn" or path.suffix != ".py":
        return None
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _lookup(dotted: str) -> bool:
    """Does ``dotted`` name a module, or an attribute reachable from the longest importable prefix?"""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for j, name in enumerate(parts[i:]):
            if hasattr(obj, name):
                obj = getattr(obj, name)
            elif inspect.isclass(obj) and j == len(parts) - i - 1 and _instance_attribute(obj, name):
                return True
            else:
                return False
        return True
    return False


def _instance_attribute(cls: type, name: str) -> bool:
    """A field (dataclass, pydantic, annotation) or an attribute set as ``self.name`` in the class's source."""
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}) or name in getattr(klass, "model_fields", {}):
            return True
        try:
            if re.search(rf"\bself\.{name}\b", inspect.getsource(klass)):
                return True
        except (OSError, TypeError):
            continue
    return False


@cache
def _classes(module: str) -> tuple[str, ...]:
    mod = importlib.import_module(module)
    return tuple(n for n, c in vars(mod).items() if inspect.isclass(c))


def resolves(target: str, module: str | None) -> bool:
    t = re.sub(r"\s+", "", target)
    if "<" in t:  # :func:`title <target>`
        t = t[t.index("<") + 1: t.index(">")]
    t = t.lstrip("~!").split("(")[0].rstrip(".")
    if t.startswith("."):
        if module is None:
            return False
        package = module.split(".") if (ROOT / module.replace(".", "/") / "__init__.py").exists() else \
            module.split(".")[:-1]
        level = len(t) - len(t.lstrip("."))
        return _lookup(".".join([*package[:len(package) - level + 1], t.lstrip(".")]))
    if hasattr(builtins, t) or _lookup(t) or _lookup(f"sparseattn.{t}"):
        return True
    if module is None:
        return False
    parts = module.split(".")
    candidates = [".".join([*parts[:i], t]) for i in range(len(parts), 0, -1)]
    candidates += [f"{module}.{c}.{t}" for c in _classes(module)]
    return any(_lookup(c) for c in candidates)


# files the prose names that only a GPU run writes (none is in the repository yet; the last two are named by
# main's benchmarks/gpu_all.py and docs/gpu.md)
GPU_OUTPUTS = ("benchmarks/results/bench_gpu.json", "benchmarks/results/gpu_attention_*.json",
               "benchmarks/results/gpu", "sparseattn/hw/configs/*-measured.yaml")


def _expand(path: str) -> list[str]:
    """``a.{json,md}`` -> ``a.json``, ``a.md``; a ``<placeholder>`` becomes a glob."""
    path = re.sub(r"<[^>]*>", "*", path.rstrip("."))
    m = re.search(r"\{([^{}]*)\}", path)
    if m is None:
        return [path]
    return [x for alt in m.group(1).split(",") for x in _expand(path[: m.start()] + alt + path[m.end():])]


def _exists(path: str) -> bool:
    return all(p in GPU_OUTPUTS or (any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists()) for p in _expand(path))


@cache
def all_refs() -> tuple[Ref, ...]:
    out = []
    for f in documented_files():
        for line, text in prose(f):
            out += [Ref(f, line, "path", m.group(1)) for m in PATH.finditer(text)]
            out += [Ref(f, line, "note", m.group(0)) for m in NOTES.finditer(text)]
            if f.suffix in (".py", ".md"):
                out += [Ref(f, line, m.group(1), m.group(2)) for m in ROLE.finditer(text)]
    return tuple(out)


def broken(refs: tuple[Ref, ...] | list[Ref]) -> list[Ref]:
    bad = []
    for r in refs:
        if r.kind == "note" or (r.kind == "path" and not _exists(r.target)):
            bad.append(r)
        elif r.kind not in ("path", "note") and not resolves(r.target, module_of(r.file)):
            bad.append(r)
    return bad


def test_the_checker_finds_what_it_should(tmp_path):
    refs = all_refs()
    assert sum(r.kind == "path" for r in refs) > 50 and sum(r.kind in ("mod", "func", "class") for r in refs) > 200
    here = ROOT / "sparseattn" / "hw" / "registry.py"
    bad = [Ref(here, 1, "path", "sparseattn/hw/nosuch.py"), Ref(here, 1, "path", "docs/{results,nosuch}.md"),
           Ref(here, 1, "note", "shared/research/pade.md"), Ref(here, 1, "note", "§2.3"),
           Ref(here, 1, "mod", "sparseattn.report.isopoints"), Ref(here, 1, "func", "~sparseattn.hw.simulate_it"),
           Ref(here, 1, "class", ".nosuch.Thing"), Ref(here, 1, "meth", "Capabilities.nosuch")]
    assert broken(bad) == bad
    good = [Ref(here, 1, "path", "sparseattn/hw/configs/*.yaml"), Ref(here, 1, "path", "docs/{results,reproduce}.md"),
            Ref(here, 1, "path", "sparseattn/hw/configs/<name>.yaml"), Ref(here, 1, "mod", ".schema"),
            Ref(here, 1, "func", "~sparseattn.hw.simulate"), Ref(here, 1, "class", "Capabilities"),
            Ref(here, 1, "meth", "ArchKind.describe"), Ref(here, 1, "func", "require"),
            Ref(here, 1, "class", "ValueError"), Ref(here, 1, "func", "~sparseattn.hw.technology.\n    area_items"),
            Ref(here, 1, "attr", "~sparseattn.kernels.star.BlockSparseResult.selection")]
    assert broken(good) == []


@pytest.mark.parametrize("kind", ["path", "note", "role"])
def test_every_named_file_module_and_object_exists(kind):
    bad = [r for r in broken(all_refs()) if (r.kind if r.kind in ("path", "note") else "role") == kind]
    assert not bad, f"{len(bad)} dead references:\n" + "\n".join(f"  {r}" for r in bad)
