"""SOFA (MICRO'24) and STAR: DLZS prediction, SADS distributed sorting, SU-FA, RASS (see ``method``)."""

from . import method  # noqa: F401  (registers "sofa" and "star")
from .dlzs import dlzs_product, predict_keys, predict_scores
from .method import SofaParams
from .rass import rass_loads
from .sads import COMPARATORS_PER_STEP, bitonic_network, sads_select
from .sufa import sufa_attend

__all__ = [
    "COMPARATORS_PER_STEP",
    "SofaParams",
    "bitonic_network",
    "dlzs_product",
    "predict_keys",
    "predict_scores",
    "rass_loads",
    "sads_select",
    "sufa_attend",
]
