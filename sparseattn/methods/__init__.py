"""Reference methods, one module per method family, each registered by name (see ``registry``)."""

from . import a3, blocksparse, dense, dota, elsa, energon, oracle, pade, sanger, sofa, spatten  # noqa: F401  (registration)
from .registry import AttentionCall, MethodParams, get_method, method_names, parse_params, register

__all__ = ["AttentionCall", "MethodParams", "get_method", "method_names", "parse_params", "register"]
