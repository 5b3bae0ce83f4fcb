"""Write a what-if run's report: ``rows.csv``, ``report.md`` (summary + per-server tables) and PNGs.

Called by the CLI after :meth:`WhatIfRun.run`. Plots use matplotlib's Agg backend (no display):
one PNG per server, ``<server>.png``, with four panels over time: load (rpm), replicas (ready
and desired, GPU type and batch in the title when they change), p50/p95 TTFT and ITL against the
targets (dashed), and SLO attainment with the GPU cost on a second axis; plus ``fleet.png`` with
total cost and the request-weighted attainment of each service class.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from load_emulator.whatif.records import Row, Summary, by_server, summarize

COLUMNS = [f.name for f in fields(Row)]


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.as_dict().items()}
            )


def _num(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def markdown(rows: Sequence[Row], summaries: Sequence[Summary], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "| server | class | requests | SLO attained | mean cost/h | replica changes | rollouts | replicas |",
    ]
    lines.append("|---|---|---:|---:|---:|---:|---:|---|")
    for s in summaries:
        lines.append(
            f"| {s.server} | {s.service_class} | {s.requests} | {_num(s.slo_attainment * 100, 1)}% | "
            f"{s.mean_cost_per_hour:.1f} | {s.replica_changes} | {s.template_changes} | "
            f"{s.min_replicas}..{s.max_replicas} |"
        )
    lines += ["", *fleet_totals(rows, summaries)]
    for server, mine in by_server(rows).items():
        lines += ["", f"## {server}", ""]
        lines.append(
            "| t (s) | load rpm | replicas (ready) | GPU | batch | TTFT p50/p95 ms (target) "
            "| ITL p50/p95 ms (target) | SLO % | cost/h | action |"
        )
        lines.append("|---:|---:|---|---|---:|---|---|---:|---:|---|")
        for r in mine:
            lines.append(
                f"| {r.t_s:.0f} | {_num(r.load_rpm, 1)} | {r.replicas} ({r.ready}) | {r.accelerator} | "
                f"{r.max_batch} | {_num(r.ttft_p50_ms)}/{_num(r.ttft_p95_ms)} ({r.ttft_target_ms:.0f}) | "
                f"{_num(r.itl_p50_ms, 1)}/{_num(r.itl_p95_ms, 1)} ({r.itl_target_ms:.0f}) | "
                f"{_num(r.slo_attainment * 100, 1)} | {r.cost_per_hour:.1f} | {r.outcome} |"
            )
    return "\n".join(lines) + "\n"


def fleet_totals(rows: Sequence[Row], summaries: Sequence[Summary]) -> list[str]:
    """Fleet-wide lines: mean total cost, request-weighted attainment per class, churn."""
    cycles = len({r.t_s for r in rows})
    cost = sum(r.cost_per_hour for r in rows) / max(cycles, 1)
    out = [
        f"Fleet: {len(summaries)} servers, {cycles} cycles, mean GPU cost {cost:.1f}/h, "
        f"{sum(s.replica_changes for s in summaries)} replica changes, "
        f"{sum(s.template_changes for s in summaries)} rollouts (accelerator or batch changes)."
    ]
    for cls in sorted({s.service_class for s in summaries}):
        mine = [s for s in summaries if s.service_class == cls and not math.isnan(s.slo_attainment)]
        n = sum(s.requests for s in mine)
        share = sum(s.slo_attainment * s.requests for s in mine) / n if n else math.nan
        out.append(f"- {cls}: {n} requests, {_num(share * 100, 1)}% within both targets")
    return out


def _file_name(server: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", server) + ".png"


def plot_server(server: str, rows: Sequence[Row], path: Path) -> None:
    t = [r.t_s for r in rows]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    load, reps, lat, slo = axes
    load.plot(t, [r.load_rpm for r in rows], color="tab:blue")
    load.set_ylabel("load (req/min)")
    load.set_title(f"{server} ({rows[0].service_class})")
    reps.step(t, [r.replicas for r in rows], where="post", label="desired")
    reps.step(t, [r.ready for r in rows], where="post", label="ready", linestyle="--")
    previous = ""
    for r in rows:
        config = f"{r.accelerator}/b{r.max_batch}"
        if config != previous:
            reps.annotate(config, (r.t_s, r.replicas), fontsize=7, rotation=45)
            previous = config
    reps.set_ylabel("replicas")
    reps.legend(loc="upper left")
    for attr, label, color in (("ttft", "TTFT", "tab:red"), ("itl", "ITL", "tab:green")):
        lat.plot(t, [getattr(r, f"{attr}_p95_ms") for r in rows], color=color, label=f"{label} p95")
        lat.plot(
            t, [getattr(r, f"{attr}_p50_ms") for r in rows], color=color, alpha=0.5, label=f"{label} p50"
        )
        lat.axhline(
            getattr(rows[0], f"{attr}_target_ms"), color=color, linestyle=":", label=f"{label} target"
        )
    lat.set_yscale("log")
    lat.set_ylabel("latency (ms)")
    lat.legend(loc="upper left", fontsize=7, ncol=3)
    slo.plot(t, [r.slo_attainment * 100 for r in rows], color="tab:purple", label="SLO attained")
    slo.set_ylim(0, 105)
    slo.set_ylabel("SLO attained (%)")
    cost = slo.twinx()
    cost.step(t, [r.cost_per_hour for r in rows], where="post", color="tab:gray", label="cost")
    cost.set_ylabel("GPU cost (/h)")
    slo.set_xlabel("virtual time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_fleet(rows: Sequence[Row], path: Path) -> None:
    times = sorted({r.t_s for r in rows})
    fig, (cost, slo) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    cost.plot(times, [sum(r.cost_per_hour for r in rows if r.t_s == t) for t in times])
    cost.set_ylabel("total GPU cost (/h)")
    for cls in sorted({r.service_class for r in rows}):
        values = []
        for t in times:
            mine = [r for r in rows if r.t_s == t and r.service_class == cls and r.requests]
            n = sum(r.requests for r in mine if not math.isnan(r.slo_attainment))
            values.append(
                sum(r.slo_attainment * r.requests for r in mine if not math.isnan(r.slo_attainment)) / n
                if n
                else math.nan
            )
        slo.plot(times, [v * 100 for v in values], label=cls)
    slo.set_ylim(0, 105)
    slo.set_ylabel("SLO attained (%)")
    slo.set_xlabel("virtual time (s)")
    slo.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(rows: Sequence[Row], out: Path, title: str, t_from_s: float = 0.0) -> list[Path]:
    """Every file of the report, written under ``out`` (created); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    summaries = summarize(rows, t_from_s)
    written = [out / "rows.csv", out / "report.md", out / "fleet.png"]
    write_csv(rows, written[0])
    written[1].write_text(markdown(rows, summaries, title))
    plot_fleet(rows, written[2])
    for server, mine in by_server(rows).items():
        path = out / _file_name(server)
        plot_server(server, mine, path)
        written.append(path)
    return written
