"""The encoder step: the bundled encoder (all-MiniLM-L6-v2, a BERT) with every method -- embedding cosine to dense
and retrieval agreement (the papers' BERT rows are bidirectional) -- and its traces. Units: ``dense`` and every
method."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...report.render import encoder_section
from ...report.rows import EncoderRow, RunView
from .. import progress
from ..config import RunConfig
from ..step import Context, Done, Step
from .accuracy import save_trace


def encoder_texts(cfg: RunConfig, enc) -> tuple[list[str] | None, list[str], str]:
    """The texts the encoder's passages come from: the run's own text (``--text``) when it is not a bundled one and
    holds enough tokens for the passages, else every bundled text; with their labels and, when the run's text could
    not be used, why."""
    from ...eval.corpora import load_text, text_label, text_names

    if cfg.text in text_names():
        return None, text_names(), ""
    n = len(enc.tokenizer(load_text(cfg.text), add_special_tokens=False, verbose=False).input_ids)
    if n >= cfg.passages * cfg.encoder_tokens:
        return [cfg.text], [text_label(cfg.text)], ""
    return None, text_names(), (f"{text_label(cfg.text)} has {n:,} encoder tokens, too few for {cfg.passages} "
                                f"passages of {cfg.encoder_tokens}; the encoder used the bundled texts")


class Encoder(Step):
    """Embedding cosine and retrieval agreement of every method on the encoder, with its traces; the passages come
    from the run's text when it is the user's own (:func:`encoder_texts`)."""

    name: ClassVar[str] = "encoder"
    title: ClassVar[str] = "Accuracy on the encoder"
    unit_name: ClassVar[str] = "method"
    tables: ClassVar[dict[str, Any]] = {"encoder": EncoderRow}

    def enabled(self, cfg: RunConfig) -> bool:
        return bool(cfg.encoder)

    def units(self, cfg: RunConfig) -> list[str]:
        return ["dense", *cfg.methods]

    def unit_s(self, cfg: RunConfig) -> float:
        return progress.ENCODER_UNIT_S_PER_2K_TOKENS * cfg.passages * cfg.encoder_tokens / 2048

    def fixed_s(self, cfg: RunConfig) -> float:
        return progress.LOAD_MODEL_S

    def start(self, cfg: RunConfig) -> str:
        return f"loading {cfg.encoder}"

    def run(self, ctx: Context) -> Iterator[Done]:
        from ...eval.embedding import _embed_all, embedding_fidelity, passages

        cfg, enc = ctx.cfg, ctx.model(str(ctx.cfg.encoder))
        texts, labels, why = encoder_texts(cfg, enc)
        items = passages(enc, cfg.encoder_tokens, cfg.passages, texts)
        dense = _embed_all(enc, items)
        for method in ["dense", *cfg.methods]:
            if ctx.done("encoder", method):
                continue
            ctx.tick(f"encoder: {method} on {len(items)} passages")
            r = embedding_fidelity(enc, method, cfg.encoder_tokens, per_text=cfg.passages, texts=texts, dense=dense,
                                   capture_traces=True)
            row = {**r.to_dict(), "texts": labels, **({"texts_note": why} if why else {}),
                   "trace": save_trace(ctx.out, f"encoder-{method}", r.traces)}
            yield Done(method, EncoderRow.model_validate(row))

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        return encoder_section(view, figs)
