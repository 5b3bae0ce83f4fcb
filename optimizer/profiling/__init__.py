"""Fitting perf parameters from measured request timelines (pure numpy/scipy, no I/O).

Modules: :mod:`.timeline` (what a client measured: one :class:`RequestTimeline` per request, and
the per-schema features of each request's decode interval), :mod:`.fit` (robust least squares per
schema, residuals, R^2), :mod:`.levels` (per sweep level throughput, the batch seen, saturation),
:mod:`.verdict` (accept or refuse a fit, with typed reasons, and the model-data entry). Caller:
the profiler (``python -m advisor profile``), which does the I/O; the tests feed it timelines
from the emulated engine at virtual time.
"""
