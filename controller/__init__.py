"""The controller: runs the cycle collect -> optimize -> act on a timer and on ``GET /invoke``.

``cycle.CycleRunner.run_cycle(now_s)`` is the cycle; ``loop.CycleLoop`` the timer with coalescing;
``app`` the HTTP surface (/invoke, /healthz, /readyz, /metrics). Shared plumbing for all four
services lives in :mod:`controller.common`.
"""
