import math

import pytest
import torch

import sparseattn
from sparseattn.core import InvalidInputError, InvalidParameterError, validate_qkv
from tests.helpers import random_qkv


def test_valid_inputs_give_shape_and_default_scale():
    q, k, v = random_qkv(b=2, h=6, hkv=3, nq=5, nk=7, d=16)
    shape, scale = validate_qkv(q, k, v, causal=True)
    assert (shape.batch, shape.heads, shape.kv_heads, shape.q_len, shape.k_len, shape.head_dim) == (2, 6, 3, 5, 7, 16)
    assert shape.causal and shape.group_size == 2 and shape.offset == 2
    assert scale == pytest.approx(1 / math.sqrt(16))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda q, k, v: (q[0], k, v), "q must have rank 4"),
        (lambda q, k, v: (q, k.unsqueeze(0), v), "k must have rank 4"),
        (lambda q, k, v: (q.to(torch.int32), k, v), "floating dtype"),
        (lambda q, k, v: (q, k.double(), v), "share one dtype"),
        (lambda q, k, v: (q[:, :, :0], k, v), "must not be empty"),
        (lambda q, k, v: (q, k[:, :, :0], v[:, :, :0]), "must not be empty"),
        (lambda q, k, v: (q[:1], k, v), "batch sizes differ"),
        (lambda q, k, v: (q, k[..., :8], v), "k head_dim"),
        (lambda q, k, v: (q, k, v[..., :8]), "v head_dim"),
        (lambda q, k, v: (q, k, v[:, :1]), "same number of heads"),
        (lambda q, k, v: (q, k, v[:, :, :3]), "same sequence length"),
        (lambda q, k, v: (q[:, :3], k, v), "multiple of key/value heads"),
        (lambda q, k, v: ("q", k, v), "must be a torch.Tensor"),
    ],
)
def test_bad_tensors_raise_clear_errors(mutate, needle):
    q, k, v = random_qkv(b=2, h=4, hkv=2, nq=6, nk=6, d=16)
    with pytest.raises(InvalidInputError, match=needle):
        validate_qkv(*mutate(q, k, v), causal=False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_non_finite_values_are_rejected(bad, which):
    tensors = list(random_qkv())
    tensors[which] = tensors[which].clone()
    tensors[which][0, 0, 1, 2] = bad
    with pytest.raises(InvalidInputError, match="NaN/Inf"):
        sparseattn.attention(*tensors, method="dense")


def test_causal_needs_q_not_longer_than_k():
    q, k, v = random_qkv(nq=9, nk=8)
    with pytest.raises(InvalidInputError, match="q_len <= k_len"):
        validate_qkv(q, k, v, causal=True)
    validate_qkv(q, k, v, causal=False)  # fine without causality


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), True])
def test_bad_scale(scale):
    q, k, v = random_qkv()
    with pytest.raises(InvalidParameterError, match="scale"):
        validate_qkv(q, k, v, causal=False, scale=scale)


def test_causal_must_be_bool():
    q, k, v = random_qkv()
    with pytest.raises(InvalidParameterError, match="causal must be a bool"):
        validate_qkv(q, k, v, causal=1)


def test_errors_are_value_errors():
    assert issubclass(InvalidInputError, ValueError) and issubclass(InvalidParameterError, ValueError)
