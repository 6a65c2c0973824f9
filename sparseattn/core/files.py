"""Writing files safely: every output is written to a temporary file beside it and renamed into place, so an
interrupted run never leaves a half-written result (and a reader never sees one)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InvalidParameterError


def write_atomic(path: Path, text: str | bytes) -> Path:
    """Write ``text`` to ``path`` atomically (same-directory temporary file, then ``os.replace``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(path: Path | None, what: str = "output") -> Path | None:
    """Fail before any work starts when ``path``'s directory is missing or not writable (``None`` passes)."""
    if path is None:
        return None
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidParameterError(f"{what} {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise InvalidParameterError(f"{what} {str(path)!r}: directory {str(parent)!r} is not writable")
    if path.is_dir():
        raise InvalidParameterError(f"{what} {str(path)!r} is a directory; give a file name")
    return path


def check_out_dir(path: Path, what: str = "--out") -> Path:
    """Fail before any work starts unless ``path`` is a directory or can be made one: it is not a file, and its
    nearest existing ancestor is a writable directory (``FILE/sub`` names a file as a parent)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidParameterError(f"{what} {str(path)!r} is a file, not a directory")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InvalidParameterError(f"{what} {str(path)!r}: {str(probe)!r} is a file, not a directory")
    if probe.exists() and not os.access(probe, os.W_OK):
        raise InvalidParameterError(f"{what} {str(path)!r}: directory {str(probe)!r} is not writable")
    return path


FULL_HASH_BYTES = 256 * 2**20  # files up to this size are hashed whole
EDGE_BYTES = 32 * 2**20  # larger ones: their size, first and last EDGE_BYTES (a multi-GB checkpoint in ~0.2 s)


def _hash_file(h: object, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{size}:".encode())  # type: ignore[attr-defined]
    with open(path, "rb") as f:
        if size <= FULL_HASH_BYTES:
            for chunk in iter(lambda: f.read(2**20), b""):
                h.update(chunk)  # type: ignore[attr-defined]
        else:
            h.update(f.read(EDGE_BYTES))  # type: ignore[attr-defined]
            f.seek(size - EDGE_BYTES)
            h.update(f.read(EDGE_BYTES))  # type: ignore[attr-defined]


def content_sha256(source: str | Path) -> str:
    """A content hash for cache keys and resumable stores: a file's bytes, a directory's files (names and bytes,
    sorted, hidden files skipped), or a string itself when it names no file or directory (a bundled name)."""
    import hashlib

    h = hashlib.sha256()
    path = Path(source).expanduser() if isinstance(source, Path) or len(str(source)) < 4096 else None
    if path is not None and path.is_file():
        _hash_file(h, path)
    elif path is not None and path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            h.update(str(f.relative_to(path)).encode() + b"\0")
            _hash_file(h, f)
    else:
        h.update(str(source).encode("utf-8"))
    return h.hexdigest()


class CorruptFileError(InvalidParameterError):
    """A results file we would resume from is unreadable or malformed; the message names it and the way out."""


def read_json_object(path: Path, what: str, hint: str = "") -> dict:
    """The JSON object in ``path``, or :class:`CorruptFileError` naming the file (and ``hint``: how to recover)."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"{what} {str(path)!r} is not valid JSON ({err}){hint}") from None
    if not isinstance(data, dict):
        raise CorruptFileError(f"{what} {str(path)!r} must hold a JSON object, got {type(data).__name__}{hint}")
    return data


def set_aside(path: Path) -> Path:
    """Move ``path`` to ``<path>.bad-<timestamp>`` (never deleted) and return the new path."""
    import time

    target = Path(f"{path}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while target.exists():
        target = Path(f"{path}.bad-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    os.replace(path, target)
    return target
