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


def test_own_text_from_a_file_or_a_string_equals_the_bundled_one(smollm, tmp_path):
    from sparseattn.eval import perplexity

    path = tmp_path / "mine.txt"
    path.write_text(load_text("sotu"), encoding="utf-8")
    bundled = perplexity(smollm, "sotu", 64)
    from_file = perplexity(smollm, path, 64)
    from_str_path = perplexity(smollm, str(path), 64)
    from_string = perplexity(smollm, load_text("sotu"), 64)
    assert bundled.ppl == from_file.ppl == from_str_path.ppl == from_string.ppl
    assert from_file.text == str(path) and from_string.text.startswith("<string of")


def test_bad_texts_get_clear_errors(smollm, tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Café au lait, naïve façade. ".encode("latin-1") * 50)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    short = tmp_path / "short.txt"
    short.write_text("Too short a text.")
    with pytest.raises(InvalidParameterError, match="is not UTF-8"):
        load_text(latin1)
    with pytest.raises(InvalidParameterError, match="is empty"):
        load_text(str(empty))
    with pytest.raises(InvalidParameterError, match="does not exist"):
        load_text(tmp_path / "none.txt")
    with pytest.raises(InvalidParameterError, match="only 5 tokens"):
        smollm.encode(load_text(short), 64)
    huge = "word " * 2_000_000  # 10 MB of text
    with pytest.raises(InvalidParameterError) as info:
        smollm.encode(huge[:100] + "x", 10_000)  # context exceeded: message short
    assert len(str(info.value)) < 300
    with pytest.raises(InvalidParameterError) as info:
        load_text("x" * 10_000_000)  # one 10 MB "word": neither a name nor a file
    assert len(str(info.value)) < 400 and "10,000,000 characters" in str(info.value)


def test_cli_takes_a_text_file_and_checks_it_before_loading_the_model(tmp_path):
    from typer.testing import CliRunner

    from sparseattn.cli import app

    short = tmp_path / "short.txt"
    short.write_text("Only a few words here.")
    result = CliRunner().invoke(app, ["eval", "--text", str(short), "--tokens", "64"], terminal_width=200)
    assert result.exit_code == 2 and "the text has only" in result.output
    result = CliRunner().invoke(app, ["run", "--texts", str(tmp_path / "nope.txt")], terminal_width=200)
    assert (result.exit_code == 2 and "does not exist" not in result.output) or "unknown text" in result.output
