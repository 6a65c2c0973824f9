"""Shared types and numerics: shapes, traces, results, validation, quantisation, bit-level codes."""

from .bits import (
    bit_length,
    bit_planes,
    floor_log2,
    leading_one,
    leading_zero_count,
    plane_weights,
    recompose,
    truncated_keys,
)
from .errors import InvalidInputError, InvalidParameterError, MissingAssetError, SparseAttnError
from .quant import QuantizedTensor, quantize_symmetric
from .result import SparseResult
from .shape import Shape, valid_keys_per_row, valid_mask
from .validation import validate_qkv
from .workload import OpKey, Per, SparsityProfile, Workload, total

__all__ = [
    "InvalidInputError",
    "InvalidParameterError",
    "MissingAssetError",
    "OpKey",
    "Per",
    "QuantizedTensor",
    "Shape",
    "SparseAttnError",
    "SparseResult",
    "SparsityProfile",
    "Workload",
    "bit_length",
    "bit_planes",
    "floor_log2",
    "leading_one",
    "leading_zero_count",
    "plane_weights",
    "quantize_symmetric",
    "recompose",
    "total",
    "truncated_keys",
    "valid_keys_per_row",
    "valid_mask",
    "validate_qkv",
]
