"""Reference methods, one module per method family, each registered by name (see ``registry``)."""

from . import a3, blocksparse, dense, dota, elsa, energon, oracle, pade, sanger, sofa, spatten  # noqa: F401  (registration)
from .registry import AttentionCall, Knob, MethodParams, get_method, knobs_of, method_names, parse_params, register

__all__ = ["AttentionCall", "Knob", "MethodParams", "get_method", "knobs_of", "method_names", "parse_params",
           "register"]
