"""The load of a server at zero replicas: its demand query decides (pure).

Called by :mod:`collector.assemble` for each server whose scale target has 0 replicas. At zero
there is no vLLM pod, so no vLLM metric: the signal is the server's own PromQL, the annotation
``inferno.server/demand-query``, whose value is the demand in **requests per second** reaching
the server's front door: the rate of a gateway's or an ingress's request counter for that model
(``sum(rate(inferno_gateway_requests_total{namespace="a",deployment="llama"}[1m]))``), or a queue
gauge over the seconds it may wait (``sum(gateway_queued_requests{model="llama"}) / 30``).
:mod:`collector.core` evaluates it, only for servers at zero, and hands the value in.

===================  ========================================================================
demand (req/s)       load this cycle
===================  ========================================================================
> 0                  trusted, ``demand * 60`` rpm (source ``demand``): the optimizer gives it at
                     least one replica, so the first replica comes back in this cycle
0                    trusted zero load: it stays at zero
missing (no series,  the usual chain (labels, last known): with nothing trusted the server is
failed, NaN)         kept as it is, at zero. Missing data never wakes a server and never scales
                     one to zero; and a missing vLLM metric (there are none at zero) never
                     blocks a wake-up the demand shows
===================  ========================================================================

Token sizes for a wake-up come from the labels or the last known load (kept for
``last_known_max_age_s``), else from the settings' defaults: a wake-up never waits for them.
E.g. 0.5 req/s of demand -> 30 rpm at the last known 200/500 tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from collector.labels import LabelLoad
from collector.load import SECONDS_PER_MINUTE, KnownLoad, LoadEstimate, ResolvedLoad


@dataclass(frozen=True)
class Demand:
    """The demand query's answer: requests per second, or None with why it is missing."""

    rps: float | None
    note: str = ""


def demand_from_answer(result: list[dict[str, object]] | BaseException) -> Demand:
    """A PromQL instant vector -> the sum of its samples; an empty vector, an error or a value
    that is NaN, infinite or negative is missing (never zero)."""
    if isinstance(result, BaseException):
        return Demand(None, f"demand query failed: {result}")
    if not result:
        return Demand(None, "demand query returned no series")
    total = 0.0
    for sample in result:
        value = sample.get("value")
        try:
            number = float(value[1])  # type: ignore[index]
        except (TypeError, ValueError, IndexError):
            return Demand(None, f"demand query returned a malformed sample: {sample!r}")
        if not math.isfinite(number) or number < 0:
            return Demand(None, f"demand query returned {number!r}")
        total += number
    return Demand(total)


def load_at_zero(
    resolved: ResolvedLoad,
    demand: Demand,
    labels: LabelLoad,
    last: KnownLoad | None,
    default_tokens: tuple[float, float],
) -> ResolvedLoad:
    """The load of a server at zero replicas, given its demand (see the module docstring)."""
    if demand.rps is None:
        return ResolvedLoad(resolved.load, resolved.source, resolved.trusted, (*resolved.notes, demand.note))
    if demand.rps == 0:
        return ResolvedLoad(
            LoadEstimate(0.0, 0.0, 0.0), "demand", True, ("demand query: 0 req/s at zero replicas",)
        )
    known = last.load if last is not None else None
    in_tokens = labels.avg_in_tokens or (known.avg_in_tokens if known else None) or default_tokens[0]
    out_tokens = labels.avg_out_tokens or (known.avg_out_tokens if known else None) or default_tokens[1]
    rpm = demand.rps * SECONDS_PER_MINUTE
    note = f"demand query: {demand.rps:g} req/s at zero replicas: wake up ({rpm:g} rpm)"
    return ResolvedLoad(LoadEstimate(rpm, in_tokens, out_tokens), "demand", True, (note,))
