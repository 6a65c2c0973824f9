"""Reference methods, one module per method family, each registered by name (see ``registry``)."""

from . import dense, oracle, pade, sofa  # noqa: F401  (registration side effects)
from .registry import AttentionCall, MethodParams, get_method, method_names, parse_params, register

__all__ = ["AttentionCall", "MethodParams", "get_method", "method_names", "parse_params", "register"]
