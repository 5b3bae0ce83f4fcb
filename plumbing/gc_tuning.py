"""Garbage-collector settings for the services: fewer, cheaper collections per cycle.

Called once by :func:`plumbing.main.run_service`, after the imports and the settings, before the
service serves. A cycle builds a few hundred thousand short-lived containers (Deployment JSON,
PromQL answers, pydantic bodies), nearly all freed by reference counting, so the garbage
collector's walks find little garbage, and on 2 shared cores their CPU is taken from
kube-apiserver. Neither change alters what is collected, only when:

- ``gc.freeze()``: what start-up created (modules, classes, settings) moves to the permanent
  generation, which collections do not walk; it is never garbage.
- ``gc.set_threshold(YOUNG_THRESHOLD, 10, 10)``: a young collection every 200,000 net new
  containers instead of 700, so what a cycle holds at its peak mostly starts none; cyclic garbage
  waits for at most that many young objects. Measurements: benchmarks/cycle.md, "Garbage-collector
  tuning".
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
