"""Score one policy's what-if rows: per-minute SLO attainment per class, GPU cost, replica churn.

Pure (rows in, numbers out); called by :mod:`benchmarks.bench_autoscaling` and the tests.

A server-minute (one row, the control period being 60 s) *meets its SLO* when the mean TTFT of
the requests whose first token came in that minute is at most the class's ``slo-ttft`` and the
mean gap between the output tokens produced in it (token-weighted, vLLM's ITL sum/count) is at
most ``slo-itl``. Means, because the data's classes set no ``slo-ttft-percentile``: inferno's
targets bound the average TTFT and ITL. A minute with arrivals but no first token at all misses
(nothing was served); a minute with no traffic is not judged. A class's attainment is the share
of its judged server-minutes that met their SLO. Requests rejected (no ready replica) or aborted
(still running when a removed pod's 30 s drain grace ended) are counted apart, per class.

GPU cost = sum over minutes of (cards held x price per card-hour) / 60, i.e. the integral of the
rows' ``cost_per_hour`` (pods holding cards, including those starting up). Churn: replica
changes = cycles where a server's replica count changed; GPU-type changes = cycles where its
accelerator changed (each rolls every pod); batch changes likewise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.verdicts import Verdict
from load_emulator.whatif.records import Row, by_server


def minute_meets_slo(row: Row) -> bool | None:
    """Whether this server-minute met both targets; None when there was no traffic to judge."""
    if math.isnan(row.ttft_mean_ms):
        return None if row.arrivals == 0 and row.failed == 0 else False
    ttft_ok = row.ttft_target_ms <= 0 or row.ttft_mean_ms <= row.ttft_target_ms
    itl_ok = row.itl_target_ms <= 0 or math.isnan(row.itl_mean_ms) or row.itl_mean_ms <= row.itl_target_ms
    return ttft_ok and itl_ok


@dataclass(frozen=True)
class ClassScore:
    policy: str
    service_class: str
    minutes_judged: int
    minutes_met: int
    attainment: float
    """minutes_met / minutes_judged, in [0, 1]; NaN when nothing was judged."""
    request_attainment: float
    """Share of requests meeting both targets individually (TTFT and own TPOT), for reference."""
    requests: int
    failed_requests: int
    """Rejected (no ready replica) or aborted (drained out of a removed pod)."""
    cost: float
    """GPU cost of this class's servers over the run (price units x hours)."""


@dataclass(frozen=True)
class PolicyScore:
    policy: str
    cost: float
    mean_cost_per_hour: float
    replica_changes: int
    gpu_type_changes: int
    batch_changes: int
    classes: tuple[ClassScore, ...]
    misses: dict[str, dict[str, int]] = field(default_factory=dict)
    """Missed minutes per class by cause (:func:`miss_causes`)."""

    def of_class(self, name: str) -> ClassScore | None:
        return next((c for c in self.classes if c.service_class == name), None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(policy: str, rows: Sequence[Row], period_s: float = 60.0) -> PolicyScore:
    hours = period_s / 3600.0
    classes: list[ClassScore] = []
    for cls in sorted({r.service_class for r in rows}):
        mine = [r for r in rows if r.service_class == cls]
        verdicts = [v for v in map(minute_meets_slo, mine) if v is not None]
        weighted = [
            (r.slo_attainment, r.requests) for r in mine if r.requests and not math.isnan(r.slo_attainment)
        ]
        n = sum(k for _, k in weighted)
        classes.append(
            ClassScore(
                policy=policy,
                service_class=cls,
                minutes_judged=len(verdicts),
                minutes_met=sum(verdicts),
                attainment=sum(verdicts) / len(verdicts) if verdicts else math.nan,
                request_attainment=sum(a * k for a, k in weighted) / n if n else math.nan,
                requests=sum(r.requests for r in mine),
                failed_requests=sum(r.failed for r in mine),
                cost=sum(r.cost_per_hour for r in mine) * hours,
            )
        )
    servers = by_server(rows)
    cycles = len({r.t_s for r in rows})
    total = sum(r.cost_per_hour for r in rows) * hours
    return PolicyScore(
        policy=policy,
        cost=total,
        mean_cost_per_hour=total / (cycles * hours) if cycles else math.nan,
        replica_changes=sum(_changes(m, lambda r: r.replicas) for m in servers.values()),
        gpu_type_changes=sum(_changes(m, lambda r: r.accelerator) for m in servers.values()),
        batch_changes=sum(_changes(m, lambda r: r.max_batch) for m in servers.values()),
        classes=tuple(classes),
        misses=miss_causes(rows),
    )


def _changes(rows: Iterable[Row], key: Any) -> int:
    return sum(1 for a, b in itertools.pairwise(rows) if key(a) != key(b))


def verdicts(
    ours: PolicyScore, oracle: PolicyScore, hpa: PolicyScore, premium: str = "Premium"
) -> list[Verdict]:
    """The issue's three targets, judged on one run's scores."""
    out: list[Verdict] = []
    p = ours.of_class(premium)
    att = p.attainment if p else math.nan
    out.append(Verdict(f"{premium} attainment >= 99%", att >= 0.99, f"{att * 100:.2f}% of minutes"))
    ratio = ours.cost / oracle.cost if oracle.cost > 0 else math.inf
    out.append(
        Verdict("cost <= 1.15x oracle", ratio <= 1.15, f"{ratio:.3f}x ({ours.cost:.0f} vs {oracle.cost:.0f})")
    )
    worse = [
        f"{c.service_class} {c.attainment * 100:.1f}% < {h.attainment * 100:.1f}%"
        for c in ours.classes
        if (h := hpa.of_class(c.service_class)) is not None and c.attainment < h.attainment
    ]
    cheaper = ours.cost < hpa.cost
    detail = (
        f"cost {ours.cost:.0f} vs {hpa.cost:.0f} ({ours.cost / hpa.cost:.3f}x)"
        if hpa.cost > 0
        else "HPA cost 0"
    )
    detail += "; attainment " + (
        "equal or better in every class" if not worse else "worse: " + ", ".join(worse)
    )
    per_class = [
        f"{c.service_class} {c.cost:.0f} vs {h.cost:.0f}"
        f" at {c.attainment * 100:.1f}% vs {h.attainment * 100:.1f}%"
        for c in ours.classes
        if (h := hpa.of_class(c.service_class)) is not None
    ]
    if per_class:
        detail += "; by class (ours vs HPA): " + ", ".join(per_class)
    out.append(Verdict("cheaper than HPA at equal or better attainment", cheaper and not worse, detail))
    return out


def sweep_verdict(
    ours: PolicyScore,
    settings: Sequence[PolicyScore],
    who: str,
    knob: str,
) -> Verdict:
    """A baseline's target read over a sweep of its knob (HPA's utilisation target, a peer's own
    lever): it holds when no setting is both no dearer than ours and at least as good in every
    class (Pareto dominance). E.g. hpa@0.35 at 1.2x ours' cost and Free below ours: it does not
    dominate; dynamo-planner@0.7 at 0.98x and no class below ours: it does, and the verdict fails."""
    parts: list[str] = []
    dominating: list[str] = []
    for h in settings:
        below = [
            f"{c.service_class} {x.attainment * 100:.1f}% < {c.attainment * 100:.1f}%"
            for c in ours.classes
            if (x := h.of_class(c.service_class)) is not None and x.attainment < c.attainment
        ]
        if not below and h.cost <= ours.cost:
            dominating.append(h.policy)
        ratio = h.cost / ours.cost if ours.cost > 0 else math.inf
        parts.append(
            f"{h.policy} at {ratio:.3f}x ours' cost: "
            + ("at least as good in every class" if not below else "below ours in " + ", ".join(below))
        )
    target = f"no {who} setting ({knob} swept) is no dearer at equal or better attainment"
    detail = "; ".join(parts) + (f"; dominated by {', '.join(dominating)}" if dominating else "")
    return Verdict(target, not dominating, detail)


MISS_CAUSES = (
    "not all replicas ready",
    "all ready, nothing served",
    "all ready, TTFT over",
    "all ready, ITL over",
)


def miss_causes(rows: Sequence[Row]) -> dict[str, dict[str, int]]:
    """Missed server-minutes per class, by first matching cause (in :data:`MISS_CAUSES` order).

    ``not all replicas ready``: in this minute or the one before, fewer pods were ready than the
    Deployment asked for (start-up, a rollout after a GPU-type or batch change, or Pending for lack
    of cards). Otherwise the allocation was in place and too small: no first token at all, TTFT
    (queueing) or ITL (batch too large) over target.
    """
    out: dict[str, dict[str, int]] = {}
    for mine in by_server(rows).values():
        previous: Row | None = None
        for row in mine:
            if minute_meets_slo(row) is False:
                counts = out.setdefault(row.service_class, dict.fromkeys(MISS_CAUSES, 0))
                settling = row.ready < row.replicas or (
                    previous is not None and previous.ready < previous.replicas
                )
                if settling:
                    counts[MISS_CAUSES[0]] += 1
                elif math.isnan(row.ttft_mean_ms):
                    counts[MISS_CAUSES[1]] += 1
                elif row.ttft_mean_ms > row.ttft_target_ms > 0:
                    counts[MISS_CAUSES[2]] += 1
                else:
                    counts[MISS_CAUSES[3]] += 1
            previous = row
    return out


def ahead_verdicts(
    ours: PolicyScore,
    oracle: PolicyScore,
    hpas: Sequence[PolicyScore],
    peers: Sequence[PolicyScore],
    premium: str = "Premium",
) -> list[Verdict]:
    """Issue 18's targets on one run: Premium >= 99.5% of minutes; cost <= 0.90x the cheapest
    HPA-style setting that reaches ours' Premium attainment (none reaching it: not judged, said);
    cheaper than each peer policy at equal or better attainment in every class; cost <= 1.05x the
    oracle."""
    p = ours.of_class(premium)
    att = p.attainment if p else math.nan
    out = [Verdict(f"{premium} attainment >= 99.5%", att >= 0.995, f"{att * 100:.2f}% of minutes")]
    reaching = [
        h for h in hpas if (x := h.of_class(premium)) is not None and x.attainment >= att and h.cost > 0
    ]
    if reaching:
        cheapest = min(reaching, key=lambda h: h.cost)
        ratio = ours.cost / cheapest.cost
        out.append(
            Verdict(
                "cost <= 0.90x the cheapest HPA-style setting at ours' Premium attainment",
                ratio <= 0.90,
                f"{ratio:.3f}x {cheapest.policy} ({ours.cost:.0f} vs {cheapest.cost:.0f})",
            )
        )
    else:
        out.append(
            Verdict(
                "cost <= 0.90x the cheapest HPA-style setting at ours' Premium attainment",
                False,
                "no HPA-style setting of the sweep reaches ours' Premium attainment: not comparable; "
                + ", ".join(
                    f"{h.policy} {x.attainment * 100:.2f}%" for h in hpas if (x := h.of_class(premium))
                ),
            )
        )
    for peer in peers:
        worse = [
            f"{c.service_class} {c.attainment * 100:.1f}% < {x.attainment * 100:.1f}%"
            for c in ours.classes
            if (x := peer.of_class(c.service_class)) is not None and c.attainment < x.attainment
        ]
        cheaper = ours.cost < peer.cost
        out.append(
            Verdict(
                f"cheaper than {peer.policy} at equal or better attainment in every class",
                cheaper and not worse,
                f"cost {ours.cost:.0f} vs {peer.cost:.0f} ({ours.cost / peer.cost:.3f}x); attainment "
                + ("equal or better in every class" if not worse else "worse: " + ", ".join(worse)),
            )
        )
    out.append(oracle_cost_verdict(ours, oracle))
    return out


def oracle_cost_verdict(ours: PolicyScore, oracle: PolicyScore, bound: float = 1.05) -> Verdict:
    """``cost <= bound x`` this oracle (its policy name in the target: there are two, ``oracle``
    and ``oracle-minute``), with the oracle's Premium attainment in the detail for reference."""
    ratio = ours.cost / oracle.cost if oracle.cost > 0 else math.inf
    p = oracle.of_class("Premium")
    reach = f"; {oracle.policy}'s Premium {p.attainment * 100:.2f}% of minutes" if p else ""
    return Verdict(
        f"cost <= {bound:g}x {oracle.policy}",
        ratio <= bound,
        f"{ratio:.3f}x ({ours.cost:.0f} vs {oracle.cost:.0f}){reach}",
    )
