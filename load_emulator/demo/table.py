"""The demo's live table: one row per server after each cycle, then the cycle's actions.

Pure formatting: :class:`Row` holds what :mod:`load_emulator.demo.run` gathered (cluster state,
offered load, the optimizer's predictions, the engine's observed window statistics, targets,
cost); :func:`render` returns the text. Latencies are milliseconds; ``nan`` prints as ``-``.
Columns: offered load (req/min), GPU unit, replicas ready/desired, batch (``--max-num-seqs``),
TTFT and ITL as predicted (mean, by the optimizer's queueing model) / observed p50 / observed p95
(emulated fleet, last window) / target, SLO attainment, cost per hour; below them, per model and
accelerator, the correction online calibration learned (``INFERNO_CONTROLLER_CALIBRATION``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HEADER = (
    f"{'server':<20} {'class':<7} {'rpm':>6} {'GPU':<7} {'rep r/d':>7} {'batch':>5} "
    f"{'TTFT ms pred/p50/p95/slo':>25} {'ITL ms pred/p50/p95/slo':>24} {'SLO%':>5} {'$/h':>6}"
)


@dataclass(frozen=True)
class Row:
    server: str
    service_class: str
    load_rpm: float
    accelerator: str
    ready: int
    desired: int
    batch: int
    ttft_pred_ms: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    ttft_target_ms: float
    itl_pred_ms: float
    itl_p50_ms: float
    itl_p95_ms: float
    itl_target_ms: float
    slo_attainment: float
    cost_per_hour: float


def _n(value: float, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(width)
    return f"{value:.0f}".rjust(width)


def _quad(a: float, b: float, c: float, d: float) -> str:
    return "/".join(_n(v, 0).strip() for v in (a, b, c, d))


def render_row(r: Row) -> str:
    slo = "-" if math.isnan(r.slo_attainment) else f"{100 * r.slo_attainment:.0f}"
    return (
        f"{r.server[:20]:<20} {r.service_class[:7]:<7} {r.load_rpm:>6.0f} {r.accelerator[:7]:<7} "
        f"{f'{r.ready}/{r.desired}':>7} {r.batch:>5} "
        f"{_quad(r.ttft_pred_ms, r.ttft_p50_ms, r.ttft_p95_ms, r.ttft_target_ms):>25} "
        f"{_quad(r.itl_pred_ms, r.itl_p50_ms, r.itl_p95_ms, r.itl_target_ms):>24} "
        f"{slo:>5} {_n(r.cost_per_hour, 6)}"
    )


def describe_action(action: Mapping[str, Any]) -> str:
    """One line: server, outcome and what changed (``replicas 2->3``), then the first reason."""
    changes = ", ".join(
        f"{c.get('field')} {c.get('old')}->{c.get('new')}"
        for c in action.get("changes") or []
        if not str(c.get("field", "")).startswith("label:")
    )
    reasons = action.get("reasons") or []
    why = f"  ({reasons[0]})" if reasons else ""
    error = f"  error: {action['error']}" if action.get("error") else ""
    what = f"{action.get('kind')}/{action.get('outcome')}"
    return f"  {action.get('server')}: {what} {changes or '-'}{why}{error}"


def describe_calibration(c: Mapping[str, Any]) -> str:
    """One line per (model, accelerator): the learned correction of its static data."""
    use = "applied" if c.get("applied") else "not applied"
    return (
        f"calibration {c.get('model')} on {c.get('acc')}: fixed x{c.get('fixed_factor', 1.0):.2f}, "
        f"work x{c.get('work_factor', 1.0):.2f} ({c.get('identified')}, confidence "
        f"{c.get('confidence', 0.0):.2f}, {c.get('evidence_windows', 0)} windows, {use})"
    )


def render(title: str, rows: Sequence[Row], report: Mapping[str, Any], notes: Sequence[str] = ()) -> str:
    """The table for one cycle: title, header, rows, total cost, actions that did something."""
    lines = [title, HEADER, "-" * len(HEADER)]
    lines += [render_row(r) for r in rows]
    total = report.get("total_cost")
    collected = report.get("collected") or {}
    lines.append(
        f"cycle {report.get('cycle_id', '?')}: outcome {report.get('outcome')}, "
        f"load trusted for {collected.get('trusted', '?')}/{collected.get('servers', '?')}, "
        f"solver {report.get('solver')}, "
        f"total {total if total is None else f'{total:.0f}'} $/h, stages "
        + ", ".join(f"{k} {v:.0f} ms" for k, v in (report.get("stage_ms") or {}).items())
    )
    lines += [describe_calibration(c) for c in report.get("calibration") or []]
    acted = [a for a in report.get("actions") or [] if a.get("kind") != "noop"]
    lines.append("actions:" if acted else "actions: none (everything already in place)")
    lines += [describe_action(a) for a in acted]
    lines += [f"  error in {e.get('stage')}: {e.get('message')}" for e in report.get("errors") or []]
    lines += [f"  note: {n}" for n in notes]
    return "\n".join(lines)
