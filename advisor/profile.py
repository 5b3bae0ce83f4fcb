"""``python -m advisor profile``: model data for one (model, accelerator) from any OpenAI-compatible endpoint.

Probe the endpoint (it serves the model and streams completions), run the sweep
(:mod:`advisor.sweep`), fit the chosen schema (:mod:`optimizer.profiling`), judge the fit, and
only when it is accepted write into ``--out``: ``model-data.json`` (the entry merged into the
file there, replacing one of the same model and accelerator), ``profile-report.md`` and
``.json`` (levels, parameters with standard errors, residuals, R^2, saturation measured and
predicted, client against server latencies) and ``profile.png`` (predicted against measured
curves; needs the ``plots`` extra, matplotlib). A refused fit prints its report and the reasons
and writes nothing. Exit codes: 0 written, 2 bad input or endpoint, 3 fit refused.

Example::

    python -m advisor profile --url http://127.0.0.1:8000 --model llama-8b --accelerator H100 \\
        --prompt-tokens 128,1024 --output-tokens 64 --concurrency 1,4,16,32,64 --out /tmp/prof
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp

from advisor.client import EndpointError, probe
from advisor.report import render_markdown, write_plot
from advisor.sweep import Progress, SweepPlan, SweepResult, run_sweep
from advisor.vllm_metrics import server_means_ms
from contract.data.catalog import ModelData, ModelPerfEntry
from contract.data.loader import DataError, parse_json
from optimizer.profiling.fit import Fit, fit
from optimizer.profiling.levels import LevelResult, Saturation, saturation, summarize
from optimizer.profiling.timeline import SCHEMAS, Schema, design
from optimizer.profiling.verdict import Verdict, judge, model_entry, model_saturation_rps

REQUEST_TIMEOUT_S = 300.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="base URL of the OpenAI-compatible server (no /v1)")
    p.add_argument("--model", required=True, help="model id as the server serves it (GET /v1/models)")
    p.add_argument("--accelerator", required=True, help="accelerator unit name for the entry (acc)")
    p.add_argument("--acc-count", type=int, default=1, help="units per replica (accCount)")
    p.add_argument("--schema", choices=SCHEMAS, default="step", help="perf schema to fit")
    p.add_argument("--prompt-tokens", default="128,1024", help="prompt lengths, comma-separated")
    p.add_argument("--output-tokens", default="64", help="output lengths, comma-separated")
    p.add_argument("--concurrency", default="1,2,4,8,16,32,64", help="client levels, increasing")
    p.add_argument("--level-s", type=float, default=8.0, help="seconds of sending per level")
    p.add_argument("--max-duration-s", type=float, default=540.0, help="bound on the whole sweep")
    p.add_argument("--max-requests", type=int, default=20_000, help="bound on requests sent")
    p.add_argument(
        "--max-num-batched-tokens",
        type=int,
        default=2048,
        help="the server's token budget per step (vLLM --max-num-batched-tokens): the fit replays "
        "how it splits prompts across steps, and the report's model saturation uses it; 0: unknown",
    )
    p.add_argument("--out", required=True, help="directory to write model-data.json and the report")
    p.add_argument("--no-plot", action="store_true", help="skip profile.png")


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{what} must be integers >= 1, got {text!r}")
    return values


def plan_of(args: argparse.Namespace) -> SweepPlan:
    prompts = _ints(args.prompt_tokens, "--prompt-tokens")
    outputs = _ints(args.output_tokens, "--output-tokens")
    levels = _ints(args.concurrency, "--concurrency")
    if list(levels) != sorted(set(levels)):
        raise ValueError(f"--concurrency must increase, got {args.concurrency!r}")
    if min(outputs) < 3:
        raise ValueError("--output-tokens must be >= 3 (a request's decode steps are what is fitted)")
    shapes = tuple((i, o) for i in prompts for o in outputs)
    return SweepPlan(
        shapes, levels, args.level_s, max_duration_s=args.max_duration_s, max_requests=args.max_requests
    )


async def sweep_endpoint(
    url: str, model: str, plan: SweepPlan, *, progress: bool = True
) -> tuple[str, SweepResult]:
    """Probe ``url`` and run ``plan`` against it: the served models and the sweep's result."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S, connect=10.0)
    connector = aiohttp.TCPConnector(limit=0)
    url = url.rstrip("/")
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        served = await probe(session, url, model)
        bar = Progress(plan.levels) if progress else None
        result = await run_sweep(session, url, model, plan, progress=bar)
    return served, result


def analyse(
    result: SweepResult, schema: Schema, budget_tokens: float
) -> tuple[Fit, list[LevelResult], list[Saturation], Verdict]:
    """The pure half: fit, per-level results, saturation and verdict of a sweep."""
    fitted = fit(design(result.timelines, schema, budget_tokens))
    levels = summarize(result.timelines, result.levels)
    shapes = saturation(levels)
    return fitted, levels, shapes, judge(fitted, shapes)


def server_batch(result: SweepResult, shapes: list[Saturation], client_batch: int) -> int:
    """The batch from vLLM's running gauge at the saturated levels, else the client's estimate."""
    top = {s.top_level for s in shapes if s.saturated}
    running = [m.running for level, m in result.samples if level in top]
    return round(max(running)) if running and max(running) >= 1 else client_batch


def report_of(  # noqa: PLR0917 - the pieces of one report
    args: argparse.Namespace,
    served: str,
    result: SweepResult,
    fitted: Fit,
    levels: list[LevelResult],
    shapes: list[Saturation],
    verdict: Verdict,
    entry: ModelPerfEntry | None,
    batch: int,
) -> dict[str, Any]:
    before = next((m for lv, m in result.samples if lv == -1), None)
    after = next((m for lv, m in result.samples if lv == -2), None)
    server = server_means_ms(before, after) if before and after else (math.nan, math.nan)
    client_ttft = [(t.token_s[0] - t.sent_s) * 1000 for t in result.timelines if t.token_s]
    client_itl = [g * 1000 for t in result.timelines for g in _gaps(t.token_s)]
    model_sat = [
        {
            "in": s.in_tokens,
            "out": s.out_tokens,
            "measured_rps": s.rate_rps,
            "model_rps": model_saturation_rps(
                fitted.perf, batch, s.in_tokens, s.out_tokens, args.max_num_batched_tokens
            ),
        }
        for s in shapes
        if s.saturated
    ]
    return {
        "endpoint": args.url,
        "served": served,
        "model": args.model,
        "accelerator": args.accelerator,
        "schema": fitted.schema,
        "verdict": verdict.explain(),
        "accepted": verdict.accepted,
        "refusals": [{"code": c.value, "detail": d} for c, d in verdict.refusals],
        "batch": batch,
        "params": fitted.params,
        "std_err": fitted.std_err,
        "rows": fitted.rows,
        "r2_itl": fitted.r2_itl,
        "median_abs_residual": fitted.median_abs_residual,
        "p90_abs_residual": fitted.p90_abs_residual,
        "saturation": [
            {
                "in": c.in_tokens,
                "out": c.out_tokens,
                "measured_rps": c.measured_rps,
                "fit_rps": c.predicted_rps,
            }
            for c in verdict.checks
        ],
        "model_saturation": model_sat,
        "shapes": [
            {"in": s.in_tokens, "out": s.out_tokens, "saturated": s.saturated, "reason": s.reason}
            for s in shapes
        ],
        "levels": [
            {
                "level": r.level.index,
                "in": r.level.in_tokens,
                "in_served": r.in_tokens,
                "out": r.level.out_tokens,
                "clients": r.level.concurrency,
                "requests": r.requests,
                "throughput_rps": r.throughput_rps,
                "ttft_ms": r.ttft_ms,
                "itl_ms": r.itl_ms,
                "itl_fit_ms": r.itl_ms / fitted.level_ratio(r.level.index),
                "batch": r.batch,
                "server_running": next((m.running for lv, m in result.samples if lv == r.level.index), None),
                "server_waiting": next((m.waiting for lv, m in result.samples if lv == r.level.index), None),
            }
            for r in levels
        ],
        "client_mean_ttft_ms": sum(client_ttft) / len(client_ttft) if client_ttft else math.nan,
        "client_mean_itl_ms": sum(client_itl) / len(client_itl) if client_itl else math.nan,
        "server_mean_ttft_ms": server[0],
        "server_mean_itl_ms": server[1],
        "requests": len(result.timelines),
        "incomplete": sum(1 for t in result.timelines if not t.complete),
        "stopped": result.stopped,
        "entry": entry.model_dump(mode="json", exclude_none=True) if entry else None,
    }


def _gaps(times: tuple[float, ...]) -> list[float]:
    return [b - a for a, b in pairwise(times)]


def merged_model_data(path: Path, entry: ModelPerfEntry) -> dict[str, Any]:
    """The model-data.json at ``path`` (if any) with ``entry`` added or replacing its pair."""
    models: list[Any] = []
    if path.exists():
        existing = ModelData.model_validate(parse_json(path.read_bytes(), str(path)))
        models = [
            m.model_dump(mode="json", exclude_none=True)
            for m in existing.models
            if (m.name, m.acc) != (entry.name, entry.acc)
        ]
    models.append(entry.model_dump(mode="json", exclude_none=True))
    return {"models": models}


def main(args: argparse.Namespace) -> int:
    try:
        plan = plan_of(args)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} exists and is not a directory")
        served, result = asyncio.run(sweep_endpoint(args.url, args.model, plan))
        if result.errors:
            raise EndpointError(f"{args.url}: {result.stopped}")
        fitted, levels, shapes, verdict = analyse(result, args.schema, args.max_num_batched_tokens)
    except (EndpointError, ValueError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    batch = server_batch(result, shapes, verdict.batch)
    entry = None
    if verdict.accepted:
        top = max(shapes, key=lambda s: s.in_tokens + s.out_tokens)
        kv = next((m.kv_cache_tokens for _, m in result.samples if m.kv_cache_tokens), None)
        entry = model_entry(
            fitted,
            model=args.model,
            accelerator=args.accelerator,
            acc_count=args.acc_count,
            batch=batch,
            at_tokens=top.in_tokens + top.out_tokens,
            kv_cache_tokens=kv,
        )
    report = report_of(args, served, result, fitted, levels, shapes, verdict, entry, batch)
    text = render_markdown(report)
    if entry is None:
        print(text)
        print(f"error: nothing written: {verdict.explain()}", file=sys.stderr)
        return 3
    try:
        data = merged_model_data(out / "model-data.json", entry)
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "model-data.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "profile-report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    note = "" if args.no_plot else write_plot(report, out / "profile.png")
    (out / "profile-report.md").write_text(text + (f"\n{note}\n" if note else ""))
    print(text)
    print(f"wrote {out / 'model-data.json'} ({entry.name} on {entry.acc}) and the report", file=sys.stderr)
    return 0
