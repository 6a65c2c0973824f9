"""Shared plumbing of the hardware configuration files: the error type, strict pydantic models, YAML reading and
validation with errors that name the file and the key path (``pade.yaml: units.0.kind: ...``).

Every configuration block is a :class:`StrictModel`: unknown keys are errors; numbers must be finite (``.inf`` and
``.nan`` are refused: they would print ``nan`` latencies); a boolean is never a number and a string is never a
number (``bits: true`` or ``clock_mhz: "800"`` are errors, not 1 and 800); fields carry physical bounds stated in
their messages (``vdd: Input should be less than or equal to 2``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, model_validator

from ..core.errors import InvalidParameterError


class ConfigError(InvalidParameterError):
    """An architecture, mapping, model shape or technology file is invalid; the message names the key path."""


def _numeric(annotation: Any) -> bool:
    """Does a field's type accept numbers but not booleans (int, float, or containers/unions of them)?"""
    args = get_args(annotation)
    if annotation is bool or bool in args:
        return False
    if annotation in (int, float):
        return True
    return any(_numeric(a) for a in args)


def _reject_non_numbers(value: Any, name: str) -> None:
    """Booleans and strings where a number is expected (also inside lists and dicts)."""
    if isinstance(value, bool):
        raise ValueError(f"a boolean is not a number here (got {value!r})")
    if isinstance(value, str):
        raise ValueError(f"expected a number, got the string {value!r} (write numbers without quotes)")
    for v in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
        _reject_non_numbers(v, name)


class StrictModel(BaseModel):
    """A frozen pydantic model that refuses unknown keys, non-finite numbers and booleans or strings given as
    numbers (every configuration block is one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                if field.annotation is bool and value is not None and not isinstance(value, bool):
                    raise ValueError(f"{name}: expected true or false, got {value!r}")
                if value is not None and _numeric(field.annotation) and not isinstance(value, BaseModel):
                    try:
                        _reject_non_numbers(value, name)
                    except ValueError as err:
                        raise ValueError(f"{name}: {err}") from None
        return data


def validation_lines(err: ValidationError) -> list[str]:
    """Each pydantic error as ``  key.path: problem (got value)``."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<top>"
        value = e.get("input")
        got = "" if e["type"] == "missing" or isinstance(value, dict | list) else f" (got {value!r})"[:120]
        lines.append(f"  {path}: {e['msg'].removeprefix('Value error, ')}{got}")
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
