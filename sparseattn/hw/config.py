"""Shared plumbing of the hardware configuration files: the error type, strict pydantic models, YAML reading and
validation with errors that name the file and the key path (``pade.yaml: units.0.kind: ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ..core.errors import InvalidParameterError


class ConfigError(InvalidParameterError):
    """An architecture, mapping, model shape or technology file is invalid; the message names the key path."""


class StrictModel(BaseModel):
    """A frozen pydantic model that refuses unknown keys (every configuration block is one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validation_lines(err: ValidationError) -> list[str]:
    """Each pydantic error as ``  key.path: problem (got value)``."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<top>"
        got = "" if e["type"] == "missing" else f" (got {e.get('input')!r})"
        lines.append(f"  {path}: {e['msg']}{got}")
    return lines


def validated(model: Any, data: Any, where: str) -> Any:
    """Validate ``data`` as ``model`` (a pydantic model or annotated type); errors are rewritten as
    ``where: key.path: problem (got value)``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as err:
        raise ConfigError(f"{where}: invalid configuration\n" + "\n".join(validation_lines(err))) from None


def find_file(name_or_path: str | Path, directory: Path, suffix: str, what: str, bundled: list[str],
              hint: str = "") -> Path:
    """A bundled file by name (``directory/name.suffix``) or any existing file by path, else a clear error."""
    path = Path(name_or_path)
    if path.suffix not in (suffix, ".yml" if suffix == ".yaml" else suffix):
        path = directory / f"{name_or_path}{suffix}"
        if not path.exists():
            raise ConfigError(f"unknown {what} {str(name_or_path)!r}; bundled: {', '.join(bundled)}{hint}")
    elif not path.exists():
        raise ConfigError(f"{what} file {str(path)!r} does not exist")
    return path


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
