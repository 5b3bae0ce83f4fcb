"""The performance model of one vLLM replica and the sizing built on it (pure numpy/scipy).

Modules, bottom up: :mod:`.service_time` (S(n) and latency forms of the three inferno perf
schemas), :mod:`.states` and :mod:`.queue` (the replica's birth-death chain, vectorised over rows),
:mod:`.latency` (mean ITL/TTFT per row), :mod:`.tail` (exact wait tail, TTFT percentiles),
:mod:`.sizing` (largest per-replica rate meeting a class's targets), :mod:`.minute` (the
busy-minute rate a minute-level TTFT target sizes for), :mod:`.batch` (batch size choice),
:mod:`.predict` (a replica's prediction at a given rate). Caller:
:mod:`optimizer.candidates`, and the load-emulator benchmark through :func:`predict`.
"""

from optimizer.model.predict import Prediction, predict, predict_many, predict_requests

__all__ = ["Prediction", "predict", "predict_many", "predict_requests"]
