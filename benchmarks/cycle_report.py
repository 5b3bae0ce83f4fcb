"""Write the cycle benchmark's results: raw JSON, a Markdown table and a plot.

Role: helper of `bench_cycle`. `markdown(cases, meta)` is pure; `write_results` writes
`cycle.json`, `cycle.md` and (when matplotlib is installed) `cycle.png` into one directory.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

STAGES = ("collect", "optimize", "update")
SERVICE_ORDER = ("collector", "optimizer", "actuator", "controller")


def _ms(stats: dict[str, float]) -> str:
    return f"{stats['median']:.0f} / {stats['max']:.0f}" if stats else "-"


def _patched(cycle: dict[str, Any]) -> int:
    """PATCH calls seen by the API server: also counts patches of an update stage that timed out."""
    return int(cycle["kube_calls"].get("patch deployments", cycle["patches"]))


def _calls(cycle: dict[str, Any]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(cycle["kube_calls"].items())) or "-"


def _cpus(cpu: dict[str, Any], pick: Any) -> str:
    return " / ".join(f"{pick(cpu[n]):.2f}" if n in cpu else "-" for n in (*SERVICE_ORDER, "kube-apiserver"))


def _events(cycle: dict[str, Any]) -> str:
    """Events the actuator posted after answering, and when the last one was posted."""
    if "events_posted" not in cycle:
        return "-"
    after = cycle.get("events_posted_after_s")
    return (
        f"{cycle['events_posted']} (+{after:.1f} s)" if after is not None else f"{cycle['events_posted']} (?)"
    )


def markdown(cases: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Cycle cost (benchmarks/bench_cycle.py)",
        "",
        f"One real kube-apiserver + KWOK and one Prometheus on {meta.get('cpus')} shared cores; "
        f"{meta.get('cycles')} `GET /invoke` cycles per size (the first acts, then up to 30 s for its "
        f"rollouts; the rest are the steady state); whole run {meta.get('total_s')} s. Times are "
        "median / max over all cycles; the load average (1 min, median over the cycles) shows how "
        "busy the shared machine was.",
        "",
        f"Commit `{meta.get('commit', '?')}`; load average (1 / 5 / 15 min) at the end of the run "
        f"{meta.get('load_average_at_end', '?')}.",
        "",
        "| Deployments | cycle wall s | collect ms | optimize ms | update ms | PromQL / cycle "
        "| API calls / cycle (median / max) | patches 1st / later | peak RSS MiB (coll / opt / act / ctrl) "
        "| load avg 1m |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        s = case["summary"]["all"]
        rss = case["peak_rss_mib"]
        cycles = case["cycles"]
        later = max((_patched(c) for c in cycles[1:]), default=0)
        calls = s["kube_calls"]
        stages = " | ".join(_ms(s["stage_ms"].get(stage, {})) for stage in STAGES)
        lines.append(
            f"| {case['n_servers']:,} | {s['wall_s']['median']:.2f} / {s['wall_s']['max']:.2f} | {stages} "
            f"| {', '.join(str(q) for q in s['promql_queries'])} "
            f"| {calls['median']:.0f} / {calls['max']:.0f} "
            f"| {_patched(cycles[0])} / {later} "
            f"| {' / '.join(str(rss.get(n, '-')) for n in SERVICE_ORDER)} "
            f"| {statistics.median(c['load_1m'] for c in cycles):.1f} |"
        )
    lines += [
        "",
        "First (acting) cycle: wall time of `GET /invoke`, its update stage, the API calls on its "
        "critical path (LIST/GET/PATCH; Events are posted after the answer: their count and when "
        "the last one was posted, after `/invoke` returned) and the CPU seconds each process spent "
        "on it, Events included (independent of how busy the machine was):",
        "",
        "| Deployments | 1st cycle s (patches) | update ms | API calls on the critical path "
        "| Events after the answer | CPU s 1st cycle: coll / opt / act / ctrl / kube-apiserver |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        first = case["cycles"][0]
        lines.append(
            f"| {case['n_servers']:,} | {first['wall_s']:.2f} ({_patched(first)}, {first['outcome']}) "
            f"| {first['stage_ms'].get('update', 0):.0f} | {sum(first['kube_calls'].values())} "
            f"| {_events(first)} | {_cpus(first.get('cpu_s', {}), float)} |"
        )
    lines += [
        "",
        "Steady state (cycles 2+, median / max), and the CPU seconds each process spent per steady "
        "cycle (median):",
        "",
        "| Deployments | steady wall s | steady collect / optimize / update ms "
        "| CPU s per steady cycle: coll / opt / act / ctrl / kube-apiserver |",
        "|---:|---:|---:|---:|",
    ]
    for case in cases:
        steady = case["summary"]["steady"]
        if not steady.get("wall_s"):
            continue
        stage = " / ".join(f"{steady['stage_ms'].get(st, {}).get('median', 0):.0f}" for st in STAGES)
        cpus = _cpus(steady.get("cpu_s", {}), lambda stats: stats["median"])
        lines.append(
            f"| {case['n_servers']:,} | {steady['wall_s']['median']:.2f} / {steady['wall_s']['max']:.2f} "
            f"| {stage} | {cpus} |"
        )
    lines += ["", "API calls by kind, first cycle and last cycle:", ""]
    for case in cases:
        cycles = case["cycles"]
        lines.append(f"- {case['n_servers']:,}: first `{_calls(cycles[0])}`; last `{_calls(cycles[-1])}`")
    lines += ["", "Set-up per size (s): " + "; ".join(
        f"{c['n_servers']:,}: " + ", ".join(f"{k} {v:g}" for k, v in c["setup_s"].items()) for c in cases
    )]  # fmt: skip
    budget = [
        f"- {c['n_servers']:,}, cycle {i}: {x['rollout_budget']}"
        for c in cases
        for i, x in enumerate(c["cycles"], 1)
        if x.get("rollout_budget")
    ]
    if budget:
        lines += ["", "Rollout budget (the optimizer's note in the answer of `/invoke`):", "", *budget]
    outcomes = {c["n_servers"]: sorted({str(x["outcome"]) for x in c["cycles"]}) for c in cases}
    lines += ["", f"Cycle outcomes: {outcomes}.", ""]
    return "\n".join(lines)


def plot(cases: list[dict[str, Any]], path: Path) -> bool:
    """Stage times and peak RSS against N; False when matplotlib is missing."""
    try:
        import matplotlib  # noqa: PLC0415  (optional dependency: the table is written without it)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    sizes = [c["n_servers"] for c in cases]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    wall = [c["summary"]["all"]["wall_s"] for c in cases]
    above = [w["max"] - w["median"] for w in wall]
    left.errorbar(sizes, [w["median"] for w in wall], yerr=[[0.0] * len(wall), above], marker="o", capsize=3,
                  label="cycle (wall)")  # fmt: skip
    for stage in STAGES:
        values = [c["summary"]["all"]["stage_ms"].get(stage, {}).get("median", 0) / 1000 for c in cases]
        left.plot(sizes, values, marker=".", linestyle="--", label=stage)
    left.axhline(5.0, color="red", linewidth=0.8, label="target 5 s")
    left.set(xscale="log", yscale="log", xlabel="managed Deployments", ylabel="seconds (median, bar = max)",
             title="One full cycle on KWOK")  # fmt: skip
    left.legend(fontsize=8)
    for name in SERVICE_ORDER:
        right.plot(sizes, [c["peak_rss_mib"].get(name, 0) for c in cases], marker="o", label=name)
    right.axhline(300, color="red", linewidth=0.8, label="target 300 MiB")
    right.set(xscale="log", xlabel="managed Deployments", ylabel="peak RSS, MiB (VmHWM)", title="Memory")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_results(out_dir: Path, cases: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cycle.json").write_text(json.dumps({"meta": meta, "cases": cases}, indent=1) + "\n")
    (out_dir / "cycle.md").write_text(markdown(cases, meta))
    if not plot(cases, out_dir / "cycle.png"):
        print("matplotlib not installed: cycle.png not written")
