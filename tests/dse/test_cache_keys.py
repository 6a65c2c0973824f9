"""The DSE caches are keyed by the content of their inputs: a text file overwritten since a table or a Q/K/V
capture was made keys a new one, never the old values (nll 4.11 reused where the new text gives 3.27)."""

from __future__ import annotations

from sparseattn.dse import AccuracyTable
from sparseattn.dse.qkv import qkv_path
from sparseattn.dse.space import AccuracySpec


def test_an_overwritten_text_file_keys_new_caches(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("the first text, about whales and the sea " * 50)
    spec = AccuracySpec(text=str(text), n_tokens=64, layers=[2], cache_dir=str(tmp_path / "cache"))
    before = AccuracyTable(spec, "topk", [2]).path, qkv_path(spec)
    text.write_text("an entirely different text about railways and coal " * 50)
    after = AccuracyTable(spec, "topk", [2]).path, qkv_path(spec)
    assert before[0] != after[0] and before[1] != after[1]
    text.write_text("the first text, about whales and the sea " * 50)  # the same content again: the same keys
    assert (AccuracyTable(spec, "topk", [2]).path, qkv_path(spec)) == before
