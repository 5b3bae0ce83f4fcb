"""The actuator's last-line replica rules (pure), each adding a reason when it changes the number.

Order applied (:func:`bounded_replicas`, then :func:`safe_replicas`):

1. bounds: ``min_replicas <= n``, and ``n <= max_replicas`` when max is set (0: no max);
2. zero guard: 0 only if ``min_replicas`` is 0 AND ``allow_scale_to_zero``; else at least 1;
3. scale-down step (same accelerator only): remove at most ``max_scale_down_replicas`` and at most
   ``max_scale_down_percent`` of the current replicas this cycle;
4. hold: a server the collector holds (fewer pods report metrics than are Ready) keeps at least
   its current replicas; the optimizer was asked so already, this is the last line;
5. ``max_replicas`` again: a hard bound wins over 3 and 4.

Example: current 10, recommendation 2, limit 25% -> limited max(2, ceil(10 * 0.75)) = 8, target 8.
When the accelerator changes, the new type's count is taken as is (counts of different cards are
not comparable); the Deployment's rollout strategy paces it.

The scale-down stabilisation window is not here: the controller keeps it (:mod:`controller.window`)
and the optimizer's allocation already holds what it holds, on cards no other server needs.
"""

from __future__ import annotations

import math

from actuator.settings import ActuatorSettings
from contract.collect import ManagedServer


def bounded_replicas(
    recommended: int, server: ManagedServer, settings: ActuatorSettings
) -> tuple[int, list[str]]:
    """Rules 1-2: the recommendation within min/max and the zero guard."""
    reasons: list[str] = []
    n = recommended
    if n < server.min_replicas:
        reasons.append(f"raised {n}->{server.min_replicas} by min_replicas")
        n = server.min_replicas
    if server.max_replicas and n > server.max_replicas:
        reasons.append(f"lowered {n}->{server.max_replicas} by max_replicas")
        n = server.max_replicas
    if n == 0 and not settings.allow_scale_to_zero:
        reasons.append("raised 0->1: scale to zero is not allowed (INFERNO_ACTUATOR_ALLOW_SCALE_TO_ZERO)")
        n = 1
    return n, reasons


def scale_down_floor(current: int, settings: ActuatorSettings) -> int:
    """Lowest count reachable from ``current`` in one cycle under the scale-down limits."""
    floor = 0
    if settings.max_scale_down_replicas:
        floor = max(floor, current - settings.max_scale_down_replicas)
    if 0 < settings.max_scale_down_percent < 100:
        floor = max(floor, math.ceil(current * (1 - settings.max_scale_down_percent / 100) - 1e-9))
    return min(floor, current)


def safe_replicas(
    bounded: int, current: int, *, same_accelerator: bool, server: ManagedServer, settings: ActuatorSettings
) -> tuple[int, list[str]]:
    """Rules 3-5 on a bounded recommendation."""
    reasons: list[str] = []
    n = bounded
    if same_accelerator and n < current:
        floor = scale_down_floor(current, settings)
        if n < floor:
            reasons.append(f"scale-down limited to {current}->{floor} this cycle (asked {n})")
            n = floor
    if server.hold is not None and n < current:
        reasons.append(f"held at {current} (asked {n}): not every Ready pod reports metrics")
        n = current
    if server.max_replicas and n > server.max_replicas:
        reasons.append(f"lowered {n}->{server.max_replicas} by max_replicas (hard bound)")
        n = server.max_replicas
    return n, reasons
