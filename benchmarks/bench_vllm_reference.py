"""The reference in our hands: vLLM's own V1 scheduler, driven at virtual time with our step cost.

    nice -n 10 .venv/bin/python -m benchmarks.bench_vllm_reference --jobs 2               # V1
    nice -n 10 .venv/bin/python -m benchmarks.bench_vllm_reference --jobs 2 --engine v0   # V0

needs the vLLM venv (``bash benchmarks/vllm_reference/setup.sh``, ~9.5 GB; for V0 ``setup.sh
0.8.5``, ~8 GB; not in CI). For every scenario of :func:`benchmarks.vllm_reference.scenarios.grid`
(V1: vLLM 0.33's chunked scheduler) or ``grid_v0`` (V0: vLLM 0.8.5's prefill-first scheduler) it
measures saturation with a closed
overload run (all requests at time 0; completions per second between the 20th and 80th percentile
of finish times), then runs Poisson arrivals at 10%..90% of that saturation and reports mean and
p95 TTFT, mean ITL (per inter-token gap, as vLLM's histogram counts it), throughput and
preemptions. The first 10% of each run's requests (by arrival) warm the engine up and are left out
of the latency figures. Requests are reproducible: ``poisson_requests(scenario, rate, n, seed)``
with the seed and count stored per load in the JSON.

Writes ``benchmarks/results/vllm_reference.json`` and ``.md`` (V0: ``vllm_reference_v0.*``;
``--tag`` adds a suffix).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.provenance import code_commit
from benchmarks.vllm_reference.runner import VLLM_V0_VERSION, VLLM_VERSION, default_vllm_python, run_driver
from benchmarks.vllm_reference.scenarios import (
    A100_13B,
    Scenario,
    closed_requests,
    grid,
    grid_v0,
    poisson_requests,
    step_cost_json,
)

LOADS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SEED = 22
WARMUP_SHARE = 0.1
NOTES_MD = {
    "v1": [
        "## Notes",
        "",
        "- The issue's vLLM figures used a step cost it does not state; every run here uses the A100 13B "
        "cost. The directions reproduce (the Azure lengths raise TTFT, the KV limit lowers saturation and "
        "brings preemptions), the magnitudes differ: the Azure effect is larger here (+49..81% at batch "
        "256, budget 2048, against +5..32%), the KV limit costs less (x0.751 against x0.686), and "
        "preemption starts between 70% and 80% of the KV-limited saturation, with a mean TTFT still "
        "83 ms at 70% (the issue: 4,029 ms).",
        "- At batch 32 the 80-90% rows are the least settled: a few requests wait through long queues "
        "(mean TTFT above p95 at 80% for budgets 2048 and 8192), and at 90% the Azure/fixed ratio falls "
        "below 1 (loads are shares of each one's own saturation: 1.79 vs 2.32 req/s).",
        "- Saturation hardly depends on the budget at fixed lengths (2.32-2.33 req/s at batch 32, "
        "3.67-3.71 at batch 256); TTFT does: a 512-token budget splits every 512-token prompt over two "
        "steps (the decodes take their tokens first): mean TTFT at 10% load +33% (batch 32) and +39% "
        "(batch 256) against 2,048.",
        "",
    ],
    "v0": [
        "## Notes",
        "",
        "- Prefill-first against chunked at the same step cost (batch 256, fixed 512/256; V1 with budget "
        "2,048): saturation 3.60 vs 3.71 req/s; mean TTFT lower (52-100 ms vs 55-191 ms from 10% to 90% "
        "load: a waiting prompt goes whole into the next step) and ITL higher near saturation (123 vs "
        "113 ms at 90%: every prefill step pauses the decodes).",
        "- The KV-limited case (2,000 blocks) saturates at x0.765 of the unlimited one and preempts only "
        "at 90% load (29 preemptions); V0 admits a prompt only if its blocks fit above a 1% watermark.",
        "- 1,000 requests per load (V1: 1,500). The 90% rows at batch 32 are the least settled (p95 TTFT "
        "1,980 ms fixed, 3,180 ms Azure).",
        "",
    ],
}
"""Reading notes per engine, rendered under the verdicts (history and caveats live here, not in code)."""
KV_ISSUE_SATURATION = (5.90, 8.60)
"""The issue's KV-limited vs unlimited saturation (req/s) at batch 256, with an unstated step cost."""


def closed_count(s: Scenario) -> int:
    return max(8 * s.max_num_seqs, 400)


def saturation_rps(results: list[dict[str, Any]]) -> float:
    """Completions per second between the 20th and 80th percentile of a closed run's finish times."""
    finish = np.sort([r["finish_s"] for r in results])
    k1, k2 = int(0.2 * len(finish)), int(0.8 * len(finish))
    return float((k2 - k1) / (finish[k2] - finish[k1]))


def summarise(results: list[dict[str, Any]]) -> dict[str, float]:
    """Latency and throughput of one open run, the warm-up share left out of the latencies."""
    ordered = sorted(results, key=lambda r: (r["arrival_s"], r["id"]))
    kept = ordered[int(WARMUP_SHARE * len(ordered)) :]
    ttft_ms = np.array([(r["first_token_s"] - r["arrival_s"]) * 1000 for r in kept])
    gaps = sum(r["itl_count"] for r in kept)
    span_s = max(r["finish_s"] for r in ordered) - min(r["arrival_s"] for r in ordered)
    return {
        "mean_ttft_ms": float(ttft_ms.mean()),
        "p95_ttft_ms": float(np.percentile(ttft_ms, 95)),
        "mean_itl_ms": sum(r["itl_sum_s"] for r in kept) / gaps * 1000 if gaps else math.nan,
        "throughput_rps": len(ordered) / span_s,
        "preemptions": int(sum(r["preemptions"] for r in ordered)),
        "preempted_requests": int(sum(1 for r in ordered if r["preemptions"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--engine", choices=("v1", "v0"), default="v1")
    parser.add_argument("--tag", default="", help="suffix of the result files (vllm_reference<tag>.json)")
    parser.add_argument("--vllm-python", type=Path, default=None, help="default: the engine's venv")
    parser.add_argument("--jobs", type=int, default=2, help="driver processes in parallel")
    parser.add_argument("--requests", type=int, default=1500, help="requests per open run")
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--render-only", action="store_true", help="rewrite the Markdown and verdicts")
    parser.add_argument(
        "--sustained",
        action="store_true",
        help="add each scenario's sustained saturation (Poisson overload) to the published JSON",
    )
    parser.add_argument("--sustained-requests", type=int, default=6000, help="requests per sustained run")
    args = parser.parse_args()
    v0 = args.engine == "v0"
    vllm_python = args.vllm_python or default_vllm_python(VLLM_V0_VERSION if v0 else VLLM_VERSION)
    tag = args.tag or ("_v0" if v0 else "")
    if args.render_only:
        stem = args.out / f"vllm_reference{tag}"
        write(json.loads(stem.with_suffix(".json").read_text(encoding="utf-8")), stem)
        return
    if args.sustained:
        stem = args.out / f"vllm_reference{tag}"
        published = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        add_sustained(published, vllm_python, args.jobs, args.only, args.sustained_requests)
        write(published, stem)
        return
    scenarios = [s for s in (grid_v0() if v0 else grid()) if not args.only or s.name in args.only.split(",")]
    commit = code_commit()
    cost = step_cost_json(A100_13B)
    t0 = time.perf_counter()

    closed = [
        {
            "name": f"{s.name}/closed",
            "config": s.config(),
            "step_cost": cost,
            "requests": closed_requests(s, closed_count(s), SEED),
        }
        for s in scenarios
    ]
    version, closed_out = run_driver(closed, vllm_python, args.jobs)
    sat = {s.name: saturation_rps(o["results"]) for s, o in zip(scenarios, closed_out, strict=True)}
    print(f"saturation measured in {time.perf_counter() - t0:.0f} s: {sat}", flush=True)

    open_runs, keys = [], []
    for s in scenarios:
        for load in LOADS:
            seed = SEED + round(load * 100)
            rate = load * sat[s.name]
            requests = poisson_requests(s, rate, args.requests, seed)
            open_runs.append(
                {
                    "name": f"{s.name}/{load:.0%}",
                    "config": s.config(),
                    "step_cost": cost,
                    "requests": requests,
                }
            )
            keys.append((s.name, load, rate, seed))
    _, open_out = run_driver(open_runs, vllm_python, args.jobs)
    runtime_s = time.perf_counter() - t0

    report: dict[str, Any] = {
        "benchmark": "vllm_reference",
        "engine": args.engine,
        "vllm_version": version,
        "commit": commit,
        "command": "nice -n 10 .venv/bin/python -m benchmarks.bench_vllm_reference " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "runtime_s": round(runtime_s, 1),
        "step_cost": cost,
        "method": {
            "saturation": (
                "closed run: all requests at 0; completions/s between the 20th and 80th percentile"
                " of finish times"
            ),
            "closed_requests": "max(8 x max_num_seqs, 400)",
            "open_requests": args.requests,
            "warmup_share": WARMUP_SHARE,
            "seed": "closed runs 22; open runs 22 + load percent",
            "mean_itl": "per inter-token gap (token-weighted), as vLLM's inter_token_latency histogram",
        },
        "scenarios": [],
    }
    by_name: dict[str, dict[str, Any]] = {}
    for s, o in zip(scenarios, closed_out, strict=True):
        entry = {
            "name": s.name,
            "lengths": s.lengths,
            "config": o["config"],
            "saturation_rps": sat[s.name],
            "closed_preemptions": o["summary"]["preemptions"],
            "loads": [],
        }
        by_name[s.name] = entry
        report["scenarios"].append(entry)
    for (name, load, rate, seed), o in zip(keys, open_out, strict=True):
        # The exact rate: poisson_requests(scenario, rate_rps, requests, seed) regenerates the run.
        row = {"load": load, "rate_rps": rate, "seed": seed, "requests": args.requests}
        row |= {k: round(v, 3) if isinstance(v, float) else v for k, v in summarise(o["results"]).items()}
        by_name[name]["loads"].append(row)
    kv_name = "v0-b256-fixed-kv2000" if v0 else "b256-t2048-fixed-kv2000"
    kv, free = by_name.get(kv_name), by_name.get(kv_name.removesuffix("-kv2000"))
    if kv and free:
        ratio = kv["saturation_rps"] / free["saturation_rps"]
        issue_ratio = KV_ISSUE_SATURATION[0] / KV_ISSUE_SATURATION[1]
        report["kv_limited"] = {
            "saturation_rps": kv["saturation_rps"],
            "unlimited_saturation_rps": free["saturation_rps"],
            "ratio": round(ratio, 4),
            "issue_ratio": round(issue_ratio, 4),
            "note": (
                "the issue's 5.90 vs 8.60 req/s used another step cost; the ratio is the comparable figure"
            ),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    write(report, args.out / f"vllm_reference{tag}")
    print(f"wrote {args.out / f'vllm_reference{tag}'}.json|md in {runtime_s:.0f} s", flush=True)


SUSTAINED_OVERLOAD = 1.5
"""Arrival rate of the sustained-saturation run, as a multiple of the closed run's saturation."""
SUSTAINED_REQUESTS = 6000
SUSTAINED_SEED = 7


def sustained_requests(
    s: Scenario, closed_rps: float, count: int = SUSTAINED_REQUESTS
) -> list[dict[str, Any]]:
    """The sustained-saturation run: Poisson at 1.5x the closed run's saturation (6,000 requests)."""
    return poisson_requests(s, SUSTAINED_OVERLOAD * closed_rps, count, SUSTAINED_SEED)


def add_sustained(
    report: dict[str, Any], vllm_python: Path, jobs: int, only: str, count: int = SUSTAINED_REQUESTS
) -> None:
    """Each scenario's sustained saturation: completions/s between the 20th and 80th percentile of
    finish times while Poisson arrivals at 1.5x the closed run's saturation keep a queue. This is
    the rate above which a queue grows without bound, what a queueing model calls saturation.
    The closed run (all requests at 0) measures less where its start-up persists: with fixed
    lengths at batch 32, prompts admitted together finish together, so the batch refills in
    cohorts whose prefill steps carry few decodes, for the whole run."""
    by_name = {s.name: s for s in (grid_v0() if report.get("engine") == "v0" else grid())}
    chosen = [sc for sc in report["scenarios"] if not only or sc["name"] in only.split(",")]
    runs = [
        {
            "name": f"{sc['name']}/sustained",
            "config": by_name[sc["name"]].config(),
            "step_cost": report["step_cost"],
            "requests": sustained_requests(by_name[sc["name"]], sc["saturation_rps"], count),
        }
        for sc in chosen
    ]
    _, out = run_driver(runs, vllm_python, jobs)
    for sc, o in zip(chosen, out, strict=True):
        sc["sustained_saturation_rps"] = saturation_rps(o["results"])
        sc["sustained_run"] = {
            "rate_rps": SUSTAINED_OVERLOAD * sc["saturation_rps"],
            "requests": count,
            "seed": SUSTAINED_SEED,
        }
    report["method"]["sustained_saturation"] = (
        f"Poisson arrivals at {SUSTAINED_OVERLOAD}x the closed saturation, seed {SUSTAINED_SEED}, the "
        "request count per scenario in its sustained_run; completions/s between the 20th and 80th "
        "percentile of finish times"
    )


def write(report: dict[str, Any], stem: Path) -> None:
    """The JSON and the Markdown, with the verdicts recomputed from the measurements."""
    report["verdicts"] = verdicts(report)
    report["notes_md"] = NOTES_MD.get(report.get("engine", "v1"), [])
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(render_md(report), encoding="utf-8")


def verdicts(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Whether the reference reproduces what the issue reports of vLLM at batch 256, budget 2048
    (its findings are the targets here: the reference itself has no accuracy target). The issue's
    runs used a step cost it does not state, so magnitudes may differ; the directions must not."""
    by_name = {s["name"]: s for s in report["scenarios"]}
    v0 = report.get("engine") == "v0"
    fixed_name = "v0-b256-fixed" if v0 else "b256-t2048-fixed"
    out: list[dict[str, Any]] = []
    azure, fixed = by_name.get(fixed_name.replace("fixed", "azure")), by_name.get(fixed_name)
    if azure and fixed:
        ratios = azure_ratios(azure, fixed)
        p95 = azure["loads"][0]["p95_ttft_ms"] / fixed["loads"][0]["p95_ttft_ms"]
        out.append(
            {
                "target": f"{azure['name']}: the Azure lengths raise mean TTFT over fixed 512/256 at "
                "every load (issue: +5..32% from 10% to 90%)",
                "holds": all(r > 1 for r in ratios),
                "detail": f"+{min(ratios) - 1:.0%}..+{max(ratios) - 1:.0%} "
                "(loads as shares of each one's saturation)",
            }
        )
        out.append(
            {
                "target": f"{azure['name']}: p95 TTFT at 10% load well above fixed lengths' "
                "(issue: 303 vs 121 ms, x2.5)",
                "holds": p95 > 1.5,
                "detail": f"{azure['loads'][0]['p95_ttft_ms']:.0f} vs "
                f"{fixed['loads'][0]['p95_ttft_ms']:.0f} ms, x{p95:.2f}",
            }
        )
    if "kv_limited" in report:
        kv = report["kv_limited"]
        loads = by_name[fixed_name + "-kv2000"]["loads"]
        out.append(
            {
                "target": "KV-limited (2,000 blocks): saturation well below the unlimited one "
                f"(issue: 5.90 vs 8.60 req/s, x{kv['issue_ratio']:.3f})",
                "holds": kv["ratio"] < 0.95,
                "detail": f"{kv['saturation_rps']:.3f} vs {kv['unlimited_saturation_rps']:.3f} req/s, "
                f"x{kv['ratio']:.3f}",
            }
        )
        out.append(
            {
                "target": "KV-limited: vLLM preempts (recompute) from 70% load (issue: at 70% its TTFT is "
                "4,029 ms, vs 76-79 ms predicted without a KV limit)",
                "holds": all(row["preemptions"] > 0 for row in loads if row["load"] >= 0.7),
                "detail": "preemptions "
                + ", ".join(f"{row['load']:.0%}: {row['preemptions']}" for row in loads if row["load"] >= 0.6)
                + "; mean TTFT at 70%: "
                + ", ".join(f"{row['mean_ttft_ms']:.0f} ms" for row in loads if row["load"] == 0.7),
            }
        )
    return out


def azure_ratios(azure: dict[str, Any], fixed: dict[str, Any]) -> list[float]:
    """Mean TTFT with the Azure lengths over fixed lengths, load by load."""
    return [
        a["mean_ttft_ms"] / b["mean_ttft_ms"] for a, b in zip(azure["loads"], fixed["loads"], strict=True)
    ]


def azure_lines(report: dict[str, Any]) -> list[str]:
    """Azure vs fixed mean TTFT in every scenario pair (information, not a target)."""
    by_name = {s["name"]: s for s in report["scenarios"]}
    lines = []
    for s in report["scenarios"]:
        fixed = by_name.get(s["name"].replace("azure", "fixed"))
        if s["lengths"] != "azure" or fixed is None:
            continue
        ratios = azure_ratios(s, fixed)
        lines.append(
            f"- {s['name']} / {fixed['name']}: mean TTFT x"
            + ", x".join(f"{r:.2f}" for r in ratios)
            + " (10%..90%); p95 TTFT at 10% "
            f"{s['loads'][0]['p95_ttft_ms']:.0f} vs {fixed['loads'][0]['p95_ttft_ms']:.0f} ms"
        )
    return lines


def render_md(report: dict[str, Any]) -> str:
    cost = report["step_cost"]
    lines = [
        f"# vLLM's own {report['engine'].upper()} scheduler as the reference (issue 22, item 3)",
        "",
        f"vLLM {report['vllm_version']}, commit {report['commit']}, {report['date']}, "
        f"{report['runtime_s']:.0f} s on 2 shared cores. Command: `{report['command']}`.",
        "",
        f"Step cost (ms): fixed {cost['fixed_ms']}, per decode {cost['per_decode_ms']}, per prefill token "
        f"{cost['per_prefill_token_ms']}, per context token {cost['per_context_token_ms']} "
        "(a 13B model on an A100). "
        + (
            "Scheduler: V0, prefill-first (chunked prefill off; a step is all prefills or all decodes), "
            "budget = max_model_len, FCFS, recompute preemption, block size 16, prefix caching off, "
            "V0's 1% watermark"
            if report["engine"] == "v0"
            else "Scheduler: chunked prefill, FCFS, recompute preemption, block size 16, prefix caching off, "
            "no long-prefill cap, no watermark, synchronous scheduling"
        )
        + " (`benchmarks/vllm_reference/README.md`).",
        "",
        "Saturation: closed run, all requests at time 0, completions/s between the 20th and 80th percentile "
        f"of finish times. Open runs: Poisson, {report['method']['open_requests']} requests, "
        "the first 10% left out of the latencies; ITL is the mean inter-token gap.",
        "",
    ]
    sustained = [sc for sc in report["scenarios"] if "sustained_saturation_rps" in sc]
    if sustained:
        lines += [
            "Sustained saturation (`--sustained`: Poisson arrivals at 1.5x the closed saturation, the "
            "queue never empties; the rate at which a queue starts to grow): "
            + "; ".join(
                f"{sc['name']} {sc['sustained_saturation_rps']:.3f} req/s against {sc['saturation_rps']:.3f} "
                f"closed ({sc['sustained_run']['requests']} requests, seed {sc['sustained_run']['seed']})"
                for sc in sustained
            )
            + ". The closed run keeps its start-up's cohorts (prompts admitted together finish "
            "together) and reads low.",
            "",
        ]
    if "kv_limited" in report:
        kv = report["kv_limited"]
        lines += [
            f"**KV-limited** (2,000 blocks x 16 tokens at batch 256, budget 2048, 512/256): saturation "
            f"{kv['saturation_rps']:.2f} req/s vs {kv['unlimited_saturation_rps']:.2f} unlimited, ratio "
            f"{kv['ratio']:.3f} (the issue: 5.90 vs 8.60, ratio {kv['issue_ratio']:.3f}, "
            "with another step cost).",
            "",
        ]
    lines += ["## Verdicts", ""]
    lines += [
        f"- {'HOLDS' if v['holds'] else 'FAILS'}: {v['target']}: {v['detail']}" for v in report["verdicts"]
    ]
    lines += [
        "",
        "Azure lengths against fixed 512/256, every pair (loads as shares of each one's saturation):",
        "",
    ]
    lines += azure_lines(report)
    lines += ["", *report.get("notes_md", []), "## Per scenario and load", ""]
    lines += [
        "| scenario | saturation req/s | load | rate req/s | mean TTFT ms | p95 TTFT ms | mean ITL ms "
        "| throughput req/s | preemptions |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report["scenarios"]:
        for i, row in enumerate(s["loads"]):
            head = f"| {s['name']} | {s['saturation_rps']:.3f} " if i == 0 else "| | "
            lines.append(
                head + f"| {row['load']:.0%} | {row['rate_rps']:.3f} | {row['mean_ttft_ms']:.1f} "
                f"| {row['p95_ttft_ms']:.1f} "
                f"| {row['mean_itl_ms']:.2f} | {row['throughput_rps']:.3f} | {row['preemptions']} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
