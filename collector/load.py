"""A server's load this cycle: what Prometheus says, and the fallback chain when it says nothing.

Called by :mod:`collector.assemble`, once per Deployment. Two steps:

1. :func:`observe` turns the readings of :mod:`collector.metrics` into an :class:`Observation`
   (each field ``None`` when missing, stale or garbage, with a note saying which).
2. :func:`resolve_load` walks the chain Prometheus -> load labels -> last known value (younger
   than ``last_known_max_age_s``) -> none, field by field, and says whether the result can be
   acted on (``trusted``).

Arrival rate (requests/min) from counters of *completions*::

    growth_rps = deriv(num_requests_waiting)
    arrival_rps = rate(request_success_total) + max(0, growth_rps)
                  + max(0, num_requests_waiting / backlog_drain_s - max(0, -growth_rps))

e.g. 10 completions/s while the queue grows by 2 requests/s is a demand of 12 req/s = 720 rpm.
A shrinking queue is not subtracted: while a backlog drains, the estimate stays at the completion
rate, so the server is not scaled down before its queue is empty. The last term drains a standing
queue: a server squeezed at its capacity completes exactly what arrives, its queue neither grows
nor shrinks, and without it the estimate (= what it can complete) would size it for exactly the
replicas that keep the backlog forever. 240 requests waiting with ``backlog_drain_s`` 120 add 2
req/s. A few requests waiting between iterations add a few hundredths. A queue that already
shrinks adds only what its drain lacks: its shrinking is served by completions, which the rate
counts already. E.g. 240 waiting, shrinking by 1.5 req/s: + (2 - 1.5) = 0.5 req/s, not 2 (the
same backlog counted twice keeps a server that has just caught up on a spike at 6 replicas where
its arrivals need 4, as in benchmark 4); shrinking by 3 req/s: + 0.

The spread of the lengths (squared coefficients of variation, the model's ``inTokensCv2`` and
``outTokensCv2``) comes from vLLM's length histograms and the exact means: :func:`length_cv2`.
It follows the token means through the fallback chain (labels carry none).

"No data" is never zero load: zero is reported only when completions, the queue and the running
requests are all measured and all zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from collector.labels import MAX_RPM, MAX_TOKENS, LabelLoad
from collector.metrics import Buckets, Key, MetricsSnapshot, Reading
from contract.collect import LoadSource

SECONDS_PER_MINUTE = 60.0
MS_PER_S = 1000.0


@dataclass(frozen=True)
class Observation:
    arrival_rpm: float | None = None
    avg_in_tokens: float | None = None
    avg_out_tokens: float | None = None
    ttft_ms: float | None = None
    itl_ms: float | None = None
    notes: tuple[str, ...] = ()
    in_tokens_cv2: float | None = None
    out_tokens_cv2: float | None = None


@dataclass(frozen=True)
class LoadEstimate:
    arrival_rpm: float
    avg_in_tokens: float
    avg_out_tokens: float
    in_tokens_cv2: float | None = None
    """Squared coefficient of variation of the input lengths; None: unknown."""
    out_tokens_cv2: float | None = None


@dataclass(frozen=True)
class KnownLoad:
    """The last load Prometheus gave for a Deployment, and when (unix seconds)."""

    load: LoadEstimate
    at_s: float


@dataclass(frozen=True)
class ResolvedLoad:
    load: LoadEstimate | None
    source: LoadSource
    trusted: bool
    notes: tuple[str, ...]


class _Reader:
    """Reads one Deployment's values out of a snapshot, collecting notes on what is unusable."""

    def __init__(self, snapshot: MetricsSnapshot, key: Key) -> None:
        self.snapshot, self.key = snapshot, key
        self.notes: list[str] = []

    def value(self, query: str, *, quiet: bool = False) -> float | None:
        if query in self.snapshot.failed:
            self.notes.append(f"{query}: query failed")
            return None
        reading: Reading | None = self.snapshot.get(query, self.key)
        if reading is None:
            if not quiet:
                self.notes.append(f"{query}: no series")
            return None
        if reading.value is None:
            self.notes.append(f"{query}: rejected {reading.problem}")
        return reading.value

    def spread(self, query: str, mean: float | None) -> float | None:
        """:func:`length_cv2` of the Deployment's histogram ``query`` around ``mean``; None when
        either is unknown (a vLLM without the histogram is not noted), or the histogram is bad."""
        if query in self.snapshot.failed:
            self.notes.append(f"{query}: query failed")
            return None
        buckets = self.snapshot.histogram(query, self.key)
        if buckets is None or mean is None:
            return None
        if buckets.problem:
            self.notes.append(f"{query}: rejected {buckets.problem}")
            return None
        return length_cv2(buckets, mean)

    def ratio(self, numerator: str, denominator: str, scale: float, cap: float) -> float | None:
        """``scale * numerator / denominator``; None when unknown, 0/0 or implausible."""
        den = self.value(denominator)
        num = self.value(numerator) if den else None
        if num is None or not den:
            return None
        result = scale * num / den
        if not math.isfinite(result) or result > cap:  # 1e308 / 1e-3 overflows to inf
            self.notes.append(f"{numerator}/{denominator}: implausible {result:g}")
            return None
        return result


def observe(
    snapshot: MetricsSnapshot | None, key: Key, staleness_s: float, backlog_drain_s: float = 0.0
) -> Observation:
    """What Prometheus says about one Deployment (``snapshot=None``: Prometheus not configured);
    ``backlog_drain_s`` > 0 adds ``waiting / backlog_drain_s`` to the arrival rate."""
    if snapshot is None:
        return Observation()
    r = _Reader(snapshot, key)
    newest = r.snapshot.get("last_sample", key)
    last_s = r.value("last_sample")
    if last_s is None or newest is None:
        return Observation(notes=("prometheus: no fresh vllm series", *r.notes))
    age_s = max(0.0, newest.at_s - last_s)
    if age_s > staleness_s:
        return Observation(notes=(f"prometheus: stale, newest sample {age_s:.0f} s old > {staleness_s:g} s",))

    completions_rps = r.value("completions")
    growth_rps = r.value("queue_growth")
    in_flight = [r.value("running"), r.value("waiting")]
    arrival_rpm: float | None = None
    if completions_rps is not None:
        if growth_rps is None:
            r.notes.append("queue growth unknown: arrival = completion rate")
        elif growth_rps > 0:
            r.notes.append(f"queue growing by {growth_rps:.3g} req/s: added to the completion rate")
        arrival_rpm = (completions_rps + max(0.0, growth_rps or 0.0)) * SECONDS_PER_MINUTE
        waiting = in_flight[1]
        if arrival_rpm and backlog_drain_s > 0 and waiting is not None and waiting > 0:
            drain_rps = _drain_rps(waiting, backlog_drain_s, growth_rps or 0.0)
            note = f"{waiting:g} waiting: +{drain_rps:.3g} req/s drains them in {backlog_drain_s:g}s"
            if growth_rps is not None and growth_rps < 0:
                note += f" (the queue already shrinks by {-growth_rps:.3g} req/s, in the completion rate)"
            r.notes.append(note)
            arrival_rpm += drain_rps * SECONDS_PER_MINUTE
        if arrival_rpm == 0 and any(n != 0 for n in in_flight):
            r.notes.append("no completion in the window but requests in flight (or unknown): rate unknown")
            arrival_rpm = None
        elif not math.isfinite(arrival_rpm) or arrival_rpm > MAX_RPM:  # the drain term included
            r.notes.append(f"arrival rate implausible ({arrival_rpm:g} rpm)")
            arrival_rpm = None
    itl_ms = None  # an old vLLM without either ITL name is no problem to note
    if r.snapshot.get("itl_count", key) is not None or "itl_count" in r.snapshot.failed:
        itl_ms = r.ratio("itl_sum", "itl_count", MS_PER_S, float("inf"))
    avg_in = r.ratio("prompt_tokens", "token_completions", 1.0, MAX_TOKENS)
    avg_out = r.ratio("generation_tokens", "token_completions", 1.0, MAX_TOKENS)
    return Observation(
        arrival_rpm=arrival_rpm,
        avg_in_tokens=avg_in,
        avg_out_tokens=avg_out,
        ttft_ms=r.ratio("ttft_sum", "ttft_count", MS_PER_S, float("inf")),
        itl_ms=itl_ms,
        in_tokens_cv2=r.spread("prompt_buckets", avg_in),
        out_tokens_cv2=r.spread("generation_buckets", avg_out),
        notes=tuple(dict.fromkeys(r.notes)),
    )


def length_cv2(buckets: Buckets, mean: float) -> float | None:
    """Squared coefficient of variation of a length from its histogram and its exact mean.

    The buckets give counts ``n_i`` in ``(lo_i, hi_i]`` (lo of the first is 0; the ``+Inf``
    bucket, beyond vLLM's ``max_model_len``, sits at its lower edge). Each bucket's observations
    are placed at one common relative position ``x_i = lo_i + t*(hi_i - lo_i)``, t in [0, 1]
    chosen so that their mean is the exact mean (the counters' sum over count), and
    ``cv^2 = var(x) / mean^2``. The spread within a bucket is left out, so fixed lengths read 0
    (one bucket, its point at the mean). With vLLM's 1-2-5 buckets, the Azure 2023 conversation
    trace reads 0.76 for the prompts (exact 0.92) and 0.61 for the outputs (exact 0.60);
    lognormal lengths read within 20% for cv^2 from 0.28 to 1.7 and up to 0.07 wide below
    (cv^2 0.094 reads 0.16); exponential ones read 1.16. None when the histogram is empty.

    Example: edges 100, 200, +Inf with cumulative rates 5, 10, 10 and mean 120: 5 in (0, 100], 5
    in (100, 200]; t = (1200 - 500) / 1000 = 0.7, points 70 and 170, variance 2500, cv^2 = 2500 /
    14400 = 0.174.
    """
    counts: list[tuple[float, float, float]] = []  # (lo, hi, n)
    lo, below = 0.0, 0.0
    for edge, cumulative in buckets.cumulative:
        hi = lo if math.isinf(edge) else edge
        counts.append((lo, hi, max(cumulative - below, 0.0)))
        lo, below = hi, max(cumulative, below)
    total = sum(n for _, _, n in counts)
    if not total > 0 or not mean > 0:
        return None
    if sum(n > 0 for _, _, n in counts) == 1:
        return 0.0  # one bucket: one point, exactly (rounding must not make fixed lengths spread)
    width = sum(n * (hi - lo) for lo, hi, n in counts)
    floor = sum(n * lo for lo, _, n in counts)
    t = min(max((mean * total - floor) / width, 0.0), 1.0) if width > 0 else 0.0
    points = [(lo + t * (hi - lo), n) for lo, hi, n in counts]
    centre = sum(x * n for x, n in points) / total
    variance = sum(n * (x - centre) ** 2 for x, n in points) / total
    return variance / (mean * mean)


def scaled(observed: Observation, factor: float, why: str) -> Observation:
    """``observed`` with its arrival rate times ``factor`` (pods that do not report carry the mean
    share of those that do); the token and latency means stay, they are per request."""
    if observed.arrival_rpm is None:
        return observed
    rpm = observed.arrival_rpm * factor
    if not math.isfinite(rpm) or rpm > MAX_RPM:
        note = f"{why}: arrival rate implausible ({rpm:g} rpm)"
        return replace(observed, arrival_rpm=None, notes=(*observed.notes, note))
    note = f"{why}: arrival {observed.arrival_rpm:.4g} -> {rpm:.4g} rpm"
    return replace(observed, arrival_rpm=rpm, notes=(*observed.notes, note))


def _drain_rps(waiting: float, backlog_drain_s: float, growth_rps: float) -> float:
    """Rate to add so ``waiting`` requests drain within ``backlog_drain_s``, beyond the rate the
    queue already shrinks at (``-growth_rps`` > 0, served by completions the rate counts):
    ``max(0, waiting / backlog_drain_s - max(0, -growth_rps))``. E.g. 240 waiting, 120 s, queue
    shrinking by 1.5 req/s: 2 - 1.5 = 0.5 req/s; growing or flat: 2 req/s."""
    return max(0.0, waiting / backlog_drain_s - max(0.0, -growth_rps))


def _first(candidates: list[tuple[LoadSource, float | None]]) -> tuple[LoadSource, float | None]:
    return next(((s, v) for s, v in candidates if v is not None), ("none", None))


def resolve_load(
    observed: Observation,
    labels: LabelLoad,
    last: KnownLoad | None,
    now_s: float,
    *,
    max_age_s: float,
    labels_trusted: bool,
) -> ResolvedLoad:
    """Walk the fallback chain per field. Trusted: rate from Prometheus, or from labels when
    Prometheus is not configured (``labels_trusted``); and token sizes known unless the rate is 0.
    """
    notes = list(observed.notes)
    known = last
    if last is not None:
        age_s = now_s - last.at_s
        if age_s > max_age_s:
            notes.append(f"last known load expired ({age_s:.0f} s old > {max_age_s:g} s)")
            known = None
    fields = ("arrival_rpm", "avg_in_tokens", "avg_out_tokens")
    chosen = [
        _first(
            [
                ("prometheus", getattr(observed, f)),
                ("labels", getattr(labels, f)),
                ("last-known", getattr(known.load, f) if known else None),
            ]
        )
        for f in fields
    ]
    (source, rate), (in_source, in_tokens), (out_source, out_tokens) = chosen
    if rate is None:
        return ResolvedLoad(None, "none", False, (*notes, "no load from any source"))
    if source == "last-known" and known is not None:
        notes.append(f"load from the last known value, {now_s - known.at_s:.0f} s old")
    for name, (field_source, _) in zip(fields[1:], chosen[1:], strict=True):
        if field_source not in (source, "none"):
            notes.append(f"{name} from {field_source}")
    trusted = source == "prometheus" or (source == "labels" and labels_trusted)
    if rate > 0 and (in_tokens is None or out_tokens is None):
        notes.append("token sizes unknown: load not usable")
        trusted = False
    estimate = LoadEstimate(
        rate,
        in_tokens or 0.0,
        out_tokens or 0.0,
        _spread(in_source, observed.in_tokens_cv2, known.load.in_tokens_cv2 if known else None),
        _spread(out_source, observed.out_tokens_cv2, known.load.out_tokens_cv2 if known else None),
    )
    return ResolvedLoad(estimate, source, trusted, tuple(notes))


def _spread(source: LoadSource, observed: float | None, known: float | None) -> float | None:
    """The spread that goes with a token mean from ``source`` (labels carry none)."""
    return observed if source == "prometheus" else known if source == "last-known" else None


def remember(
    previous: dict[Key, KnownLoad],
    current: dict[Key, ResolvedLoad],
    now_s: float,
    max_age_s: float,
) -> dict[Key, KnownLoad]:
    """The next last-known store: fresh Prometheus loads replace old ones; entries of Deployments
    that are gone or older than ``max_age_s`` are dropped, so memory stays bounded.
    """
    store: dict[Key, KnownLoad] = {}
    for key, resolved in current.items():
        if resolved.source == "prometheus" and resolved.trusted and resolved.load is not None:
            store[key] = KnownLoad(resolved.load, now_s)
        elif key in previous and now_s - previous[key].at_s <= max_age_s:
            store[key] = previous[key]
    return store
