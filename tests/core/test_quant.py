import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sparseattn.core import InvalidInputError, InvalidParameterError, quantize_symmetric

floats = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)
arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=5), elements=floats)


@given(arrays, st.integers(2, 16), st.sampled_from(["tensor", "head", "token"]))
def test_quantisation_error_is_at_most_half_a_step(a, bits, granularity):
    x = torch.from_numpy(a)
    qt = quantize_symmetric(x, bits, granularity)
    qmax = 2 ** (bits - 1) - 1
    assert int(qt.values.abs().max()) <= qmax
    err = (qt.dequantize() - x.double()).abs()
    assert bool((err <= qt.scale.double() * 0.5 * (1 + 1e-5) + 1e-30).all())
    expected_scale_shape = {"tensor": (1, 1, 1, 1), "head": (*x.shape[:2], 1, 1), "token": (*x.shape[:3], 1)}
    assert tuple(qt.scale.shape) == expected_scale_shape[granularity]


@given(arrays, st.integers(2, 16), st.sampled_from(["tensor", "head", "token"]))
def test_the_largest_magnitude_of_each_group_maps_to_qmax(a, bits, granularity):
    x = torch.from_numpy(a)
    qt = quantize_symmetric(x, bits, granularity)
    dims = {"tensor": (0, 1, 2, 3), "head": (2, 3), "token": (3,)}[granularity]
    amax = x.abs().amax(dim=dims, keepdim=True)
    vmax = qt.values.abs().to(torch.int64).amax(dim=dims, keepdim=True)
    expected = torch.where(amax > 0, torch.full_like(vmax, 2 ** (bits - 1) - 1), torch.zeros_like(vmax))
    assert torch.equal(vmax, expected)


def test_integer_dtype_follows_bits():
    x = torch.randn(1, 1, 4, 4)
    assert quantize_symmetric(x, 8).values.dtype == torch.int8
    assert quantize_symmetric(x, 4).values.dtype == torch.int8
    assert quantize_symmetric(x, 16).values.dtype == torch.int16


def test_zero_tensor_quantises_to_zero_with_unit_scale():
    qt = quantize_symmetric(torch.zeros(1, 2, 3, 4), 8, "head")
    assert int(qt.values.abs().sum()) == 0 and bool((qt.scale == 1).all())


@pytest.mark.parametrize("bits", [1, 17, 8.0, True])
def test_bad_bits(bits):
    with pytest.raises(InvalidParameterError, match="bits"):
        quantize_symmetric(torch.randn(2, 2), bits)


def test_bad_granularity_and_input():
    with pytest.raises(InvalidParameterError, match="granularity"):
        quantize_symmetric(torch.randn(1, 1, 2, 2), 8, "channel")
    with pytest.raises(InvalidInputError, match="NaN/Inf"):
        quantize_symmetric(torch.tensor([1.0, float("nan")]), 8)
    with pytest.raises(InvalidParameterError, match="rank >= 3"):
        quantize_symmetric(torch.randn(4, 4), 8, "head")
