"""Rollout deadlock guard: a pod-template change must not wait forever for a surge card (pure).

Caller: :mod:`actuator.plan`, for every action whose patch rolls pods. A RollingUpdate with
``maxSurge > 0`` (Kubernetes' default is 25%) first starts extra pods of the new template. When
the new pods need the same card type as the old ones (batch-size change, or a unit change within
one type such as A100 -> 2xA100) and every card of that type is taken, the surge pod stays
Pending forever and the rollout never progresses. Type moves do not deadlock: the new ReplicaSet
never exceeds its ``replicas``, all of which the optimizer allocated on the new type.

Free cards of a type = the solution's capacity minus the cards its allocations use (minus replicas
the actuator keeps above the allocation, e.g. the scale-down limit); rollouts allowed earlier in
the same cycle take their surge cards from it. Unknown (unlimited mode, type not in the
capacity): not blocked.

Choice when blocked: the pod-template change is deferred (replicas are still set; a unit change,
whose replicas belong to the new template, is skipped whole), with the reason, retried every
cycle. This respects the user's strategy and never lowers serving capacity; patching the strategy
to ``maxSurge: 0, maxUnavailable: 1`` would progress, but takes a pod out of service and
silently rewrites the user's Deployment. The reason tells the user to set that strategy (as the
samples do) to let such rollouts proceed in place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from contract.solution import Solution

DEFAULT_MAX_SURGE = "25%"
_PERCENT = re.compile(r"^([0-9]{1,3})%$")


def surge_pods(deployment: Mapping[str, Any], replicas: int) -> int:
    """Extra pods a rollout to ``replicas`` may start: ``maxSurge`` of a RollingUpdate (an int, or a
    percentage rounded up, as Kubernetes does), 0 for Recreate. E.g. 25% of 3 -> 1; 0 -> 0."""
    spec = deployment.get("spec")
    strategy = spec.get("strategy") if isinstance(spec, Mapping) else None
    strategy = strategy if isinstance(strategy, Mapping) else {}
    if strategy.get("type", "RollingUpdate") == "Recreate":
        return 0
    rolling = strategy.get("rollingUpdate")
    raw = rolling.get("maxSurge", DEFAULT_MAX_SURGE) if isinstance(rolling, Mapping) else DEFAULT_MAX_SURGE
    if isinstance(raw, bool):
        raw = DEFAULT_MAX_SURGE
    if isinstance(raw, int):
        return max(raw, 0)
    match = _PERCENT.match(str(raw).strip())
    percent = int(match.group(1)) if match else 25  # the API server rejects others; assume default
    return math.ceil(replicas * percent / 100 - 1e-9)


def free_cards(solution: Solution) -> dict[str, int] | None:
    """Cards per type left after the solution's allocations; None when capacity is unlimited."""
    if solution.unlimited:
        return None
    return {t: n - solution.cards_by_type.get(t, 0) for t, n in solution.capacity_by_type.items()}
