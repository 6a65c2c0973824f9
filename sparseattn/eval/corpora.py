"""Bundled public-domain texts (sources and cuts in ``texts/SOURCES.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..core.errors import InvalidParameterError

TEXT_DIR = Path(__file__).parent / "texts"


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


@cache
def load_text(name: str) -> str:
    """The full text of a bundled corpus by name."""
    if name not in CORPORA:
        raise InvalidParameterError(f"unknown text {name!r}; bundled texts: {', '.join(CORPORA)}")
    return (TEXT_DIR / CORPORA[name].file).read_text(encoding="utf-8")
