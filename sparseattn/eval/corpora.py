"""Texts to evaluate on: the bundled public-domain texts (sources in ``texts/SOURCES.md``), a user's UTF-8 file,
or a string of text.

Everywhere a text is taken (``perplexity``, ``capture_qkv``, ``sparseattn eval --text``, ``sparseattn run
--texts``) :func:`load_text` resolves it the same way:

* a bundled name (``moby-dick``, ``sotu``);
* a :class:`~pathlib.Path`, or a string naming an existing file: read as UTF-8 (a file that is not UTF-8 or is
  empty is an error);
* any other string containing whitespace: the text itself;
* anything else (one word that is neither a bundled name nor a file, e.g. ``hamlet`` or ``my.txt``) is an error
  that says what was tried. Errors quote at most the first 60 characters of what they were given.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..core.errors import InvalidParameterError

TEXT_DIR = Path(__file__).parent / "texts"
QUOTE = 60


@dataclass(frozen=True)
class Corpus:
    name: str
    file: str
    title: str
    style: str


CORPORA: dict[str, Corpus] = {
    "moby-dick": Corpus("moby-dick", "moby_dick.txt", "Herman Melville, Moby-Dick (1851), chapters 1-12", "fiction"),
    "sotu": Corpus(
        "sotu", "sotu_roosevelt.txt", "F. D. Roosevelt, State of the Union addresses 1936-1939", "political speech"
    ),
}


def text_names() -> list[str]:
    return list(CORPORA)


def quote(text: str, limit: int = QUOTE) -> str:
    """``text`` for an error message: at most ``limit`` characters, the rest summarised by its length."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


@cache
def _bundled(name: str) -> str:
    return (TEXT_DIR / CORPORA[name].file).read_text(encoding="utf-8")


def read_text_file(path: Path) -> str:
    """A UTF-8 text file's content; a missing, undecodable or empty file is an error naming it."""
    if not path.is_file():
        raise InvalidParameterError(f"text file {quote(str(path))} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InvalidParameterError(f"text file {quote(str(path))} is not UTF-8 ({err.reason} at byte "
                                    f"{err.start}); save it as UTF-8") from None
    if not text.strip():
        raise InvalidParameterError(f"text file {quote(str(path))} is empty")
    return text


def load_text(text: str | Path) -> str:
    """The text named, stored or given by ``text`` (see the module docstring)."""
    if isinstance(text, Path):
        return read_text_file(text)
    if not isinstance(text, str):
        raise InvalidParameterError(f"a text is a bundled name, a file path or a string, got {type(text).__name__}")
    if text in CORPORA:
        return _bundled(text)
    if not text.strip():
        raise InvalidParameterError("the text is empty")
    if len(text) < 4096 and "\n" not in text and Path(text).expanduser().is_file():
        return read_text_file(Path(text).expanduser())
    if any(c.isspace() for c in text.strip()):
        return text
    raise InvalidParameterError(
        f"unknown text {quote(text)}: not a bundled text ({', '.join(CORPORA)}) and not an existing file; "
        "to evaluate a string of text itself, pass text with more than one word")


def text_label(text: str | Path) -> str:
    """A short name for a text in results: the bundled name, the file name, or ``"<string of N characters>"``."""
    if isinstance(text, Path):
        return str(text)
    if text in CORPORA:
        return text
    if len(text) < 4096 and "\n" not in text and Path(text).expanduser().is_file():
        return text
    return f"<string of {len(text):,} characters>"
