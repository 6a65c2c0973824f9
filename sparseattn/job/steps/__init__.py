"""The steps of the main job, in the order they run and appear in the report: :data:`STEPS`, the one list. A new
step is one module here (a :class:`~sparseattn.job.step.Step`) and one line below."""

from __future__ import annotations

from ..step import Step
from .accuracy import Accuracy
from .calibration import Calibration
from .dse import Dse
from .encoder import Encoder
from .hardware import Hardware
from .kernels import Kernels
from .reproduce import Reproduce
from .spatial import Spatial

STEPS: tuple[Step, ...] = (
    Accuracy(),
    Encoder(),
    Hardware(),
    Reproduce(),
    Spatial(),
    Dse(),
    Kernels(),
    Calibration(),
)

__all__ = ["STEPS", "Step"]
