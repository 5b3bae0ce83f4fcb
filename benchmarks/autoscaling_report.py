"""Write the autoscaling benchmark's results: Markdown table and verdicts, raw CSV/JSON, PNG plots.

Called by :mod:`benchmarks.bench_autoscaling` with every policy's rows and scores. Files under
``out`` (``benchmarks/results`` by default): ``autoscaling.md``, ``autoscaling.json`` (config,
scores, verdicts, wall times), ``autoscaling_summary.csv`` (one line per policy and class),
``autoscaling_minutes.csv`` (every row of every policy: one per server-minute),
``autoscaling_timeline.png`` (load, replicas and cost/h over time per policy) and
``autoscaling_attainment.png`` (per-class attainment bars per policy).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.autoscaling_metrics import MISS_CAUSES, PolicyScore
from benchmarks.verdicts import Verdict, as_json, markdown_lines
from load_emulator.whatif.records import Row
from load_emulator.whatif.report import COLUMNS

LABELS = {
    "loop": "ours, code defaults",
    "loop:Free=0": "ours as shipped (Free window 0 s)",
    "static-peak": "static for peak",
    "hpa": "HPA-style",
    "hpa@0.5": "HPA-style, target 0.5",
    "hpa@0.35": "HPA-style, target 0.35",
    "hpa@0.25": "HPA-style, target 0.25",
    "hpa@0.15": "HPA-style, target 0.15",
    "hpa@0.1": "HPA-style, target 0.1",
    "hpa@0.05": "HPA-style, target 0.05",
    "hpa@0.03": "HPA-style, target 0.03",
    "oracle": "oracle",
}


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 100:.2f}%"


def markdown(
    scores: Sequence[PolicyScore],
    verdicts: Sequence[Verdict],
    config: Mapping[str, Any],
    notes: Sequence[str],
) -> str:
    classes = sorted({c.service_class for s in scores for c in s.classes}, key=_class_order)
    oracle = next((s for s in scores if s.policy == "oracle"), None)
    lines = [
        "# Autoscaling quality: ours vs static-for-peak, HPA-style, peers and an oracle",
        "",
        f"Command: `{config['command']}` (seed {config['seed']}, one run, all policies on the same world "
        "and arrival streams).",
        "",
        "| policy | "
        + " | ".join(f"{c} minutes met" for c in classes)
        + " | GPU cost | vs oracle | mean cost/h | replica changes | GPU-type changes | batch changes |",
        "|---|" + "---:|" * (len(classes) + 6),
    ]
    for s in scores:
        atts = [_pct(c.attainment) if (c := s.of_class(name)) else "-" for name in classes]
        ratio = f"{s.cost / oracle.cost:.3f}x" if oracle and oracle.cost > 0 else "-"
        lines.append(
            f"| {LABELS.get(s.policy, s.policy)} | "
            + " | ".join(atts)
            + f" | {s.cost:.0f} | {ratio} | {s.mean_cost_per_hour:.1f} | {s.replica_changes} | "
            f"{s.gpu_type_changes} | {s.batch_changes} |"
        )
    lines += ["", "GPU cost by class (price units x hours), with the class's minutes met:", ""]
    lines.append("| policy | " + " | ".join(f"{c} cost | {c} minutes met" for c in classes) + " |")
    lines.append("|---|" + "---:|" * (2 * len(classes)))
    for s in scores:
        cells = [
            f"{c.cost:.0f} | {_pct(c.attainment)}" if (c := s.of_class(name)) else "- | -" for name in classes
        ]
        lines.append(f"| {LABELS.get(s.policy, s.policy)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per request, for reference: share of requests meeting both targets (TTFT and their own mean "
        "inter-token gap; rejected and aborted ones miss), and requests rejected or aborted:",
        "",
    ]
    lines.append("| policy | " + " | ".join(f"{c} requests met | {c} failed" for c in classes) + " |")
    lines.append("|---|" + "---:|" * (2 * len(classes)))
    for s in scores:
        cells = [
            f"{_pct(c.request_attainment)} | {c.failed_requests}" if (c := s.of_class(name)) else "- | -"
            for name in classes
        ]
        lines.append(f"| {LABELS.get(s.policy, s.policy)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Missed server-minutes by cause (first that applies; see `autoscaling_metrics.miss_causes`):",
        "",
    ]
    lines.append("| policy | class | " + " | ".join(MISS_CAUSES) + " |")
    lines.append("|---|---|" + "---:|" * len(MISS_CAUSES))
    for s in scores:
        for name in classes:
            counts = s.misses.get(name, {})
            cells = [str(counts.get(cause, 0)) for cause in MISS_CAUSES]
            lines.append(f"| {LABELS.get(s.policy, s.policy)} | {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Targets (issues 6 and 18, benchmark 4)", ""]
    lines += markdown_lines(verdicts)
    lines += ["", "## Setup", ""]
    lines += [f"- {k}: {v}" for k, v in config.items() if k != "command"]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _class_order(name: str) -> tuple[int, str]:
    order = {"Premium": 0, "Bronze": 1, "Free": 2}
    return order.get(name, 9), name


def write_summary_csv(scores: Sequence[PolicyScore], path: Path) -> None:
    with path.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(
            ["policy", "class", "minutes_judged", "minutes_met", "attainment", "request_attainment",
             "requests", "failed_requests", "class_cost", "policy_cost", "replica_changes",
             "gpu_type_changes", "batch_changes"]
        )  # fmt: skip
        for s in scores:
            for c in s.classes:
                w.writerow(
                    [s.policy, c.service_class, c.minutes_judged, c.minutes_met, f"{c.attainment:.5f}",
                     f"{c.request_attainment:.5f}", c.requests, c.failed_requests, f"{c.cost:.2f}",
                     f"{s.cost:.2f}", s.replica_changes, s.gpu_type_changes, s.batch_changes]
                )  # fmt: skip


def write_minutes_csv(rows_by_policy: Mapping[str, Sequence[Row]], path: Path) -> None:
    with path.open("w", newline="") as out:
        w = csv.DictWriter(out, fieldnames=["policy", *COLUMNS])
        w.writeheader()
        for policy, rows in rows_by_policy.items():
            for row in rows:
                values = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.as_dict().items()}
                w.writerow({"policy": policy, **values})


def read_minutes_csv(path: Path) -> dict[str, list[Row]]:
    """The rows of :func:`write_minutes_csv` back, by policy (to re-score without re-running)."""
    types = {f.name: f.type for f in fields(Row)}
    out: dict[str, list[Row]] = {}
    with path.open() as src:
        for raw in csv.DictReader(src):
            policy = raw.pop("policy")
            values: dict[str, Any] = {}
            for key, text in raw.items():
                kind = types[key]
                values[key] = (
                    int(text) if kind in ("int", int) else float(text) if kind in ("float", float) else text
                )
            out.setdefault(policy, []).append(Row(**values))
    return out


def plot_timeline(rows_by_policy: Mapping[str, Sequence[Row]], path: Path) -> None:
    fig, (load, reps, cost) = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    first = next(iter(rows_by_policy.values()))
    times = sorted({r.t_s for r in first})
    for cls in sorted({r.service_class for r in first}, key=_class_order):
        per_t: dict[float, float] = {}
        for r in first:
            if r.service_class == cls:
                per_t[r.t_s] = per_t.get(r.t_s, 0.0) + r.load_rpm
        load.plot([t / 3600 for t in times], [per_t.get(t, 0.0) for t in times], label=cls, linewidth=0.8)
    load.set_ylabel("arrivals (req/min)")
    load.set_title("Offered load per class (same for every policy)")
    load.legend(loc="upper left")
    for i, (policy, rows) in enumerate(rows_by_policy.items()):
        t_reps: dict[float, int] = {}
        t_cost: dict[float, float] = {}
        for r in rows:
            t_reps[r.t_s] = t_reps.get(r.t_s, 0) + r.replicas
            t_cost[r.t_s] = t_cost.get(r.t_s, 0.0) + r.cost_per_hour
        ts = sorted(t_reps)
        label = LABELS.get(policy, policy)
        style = {"where": "post", "label": label, "linewidth": 0.8, "color": _color(i)}
        reps.step([t / 3600 for t in ts], [t_reps[t] for t in ts], **style)
        cost.step([t / 3600 for t in ts], [t_cost[t] for t in ts], **style)
    reps.set_ylabel("replicas (all servers)")
    reps.legend(loc="upper left", fontsize=8)
    cost.set_ylabel("GPU cost (/h)")
    cost.set_xlabel("virtual time (h)")
    cost.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _color(i: int) -> Any:
    """The i-th policy's colour: 40 distinct ones (matplotlib's default cycle repeats after 10,
    and a run with every sweep has more than 20 policies)."""
    return plt.get_cmap("tab20" if i % 40 < 20 else "tab20b")(i % 20)


def plot_attainment(scores: Sequence[PolicyScore], path: Path) -> None:
    classes = sorted({c.service_class for s in scores for c in s.classes}, key=_class_order)
    fig, ax = plt.subplots(figsize=(13, 5))
    width = 0.8 / max(len(scores), 1)
    for i, s in enumerate(scores):
        values = [(c.attainment * 100 if (c := s.of_class(name)) else math.nan) for name in classes]
        xs = [j + i * width for j in range(len(classes))]
        label = f"{LABELS.get(s.policy, s.policy)} (cost {s.cost:.0f})"
        bars = ax.bar(xs, values, width, label=label, color=_color(i))
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.axhline(99, color="gray", linestyle=":", linewidth=1)
    ax.set_xticks([j + width * (len(scores) - 1) / 2 for j in range(len(classes))], classes)
    ax.set_ylabel("minutes meeting TTFT and ITL targets (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not on them
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_all(
    out: Path,
    rows_by_policy: Mapping[str, Sequence[Row]],
    scores: Sequence[PolicyScore],
    verdicts: Sequence[Verdict],
    config: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        out / "autoscaling.md",
        out / "autoscaling.json",
        out / "autoscaling_summary.csv",
        out / "autoscaling_minutes.csv",
        out / "autoscaling_timeline.png",
        out / "autoscaling_attainment.png",
    ]
    paths[0].write_text(markdown(scores, verdicts, config, notes))
    payload = {
        "config": dict(config),
        "scores": [s.as_dict() for s in scores],
        "verdicts": as_json(verdicts),
        "notes": list(notes),
    }
    paths[1].write_text(json.dumps(payload, indent=2, default=str) + "\n")
    write_summary_csv(scores, paths[2])
    write_minutes_csv(rows_by_policy, paths[3])
    plot_timeline(rows_by_policy, paths[4])
    plot_attainment(scores, paths[5])
    return paths
