"""Profile emulated vLLM replicas of known parameters and check what the profiler recovers.

Run: ``nice -n 10 python -m benchmarks.bench_profile [--schemas step iteration ...] [--level-s 5]``
(from the repository root). Writes ``benchmarks/results/profile.json`` and ``profile.md``.

For each perf schema an emulated replica (``python -m load_emulator serve-openai``, its own
process, on a loopback port) runs with known parameters; ``advisor.profile``'s sweep streams
completions from it over HTTP (aiohttp, closed-loop levels), and the fit recovers the
parameters. Targets (the issue's):

- each parameter within 5 % of the known one;
- the saturation within 5 %, read two ways: the sweep's measured saturation (completions/s with
  the batch full, over HTTP and the wall clock) against the same closed loop run by the same
  engine at virtual time (``load_emulator.closed_loop``, exact timing); and the optimizer model's
  saturation from the fitted parameters against the same from the known ones;
- the profile of one schema takes under 10 minutes of wall time.

This measures the profiler against our own emulator, whose timing follows the schema exactly: it
shows the sweep and the fit recover what is there, through a real HTTP client and the wall clock,
not that a schema describes a real GPU (that takes a real vLLM, which this machine has not).
The machine's load average is recorded before and after each schema: the client, the server and
other work share its cores, and the server's lag (how late a token leaves after its step ends)
is in the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from advisor.profile import analyse, sweep_endpoint
from advisor.sweep import SweepPlan
from benchmarks.provenance import code_commit
from benchmarks.verdicts import Verdict, as_json, markdown_lines
from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf, StepPerf
from load_emulator.closed_loop import LoopLevel, run_closed_loop
from load_emulator.replica import ReplicaSim
from load_emulator.stats import ServerStats
from load_emulator.timing import IterationCost
from optimizer.profiling.fit import params_of
from optimizer.profiling.levels import Level, saturation, summarize
from optimizer.profiling.timeline import RequestTimeline
from optimizer.profiling.verdict import model_saturation_rps

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BATCH = 32
BUDGET = 2048
TOLERANCE = 0.05
WALL_LIMIT_S = 600.0
KNOWN: dict[str, tuple[str, PerfParams]] = {
    "step": ("--step-ms", StepPerf(69.0, 0.15, 0.265, 0.00055)),
    "iteration": ("--iteration-ms", IterationPerf(69.0, 0.2, 0.00055)),
    "decode-only": ("--decode-only-ms", DecodeOnlyPerf(69.0, 0.8)),
    "prefill-decode": ("--prefill-decode-ms", PrefillDecodePerf(69.0, 0.8, 80.0, 0.0008)),
}
"""Known parameters (ms), about the roofline estimate of Llama-3.1-8B on an L4 (300 GB/s, 121
bf16 TFLOPS; the method of advisor/data/README.md): a 69 ms step, 0.265 ms per prompt token,
0.00055 ms per context token, the decode's compute partly hidden under the weight reads. A slow
card keeps the emulator's steps long against this machine's scheduling noise (its lag, in the
results, is a few ms at the median and tens of ms at worst under load)."""
SHAPES = ((128, 48), (1024, 48))
CONCURRENCY = (1, 4, 8, 16, 32, 64)


def _flag_values(perf: PerfParams) -> str:
    _, params = params_of(perf)
    return ",".join(f"{v:g}" for v in params.values())


def _start_server(schema: str) -> tuple[subprocess.Popen[str], str]:
    flag, perf = KNOWN[schema]
    cmd = [
        sys.executable, "-m", "load_emulator", "serve-openai", "--model", "emu", flag, _flag_values(perf),
        "--max-batch", str(BATCH), "--max-num-batched-tokens", str(BUDGET), "--port", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, json.loads(line)["urls"][0]


def _stop_server(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    for line in out.splitlines():
        if line.startswith('{"lag"'):
            return dict(json.loads(line)["lag"])
    return {}


def _virtual_saturation(
    perf: PerfParams, levels: list[Level], level_s: float
) -> dict[tuple[int, int], float]:
    """The same closed loop on the same engine at virtual time: saturation per shape."""
    replica = ReplicaSim(
        "virtual", IterationCost.from_perf(perf), BATCH, ServerStats(), chunked=True, token_budget=BUDGET
    )
    loop = [LoopLevel(lv.concurrency, level_s, lv.in_tokens, lv.out_tokens) for lv in levels]
    records = run_closed_loop(replica, loop)
    timelines = [
        RequestTimeline(r.sent_s, r.in_tokens, tuple(r.token_s), r.level, len(r.token_s) == r.out_tokens)
        for r in records
    ]
    virtual_levels = []
    for i, lv in enumerate(loop):
        start = min(r.sent_s for r in records if r.level == i)
        virtual_levels.append(Level(i, lv.concurrency, lv.in_tokens, lv.out_tokens, start, start + level_s))
    return {(s.in_tokens, s.out_tokens): s.rate_rps for s in saturation(summarize(timelines, virtual_levels))}


def profile_schema(schema: str, level_s: float) -> dict[str, Any]:
    _, perf = KNOWN[schema]
    load_before = os.getloadavg()
    proc, url = _start_server(schema)
    started = time.perf_counter()
    try:
        plan = SweepPlan(SHAPES, CONCURRENCY, level_s)
        _, result = asyncio.run(sweep_endpoint(url, "emu", plan, progress=False))
        wall_s = time.perf_counter() - started
    finally:
        lag = _stop_server(proc)
    fitted, _, shapes, verdict = analyse(result, params_of(perf)[0], BUDGET)
    _, known = params_of(perf)
    errors = {k: fitted.params[k] / v - 1.0 for k, v in known.items()}
    virtual = _virtual_saturation(perf, result.levels, level_s)
    saturations = []
    for s in shapes:
        key = (s.in_tokens, s.out_tokens)
        true_model = model_saturation_rps(perf, BATCH, s.in_tokens, s.out_tokens, BUDGET)
        fit_model = model_saturation_rps(fitted.perf, BATCH, s.in_tokens, s.out_tokens, BUDGET)
        saturations.append(
            {
                "in": s.in_tokens,
                "out": s.out_tokens,
                "saturated": s.saturated,
                "measured_rps": s.rate_rps,
                "virtual_rps": virtual.get(key, float("nan")),
                "measured_error": s.rate_rps / virtual[key] - 1.0 if key in virtual else float("nan"),
                "model_known_rps": true_model,
                "model_fitted_rps": fit_model,
                "model_error": fit_model / true_model - 1.0,
            }
        )
    return {
        "schema": schema,
        "known": known,
        "fitted": fitted.params,
        "std_err": fitted.std_err,
        "errors": errors,
        "r2_itl": fitted.r2_itl,
        "p90_abs_residual": fitted.p90_abs_residual,
        "profile_verdict": verdict.explain(),
        "batch_seen": verdict.batch,
        "requests": len(result.timelines),
        "wall_s": wall_s,
        "saturation": saturations,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "server_lag": lag,
    }


def verdicts_of(runs: list[dict[str, Any]]) -> list[Verdict]:
    out = []
    for run in runs:
        name = run["schema"]
        worst = max(run["errors"], key=lambda k: abs(run["errors"][k]))
        detail = ", ".join(f"{k} {e:+.1%}" for k, e in run["errors"].items())
        out.append(
            Verdict(f"{name}: every parameter within 5%", abs(run["errors"][worst]) <= TOLERANCE, detail)
        )
        sat = run["saturation"]
        measured = [abs(s["measured_error"]) for s in sat]
        model = [abs(s["model_error"]) for s in sat]
        detail = "; ".join(
            f"in {s['in']}/out {s['out']}: measured {s['measured_rps']:.3f} vs virtual "
            f"{s['virtual_rps']:.3f} req/s "
            f"({s['measured_error']:+.1%}), model fitted {s['model_fitted_rps']:.3f} vs known "
            f"{s['model_known_rps']:.3f} ({s['model_error']:+.1%})"
            for s in sat
        )
        holds = all(s["saturated"] for s in sat) and max(measured + model) <= TOLERANCE
        out.append(Verdict(f"{name}: saturation within 5%", holds, detail))
        out.append(
            Verdict(
                f"{name}: profile under 10 minutes",
                run["wall_s"] < WALL_LIMIT_S,
                f"{run['wall_s']:.0f} s sweep",
            )
        )
    return out


def markdown(runs: list[dict[str, Any]], verdicts: list[Verdict]) -> str:
    lines = [
        "# Profiler against emulated replicas of known parameters",
        "",
        f"Commit {code_commit()}. `nice -n 10 python -m benchmarks.bench_profile` (see its docstring). "
        "Emulator: "
        f"batch {BATCH}, token budget {BUDGET}; sweep: shapes {list(SHAPES)} (in, out), clients "
        f"{list(CONCURRENCY)}.",
        "This checks the profiler against our own emulator (whose timing follows each schema exactly), "
        "through real HTTP streaming and the wall clock; it is not evidence that a schema fits a real GPU.",
        "",
        "## Targets",
        "",
        *markdown_lines(verdicts),
        "",
        "## Runs",
        "",
    ]
    for run in runs:
        lines += [
            f"### {run['schema']}",
            "",
            f"{run['requests']} requests in {run['wall_s']:.0f} s; R^2 {run['r2_itl']:.4f}, p90 residual "
            f"{run['p90_abs_residual']:.2%}; profiler's verdict: {run['profile_verdict']}; load average "
            f"{run['load_before'][0]:.2f} before, {run['load_after'][0]:.2f} after; server lag "
            f"{json.dumps(run['server_lag'])}.",
            "",
            "| parameter | known | fitted | std error | error |",
            "| --- | --- | --- | --- | --- |",
        ]
        for k, v in run["known"].items():
            lines.append(
                f"| {k} | {v:.6g} | {run['fitted'][k]:.6g} | {run['std_err'][k]:.2g} | "
                f"{run['errors'][k]:+.2%} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", nargs="+", default=list(KNOWN), choices=list(KNOWN))
    parser.add_argument("--level-s", type=float, default=15.0)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    runs = []
    for schema in args.schemas:
        print(f"profiling the {schema} schema ...", file=sys.stderr, flush=True)
        runs.append(profile_schema(schema, args.level_s))
    verdicts = verdicts_of(runs)
    out = Path(args.out)
    (out / "profile.json").write_text(
        json.dumps({"runs": runs, "verdicts": as_json(verdicts)}, indent=2) + "\n"
    )
    (out / "profile.md").write_text(markdown(runs, verdicts))
    print("\n".join(markdown_lines(verdicts)))


if __name__ == "__main__":
    main()
