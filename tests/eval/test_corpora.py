import pytest

from sparseattn.core import InvalidParameterError
from sparseattn.eval import CORPORA, load_text, text_names


def test_bundled_texts_are_real_and_long_enough():
    assert text_names() == ["moby-dick", "sotu"]
    moby, sotu = load_text("moby-dick"), load_text("sotu")
    assert moby.startswith("CHAPTER 1. Loomings.\n\nCall me Ishmael.")
    assert sotu.startswith("Mr. President, Mr. Speaker")
    assert 100_000 < len(moby) < 300_000 and 60_000 < len(sotu) < 300_000
    assert CORPORA["sotu"].style != CORPORA["moby-dick"].style


def test_unknown_text_lists_the_bundled_ones():
    with pytest.raises(InvalidParameterError, match=r"unknown text 'hamlet'.*moby-dick, sotu"):
        load_text("hamlet")
