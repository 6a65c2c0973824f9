"""PADE (HPCA'26): bit-serial stage fusion, BUI guard filtering, BS-OOE, ISTA (see ``method``)."""

from . import method  # noqa: F401  (registers "pade")
from .bui import active_elements, bui_offsets, truncated_keys
from .ista import tile_order
from .method import PadeParams

__all__ = ["PadeParams", "active_elements", "bui_offsets", "tile_order", "truncated_keys"]
