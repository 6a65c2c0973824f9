"""The training path of a sparse method: the **selection** without gradient, the **attend** step with it.

SOFA's pre-deployment flow fine-tunes the model with the sparse attention in place ("top-k fine-tune", SOFA
§V-A, Fig. 16). Its selection is discrete, so it runs bit-accurately under ``torch.no_grad`` on detached Q and K
(:func:`~sparseattn.core.driver.select_pairs`: the method's own predict and select steps, without the work done
only for its trace); the kept pairs then go to one differentiable attention over them:

* ``"sdpa"``: PyTorch's fused ``scaled_dot_product_attention`` with the kept-pair mask (any device);
* ``"flex"``: FlexAttention with a ``BlockMask`` of the selection's kept blocks and a ``mask_mod`` that keeps
  exactly the kept pairs inside them (GPU: compiled, it skips the unkept blocks; its backward needs CUDA);
* ``"auto"`` (default): ``flex`` on CUDA, ``sdpa`` elsewhere.

Both compute the softmax over the kept pairs times V in the reference's compute dtype (float32, float64 for
float64 inputs), which is what every differentiable method's attend step computes (SOFA's SU-FA is that softmax
in another order, PADE ``formal="exact"`` and the baselines are it directly), so the forward equals the reference
method's output up to float rounding (``tests/train/test_attend.py``). A row with no kept pair outputs zeros (as
``star_block`` does). Methods whose reference output is computed from quantised operands refuse, as they refuse
gradients (:meth:`~sparseattn.core.driver.Method.check_differentiable`).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Literal

import torch
import torch.nn.functional as F

from ..core.attention import compute_dtype
from ..core.call import AttentionCall
from ..core.driver import Method, select_pairs
from ..core.errors import InvalidParameterError
from ..core.selection import Selection

Backend = Literal["auto", "sdpa", "flex"]
FLEX_BLOCK = 128  # FlexAttention's default block size (torch.nn.attention.flex_attention)


def resolve_backend(backend: Backend, device: torch.device) -> Literal["sdpa", "flex"]:
    """The attend backend ``backend`` means on ``device`` (``auto``: flex on CUDA, sdpa elsewhere)."""
    if backend not in ("auto", "sdpa", "flex"):
        raise InvalidParameterError(f"backend must be 'auto', 'sdpa' or 'flex', got {backend!r}")
    if backend == "auto":
        return "flex" if device.type == "cuda" else "sdpa"
    return backend


def select_without_grad(method: Method, call: AttentionCall) -> Selection:
    """The method's selection on detached Q, K, V (bit-accurate: its own predict and select steps)."""
    detached = replace(call, q=call.q.detach(), k=call.k.detach(), v=call.v.detach())
    with torch.no_grad():
        return select_pairs(method, detached)


def sdpa_kept(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    """Softmax over the kept pairs ``keep [B, H, Nq, Nk]`` of ``scale q k^T``, times V, by masked SDPA in the
    compute dtype; rows that keep nothing give zeros. Differentiable in ``q``, ``k`` and ``v``."""
    dt = compute_dtype(q.dtype)
    empty = ~keep.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q.to(dt), k.to(dt), v.to(dt), attn_mask=keep | empty, scale=scale,
                                         enable_gqa=q.shape[1] != k.shape[1])
    return out.masked_fill(empty, 0.0).to(q.dtype)


def flex_kept(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, selection: Selection, scale: float,
              block: int = FLEX_BLOCK) -> torch.Tensor:
    """The same attention by FlexAttention: the selection's kept ``block x block`` blocks (``Selection.blocks``)
    as the ``BlockMask``, the kept pairs inside them as its ``mask_mod``. Compiled on CUDA; eager elsewhere
    (forward only: FlexAttention has no CPU backward)."""
    from torch.nn.attention import flex_attention as fa

    from ..kernels.flex import compiled_flex_attention

    keep = selection.keep.expand(q.shape[0], q.shape[1], q.shape[2], k.shape[2]).contiguous()
    blocks = selection.blocks(block, block, order="index")

    def mask_mod(b, h, q_idx, kv_idx):
        return keep[b, h, q_idx, kv_idx]

    mask = fa.BlockMask.from_kv_blocks(blocks.kv_num_blocks, blocks.kv_indices, BLOCK_SIZE=(block, block),
                                       mask_mod=mask_mod, seq_lengths=(q.shape[2], k.shape[2]))
    dt = compute_dtype(q.dtype)
    gqa = q.shape[1] != k.shape[1]
    if q.is_cuda:
        out = compiled_flex_attention()(q.to(dt), k.to(dt), v.to(dt), block_mask=mask, scale=scale, enable_gqa=gqa)
    else:
        with warnings.catch_warnings():  # eager FlexAttention warns that it is a slow reference; we know
            warnings.simplefilter("ignore", UserWarning)
            out = fa.flex_attention(q.to(dt), k.to(dt), v.to(dt), block_mask=mask, scale=scale, enable_gqa=gqa)
    return out.to(q.dtype)


def train_attention(method: Method, call: AttentionCall, backend: Backend = "auto") -> tuple[torch.Tensor,
                                                                                            Selection]:
    """``(output [B, H, Nq, D], selection)`` of ``method`` on ``call``: the selection without gradient, then
    attention over the kept pairs with it (see the module docstring)."""
    selection = select_without_grad(method, call)
    if resolve_backend(backend, call.q.device) == "flex":
        out = flex_kept(call.q, call.k, call.v, selection, call.scale)
    else:
        out = sdpa_kept(call.q, call.k, call.v, selection.keep, call.scale)
    return out, selection
