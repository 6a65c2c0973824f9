import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sparseattn.core import (
    InvalidInputError,
    bit_planes,
    floor_log2,
    leading_one,
    leading_zero_count,
    plane_weights,
    recompose,
)


def test_every_int8_value_recomposes_exactly_and_plane_zero_is_the_sign():
    x = torch.arange(-128, 128, dtype=torch.int16)
    planes = bit_planes(x, 8)
    assert planes.shape == (8, 256) and planes.dtype == torch.uint8
    assert torch.equal(recompose(planes), x.to(torch.int64))
    assert torch.equal(planes[0].bool(), x < 0)
    assert plane_weights(8).tolist() == [-128, 64, 32, 16, 8, 4, 2, 1]


@given(st.integers(2, 16), st.data())
def test_bit_planes_round_trip(bits, data):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    values = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=64))
    x = torch.tensor(values, dtype=torch.int32).view(-1, 1)
    planes = bit_planes(x, bits)
    assert set(planes.unique().tolist()) <= {0, 1}
    assert torch.equal(recompose(planes), x.to(torch.int64))
    for i, w in enumerate(plane_weights(bits).tolist()):  # MSB first, sign plane negative
        assert w == (-(2 ** (bits - 1)) if i == 0 else 2 ** (bits - 1 - i))


def test_bit_planes_reject_values_that_would_wrap():
    with pytest.raises(InvalidInputError, match=r"\[-8, 7\]"):
        bit_planes(torch.tensor([8]), 4)
    with pytest.raises(InvalidInputError, match="integer dtype"):
        bit_planes(torch.tensor([1.0]), 8)


@given(st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=64))
def test_leading_zero_count_matches_python_bit_length(values):
    x = torch.tensor(values, dtype=torch.int64)
    assert leading_zero_count(x, 16).tolist() == [16 - v.bit_length() for v in values]


@given(st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=1, max_size=64))
def test_leading_one_is_sign_times_floor_power_of_two(values):
    x = torch.tensor(values, dtype=torch.int64)
    expected = [0 if v == 0 else (1 if v > 0 else -1) * 2 ** (abs(v).bit_length() - 1) for v in values]
    assert leading_one(x).tolist() == expected
    nonzero = x[x != 0]
    if nonzero.numel():
        assert floor_log2(nonzero).tolist() == [abs(v).bit_length() - 1 for v in nonzero.tolist()]


def test_leading_one_worked_examples_from_sofa_fig7():
    assert leading_one(torch.tensor([6, 24, -5, 1, 0, 127])).tolist() == [4, 16, -4, 1, 0, 64]


def test_bit_code_errors():
    with pytest.raises(InvalidInputError, match="undefined for 0"):
        floor_log2(torch.tensor([0, 3]))
    with pytest.raises(InvalidInputError, match=r"\[0, 2\^8\)"):
        leading_zero_count(torch.tensor([-1]), 8)
    with pytest.raises(InvalidInputError, match=r"\[0, 2\^8\)"):
        leading_zero_count(torch.tensor([256]), 8)
