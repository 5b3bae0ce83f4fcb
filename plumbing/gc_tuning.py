"""Garbage-collector settings for the services: fewer, cheaper collections per cycle.

Called once by :func:`plumbing.main.run_service`, after the imports and the settings,
before the service serves. A cycle at 1,000 Deployments parses and builds a few hundred thousand
short-lived containers (Deployment JSON, PromQL answers, the pydantic bodies between the
containers), nearly all freed by reference counting, none in cycles that matter. With CPython's
default thresholds (700, 10, 10) every 700 net allocations start a young collection, and every
few dozen of those a full one that walks every object alive, the ~50,000-110,000 created by the
imports (kubernetes client, pydantic, aiohttp, ortools) included. benchmarks/profile_cycle.py
measured ~1.0-1.4 s of collection in ~2.4-3.5 CPU s of one cycle's Python (all four services'
work in one process, 1,000 Deployments); on 2 shared cores that CPU is taken from kube-apiserver.

Two changes, neither of which changes what is collected, only when:

- ``gc.freeze()``: what exists at start-up (modules, classes, settings) moves to the permanent
  generation, which collections no longer walk; it is never garbage anyway.
- ``gc.set_threshold(YOUNG_THRESHOLD, 10, 10)``: a young collection every 200,000 net new
  containers instead of 700. The count grows only by objects still alive or kept by a cycle (the
  rest is freed by reference counting and counted off), so what a cycle holds at its peak (the
  parsed Deployment list, ~33,000 tracked containers at 1,000, and the pydantic bodies) mostly
  no longer starts one. Cyclic garbage waits longer: at
  most that many young objects, against the ~100-200 MiB each service holds; the harness's peak
  RSS moved from 283 to 287 MiB. Measured per cycle (all four services' Python in one process,
  1,000 Deployments): 50,000 left 80-200 ms of collection, 100,000 35-125 ms, 200,000 none.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 200_000
"""Net container allocations between young collections (CPython's default: 700)."""


def tune_gc() -> None:
    """Freeze what start-up created and raise the young generation's threshold."""
    gc.collect()  # the start-up garbage goes now, not into the permanent generation
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
