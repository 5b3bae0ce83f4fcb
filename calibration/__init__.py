"""Online calibration: learn each (model, accelerator)'s performance from what vLLM measures.

Pure (numpy only). Modules, bottom up: :mod:`.observation` (one window of a source's vLLM
metrics and the screen that rejects bad ones), :mod:`.fit` (the two factors on the prior's fixed
and work parts that the windows identify), :mod:`.learner` (the guarded update of one (model,
accelerator): outliers, evidence window, bounds per update and in total, pin and reset).
"""

from calibration.fit import Fit, FitLimits, Window, fit, scaled
from calibration.learner import CalibrationReport, Limits, State, learned, update
from calibration.observation import Observation, Rejection, ScreenLimits, screen

__all__ = [
    "CalibrationReport",
    "Fit",
    "FitLimits",
    "Limits",
    "Observation",
    "Rejection",
    "ScreenLimits",
    "State",
    "Window",
    "fit",
    "learned",
    "scaled",
    "screen",
    "update",
]
