"""Token windows of the training and held-out texts, and which window each step trains on.

A text is tokenised once and cut into non-overlapping windows of ``tokens`` tokens: the model's BOS (when it has
one) and the next ``tokens - 1`` (or ``tokens``) text tokens, as
:meth:`~sparseattn.models.loader.LoadedModel.encode` builds the window at the start of a text. Step ``s``
(1-based) of process ``r`` among ``world`` trains on window ``order[i mod n]``
with ``i = (s - 1) world + r``, where ``order`` is a permutation of the ``n`` windows drawn from ``seed`` and
the epoch ``i // n``: the window of a step depends on nothing but its index, so a resumed or extended run trains
on exactly the windows an uninterrupted one would.
"""

from __future__ import annotations

import hashlib

import torch

from ..core.errors import InvalidParameterError
from ..eval.corpora import load_text, text_label


def text_windows(tokenizer: object, text: str, tokens: int, what: str, limit: int | None = None) -> torch.Tensor:
    """``[n, tokens]`` token ids of the first ``limit`` (default: all) whole windows of ``text``."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False).input_ids  # type: ignore[operator]
    bos = getattr(tokenizer, "bos_token_id", None)
    head = [bos] if bos is not None else []
    body = tokens - len(head)
    n = len(ids) // body
    if n < 1:
        raise InvalidParameterError(f"{what} has {len(ids)} tokens; one window of tokens={tokens} needs {body} "
                                    "besides BOS (give a longer text or fewer tokens)")
    if limit is not None:
        if n < limit:
            raise InvalidParameterError(f"{what} has {n} whole windows of {tokens} tokens, {limit} were asked for")
        n = limit
    rows = torch.tensor(ids[: n * body], dtype=torch.long).view(n, body)
    return torch.cat([torch.tensor(head, dtype=torch.long).expand(n, len(head)), rows], dim=1)


def window_index(step: int, rank: int, world: int, n: int, seed: int) -> int:
    """The window step ``step`` (1-based) of process ``rank`` trains on (see the module docstring)."""
    i = (step - 1) * world + rank
    epoch, pos = divmod(i, n)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return int(torch.randperm(n, generator=g)[pos])


def read_text(text: str, what: str) -> tuple[str, str, str]:
    """``(content, label, sha256 of the content)`` of a bundled name, file or string; errors name ``what``."""
    try:
        content = load_text(text)
    except InvalidParameterError as err:
        raise InvalidParameterError(f"{what}: {err}") from None
    return content, text_label(text), hashlib.sha256(content.encode("utf-8")).hexdigest()
