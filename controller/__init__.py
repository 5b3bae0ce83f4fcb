"""The controller: runs the cycle collect -> optimize -> act on a timer and on ``GET /invoke``.

``cycle.CycleRunner.run_cycle(now_s)`` is the cycle; ``loop.CycleLoop`` the timer with coalescing;
``app`` the HTTP surface (/invoke, /healthz, /readyz, /metrics). Plumbing shared by all four
services lives in :mod:`plumbing`, their wire types in :mod:`contract`.
"""
