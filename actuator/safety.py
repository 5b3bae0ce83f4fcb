"""Replica safety rules (pure) and the in-memory scale-down stabilisation history.

Order applied by :func:`safe_replicas`, each rule adding a reason when it changes the number:

1. bounds: ``min_replicas <= n``, and ``n <= max_replicas`` when max is set (0: no max);
2. zero guard: 0 only if ``min_replicas`` is 0 AND ``allow_scale_to_zero``; else at least 1;
3. stabilisation (same accelerator only): scaling down goes no lower than the highest bounded
   recommendation of the last ``scale_down_window_s`` seconds (and never above the current count).
   When the optimizer already applied this floor (the allocation carries ``demand_replicas``, see
   :mod:`actuator.plan`) the rule is not applied here: the optimizer kept the held replicas on
   cards nobody else needs, or gave them up to another server, and the actuator must not hold
   cards the optimizer did not count;
4. scale-down limit (same accelerator only): remove at most ``max_scale_down_replicas`` and at most
   ``max_scale_down_percent`` of the current replicas this cycle;
5. ``max_replicas`` again: a hard bound wins over 3 and 4.

Example: current 10, recommendation 2, window max 6, limit 25% -> stabilised 6, limited
max(6, ceil(10 * 0.75)) = 8, target 8. When the accelerator changes, the new type's count is taken
as is (counts of different cards are not comparable); the Deployment's rollout strategy paces it.
"""

from __future__ import annotations

import math
from collections import deque

from actuator.settings import ActuatorSettings
from contract.collect import ManagedServer

HistoryKey = tuple[str, str]  # (namespace, deployment)


class ScaleHistory:
    """Bounded recommendations per Deployment: ``(time_s, accelerator, replicas)``; time is given."""

    def __init__(self) -> None:
        self._entries: dict[HistoryKey, deque[tuple[float, str, int]]] = {}

    def record(self, key: HistoryKey, now_s: float, accelerator: str, replicas: int, window_s: float) -> None:
        entries = self._entries.setdefault(key, deque())
        entries.append((now_s, accelerator, replicas))
        while entries and entries[0][0] <= now_s - window_s:
            entries.popleft()
        if not entries:
            del self._entries[key]

    def max_in_window(self, key: HistoryKey, accelerator: str, now_s: float, window_s: float) -> int | None:
        """Highest recommendation for ``accelerator`` in ``(now_s - window_s, now_s]``; None if none."""
        values = [
            n
            for t, acc, n in self._entries.get(key, ())
            if acc == accelerator and now_s - window_s < t <= now_s
        ]
        return max(values) if values else None

    def holds(self, key: HistoryKey, now_s: float, window_s: float) -> list[tuple[float, str, int]]:
        """Entries still in the window at ``now_s``, as ``(until_s, accelerator, replicas)``: an
        entry recorded at ``t`` holds while ``now < t + window_s`` (see :meth:`max_in_window`)."""
        return [
            (t + window_s, acc, n)
            for t, acc, n in self._entries.get(key, ())
            if now_s - window_s < t <= now_s
        ]

    def forget_except(self, keys: set[HistoryKey]) -> None:
        """Drop Deployments no longer managed, so memory follows the managed set."""
        for key in list(self._entries):
            if key not in keys:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


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
    bounded: int,
    current: int,
    *,
    same_accelerator: bool,
    window_max: int | None,
    window_s: float,
    server: ManagedServer,
    settings: ActuatorSettings,
) -> tuple[int, list[str]]:
    """Rules 3-5 on a bounded recommendation."""
    reasons: list[str] = []
    n = bounded
    if same_accelerator and n < current:
        if window_max is not None and window_max > n:
            held = min(current, window_max)
            reasons.append(
                f"scale-down held at {held} (not {n}): highest recommendation in the last "
                f"{window_s:g}s stabilisation window"
            )
            n = held
        floor = scale_down_floor(current, settings)
        if n < floor:
            reasons.append(f"scale-down limited to {current}->{floor} this cycle (asked {n})")
            n = floor
    if server.max_replicas and n > server.max_replicas:
        reasons.append(f"lowered {n}->{server.max_replicas} by max_replicas (hard bound)")
        n = server.max_replicas
    return n, reasons
