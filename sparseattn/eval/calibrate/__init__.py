"""Equal accuracy: each method's density knob calibrated to a loss budget on one text and judged on another.

* :mod:`.search` -- the sparsest on-budget setting of a monotone knob (bracketing, then bisection);
* :mod:`.scorer` -- a method's loss and density on one text window, cached by content;
* :mod:`.runner` -- one method at several budgets, secondary knobs on their grid, judged held-out;
* :mod:`.study` -- several methods of one model (``sparseattn calibrate``, the main job's step);
* :mod:`.iso` -- the equal-accuracy operating points of the bundled iso traces;
* :mod:`.density` -- the threshold oracle's delta for a target density on captured Q/K/V.
"""

from .density import gap_histogram, threshold_delta_for_density
from .runner import CalibrationRow, calibrate_method
from .scorer import DecoderScorer, EncoderScorer, Point, Scorer, default_cache_dir, scorer_for
from .search import Found, knob_coordinate, knob_value, search
from .study import BUDGETS, CALIB_TEXT, JUDGE_TEXT, calibrate_methods, window_scorer

__all__ = ["BUDGETS", "CALIB_TEXT", "JUDGE_TEXT", "CalibrationRow", "DecoderScorer", "EncoderScorer", "Found",
           "Point", "Scorer", "calibrate_method", "calibrate_methods", "default_cache_dir", "gap_histogram",
           "knob_coordinate", "knob_value", "scorer_for", "search", "threshold_delta_for_density", "window_scorer"]
