"""Benchmark 7: a real client (inference-perf) against the emulated vLLM's OpenAI API.

    nice -n 10 .venv/bin/python -m benchmarks.bench_openai_client [--stage-s 90] [--out benchmarks/results]

needs the client's virtualenv (``bash scripts/setup-client.sh``; ``test.sh`` calls it). One
emulated replica (``python -m load_emulator serve-openai``, a subprocess, niced as this process is)
of a 70B-class model on 4 x H100 (the step cost below is a clearly labelled estimate, not a
measurement), fixed 1,024-token prompts and 128 output tokens with ``ignore_eos``, streaming.
The replica's saturation comes from the offline emulator (an overload run at virtual time);
then, for each load of :data:`LOADS`, inference-perf runs one stage of Poisson arrivals at that
share of saturation, and three mean TTFT / mean ITL figures are compared:

- **client**: what inference-perf measured (first chunk minus send; gaps between chunks);
- **/metrics**: the replica's own histograms over the same requests (sum/count deltas scraped
  before and after the stage): the engine's virtual clock, so client minus /metrics is the wall
  clock's cost: HTTP, the event loops, and the pacing lag (the replica's ``/emulator/lag``);
- **offline**: the same experiment at virtual time (``FleetEngine``, same parameters): Poisson
  arrivals into an idle replica, as many as the client sent, at the rate it offered (a stage sends
  ``rate x duration`` requests with per-second Poisson counts, so the offered rate varies by about
  ``1/sqrt(n)`` around the nominal one), then drained, pooled over ``--offline-runs`` seeds (a
  stage is short against the batch's ramp-up, so a steady-state run would answer another
  question); also at the nominal rate (``offline_nominal``), and a ``replay`` of the client's own
  send times, which removes the sampling difference between two arrival draws.

Targets (issue 17): client within 5% of /metrics, and within 10% of offline (at the offered
rate), for both means at every load. Writes ``openai_client.json`` and ``.md``; states the load
average before and after every stage and the lag.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.inference_perf_client import (
    ClientStage,
    ServerMeans,
    Stage,
    client_available,
    config_yaml,
    read_stage,
    run_client,
    server_means,
)
from benchmarks.provenance import code_commit
from benchmarks.verdicts import Verdict, as_json, markdown_lines
from contract.data.perf import StepPerf
from load_emulator.cluster import DeploymentState, PodState
from load_emulator.engine import FleetEngine
from load_emulator.openai_api.launch import NAMESPACE, StaticCluster
from load_emulator.openai_api.params import ReplicaParams
from load_emulator.patterns import Arrival, Constant, LoadPattern, Steps
from load_emulator.tokens import TokenSpec
from load_emulator.trace import TraceReplay

PARAMS = ReplicaParams(
    model="llama-70b-class-estimate",
    perf=StepPerf(fixed_ms=30.0, per_decode_ms=0.4, per_prefill_token_ms=0.12, per_context_token_ms=0.0004),
    max_batch=64,
    accelerator="H100x4-estimate",
)
IN_TOKENS, OUT_TOKENS = 1024, 128
LOADS = (0.2, 0.4, 0.6, 0.8)
CLIENT_TOLERANCE = 0.05
OFFLINE_TOLERANCE = 0.10


# --- offline (virtual time) -------------------------------------------------------------------


def offline_engine(params: ReplicaParams, pattern: LoadPattern, seed: int) -> FleetEngine:
    state = DeploymentState(
        namespace=NAMESPACE, name="offline", model=params.model, accelerator=params.accelerator,
        max_batch=params.max_batch, replicas=1,
        pods=(PodState("offline-0", params.accelerator, params.max_batch, 0.0),),
    )  # fmt: skip
    catalog = {(params.model, params.accelerator): params.entry()}
    return FleetEngine(
        catalog, StaticCluster((state,)), {"offline": pattern}, params.engine_config(), seed=seed
    )


def offline_means(params: ReplicaParams, runs: list[tuple[LoadPattern, float]]) -> dict[str, float]:
    """Mean TTFT and ITL (s) pooled over runs of ``(pattern, arrivals end s)``: each at virtual time
    until its last request finished (at most an hour after its arrivals end), from the replica's own
    histograms; with the spread of the runs' own means (standard deviation over the pooled mean)."""
    sums = [0.0, 0.0, 0.0, 0.0]
    per_run: list[tuple[float, float]] = []
    for seed, (pattern, end_s) in enumerate(runs):
        engine = offline_engine(params, pattern, seed)
        engine.advance_to(end_s)
        replica = next(r for _, r in engine.replicas())
        t_s = end_s
        while replica.load and t_s < end_s + 3600:
            t_s += 10.0
            engine.advance_to(t_s)
        engine.flush()
        m = replica.metrics
        for k, value in enumerate((m.ttft.sum, m.ttft.count, m.itl.sum, m.itl.count)):
            sums[k] += value
        per_run.append((m.ttft.sum / max(m.ttft.count, 1), m.itl.sum / max(m.itl.count, 1)))
    ttft_s, itl_s = sums[0] / sums[1], sums[2] / sums[3]
    return {"mean_ttft_s": ttft_s, "mean_itl_s": itl_s, "requests": sums[1],
            "ttft_run_spread": _spread([t for t, _ in per_run], ttft_s),
            "itl_run_spread": _spread([i for _, i in per_run], itl_s)}  # fmt: skip


def _spread(values: list[float], mean: float) -> float:
    if len(values) < 2:
        return 0.0
    centre = sum(values) / len(values)
    return math.sqrt(sum((v - centre) ** 2 for v in values) / (len(values) - 1)) / mean


def offline_stage_means(
    params: ReplicaParams, rate_rps: float, stage_s: float, seeds: int
) -> dict[str, float]:
    """The client's experiment at virtual time: Poisson arrivals at ``rate_rps`` for ``stage_s``
    into an idle replica, then drained; ``seeds`` independent runs pooled."""
    tokens = TokenSpec(IN_TOKENS, OUT_TOKENS, "deterministic")
    stage = Steps(((0.0, 60.0 * rate_rps), (stage_s, 0.0)), tokens)
    return offline_means(params, [(stage, stage_s)] * seeds)


def saturation_rps(params: ReplicaParams) -> float:
    """Completions per second of a replica kept full (offered 4x what it can take), over the
    second half of a 600 s overload run."""
    tokens = TokenSpec(IN_TOKENS, OUT_TOKENS, "deterministic")
    engine = offline_engine(params, Constant(60 * 40.0, tokens), seed=0)
    engine.advance_to(300.0)
    engine.flush()
    replica = next(r for _, r in engine.replicas())
    done_300 = replica.metrics.e2e.count
    engine.advance_to(600.0)
    engine.flush()
    return (replica.metrics.e2e.count - done_300) / 300.0


def client_sends_s(out_dir: Path) -> list[float]:
    """The client's send times of its successful requests (per-request report), from its first."""
    entries = json.loads((out_dir / "per_request_lifecycle_metrics.json").read_text())
    starts = sorted(float(e["start_time"]) for e in entries if not e.get("error"))
    return [t - starts[0] for t in starts]


def offered_rps(sends_s: list[float]) -> float:
    """The rate the client actually offered: ``(n - 1)`` gaps over the span of its sends."""
    return (len(sends_s) - 1) / sends_s[-1] if len(sends_s) > 1 and sends_s[-1] > 0 else math.nan


def replay_means(sends_s: list[float]) -> dict[str, float]:
    """The offline means over the client's own send times."""
    replay = TraceReplay.from_rows([Arrival(t, IN_TOKENS, OUT_TOKENS) for t in sends_s])
    return offline_means(PARAMS, [(replay, sends_s[-1] + 1e-6)])


# --- live -------------------------------------------------------------------------------------


def start_server(params: ReplicaParams) -> tuple[subprocess.Popen[str], str]:
    perf = params.perf
    assert isinstance(perf, StepPerf)
    step = f"{perf.fixed_ms},{perf.per_decode_ms},{perf.per_prefill_token_ms},{perf.per_context_token_ms}"
    command = [
        sys.executable, "-m", "load_emulator", "serve-openai", "--model", params.model, "--accelerator",
        params.accelerator, "--step-ms", step, "--max-batch", str(params.max_batch), "--port", "0",
        "--max-num-batched-tokens", str(params.max_num_batched_tokens),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line:
        server.wait(10)
        raise RuntimeError(f"serve-openai exited with {server.returncode} before listening")
    return server, json.loads(line)["urls"][0]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def run_stage(url: str, rate_rps: float, stage_s: int, work: Path) -> dict[str, Any]:
    out_dir = work / f"rate-{rate_rps:.3f}"
    config = work / f"rate-{rate_rps:.3f}.yml"
    config.write_text(config_yaml(url, PARAMS.model, [Stage(rate_rps, stage_s)], in_tokens=IN_TOKENS,
                                  out_tokens=OUT_TOKENS, out_dir=out_dir))  # fmt: skip
    before = server_means(_get(f"{url}/metrics"))
    lag_before = json.loads(_get(f"{url}/emulator/lag"))
    load_before = os.getloadavg()
    started = time.monotonic()
    code = asyncio.run(
        run_client(config, timeout_s=stage_s * 4 + 300, log_path=work / f"rate-{rate_rps:.3f}.log")
    )
    if code != 0:
        raise RuntimeError(f"inference-perf exited with {code}; see {work}")
    wall_s = time.monotonic() - started
    delta: ServerMeans = server_means(_get(f"{url}/metrics")).minus(before)
    lag_after = json.loads(_get(f"{url}/emulator/lag"))
    client: ClientStage = read_stage(out_dir, 0)
    wakes = lag_after["wakes"] - lag_before["wakes"]
    lag_mean_ms = (
        lag_after["mean_ms"] * lag_after["wakes"] - lag_before["mean_ms"] * lag_before["wakes"]
    ) / max(wakes, 1)
    return {
        "client": asdict(client),
        "metrics": {"mean_ttft_s": delta.mean_ttft_s, "mean_itl_s": delta.mean_itl_s,
                    "requests": delta.requests},
        "lag": {"wakes": wakes, "mean_ms": lag_mean_ms, "cumulative": lag_after},
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()), "wall_s": wall_s,
        "sends_s": client_sends_s(out_dir),
    }  # fmt: skip


# --- report -----------------------------------------------------------------------------------


def rel(a: float, b: float) -> float:
    return a / b - 1.0


def verdicts(rows: list[dict[str, Any]]) -> list[Verdict]:
    def worst(key: str, against: str) -> tuple[float, str]:
        errors = [(abs(rel(r["client"][key], r[against][key])), r["load"], r) for r in rows]
        err, load, row = max(errors, key=lambda e: e[0])
        detail = f"worst {100 * err:.1f}% at {100 * load:.0f}% load"
        spread = row[against].get(key.replace("mean_", "").replace("_s", "") + "_run_spread")
        if spread is not None and against == "offline":
            detail += f" (one offline run's mean spreads by {100 * spread:.1f}% there)"
        return err, detail

    out = []
    for name, key in (("TTFT", "mean_ttft_s"), ("ITL", "mean_itl_s")):
        err, detail = worst(key, "metrics")
        out.append(Verdict(f"client mean {name} within 5% of the replica's /metrics at every load",
                           err <= CLIENT_TOLERANCE, detail))  # fmt: skip
    for name, key in (("TTFT", "mean_ttft_s"), ("ITL", "mean_itl_s")):
        err, detail = worst(key, "offline")
        target = f"client mean {name} within 10% of the offline emulator (same parameters, the offered rate)"
        out.append(Verdict(target, err <= OFFLINE_TOLERANCE, detail))
    for name, key in (("TTFT", "mean_ttft_s"), ("ITL", "mean_itl_s")):
        err, detail = worst(key, "replay")
        target = f"(diagnostic) client mean {name} within 5% of the offline replay of its own send times"
        out.append(Verdict(target, err <= CLIENT_TOLERANCE, detail))
    return out


def markdown(result: dict[str, Any]) -> str:
    p = result["params"]
    lines = [
        "# Benchmark 7: inference-perf against the emulated vLLM (issue 17)",
        "",
        f"Commit `{result['commit']}`, {result['date']}. Command: `{result['command']}`. inference-perf "
        f"{result['client_version']}, one worker, streaming, Poisson stages of {result['stage_s']} s.",
        "",
        f"Replica: `{p['model']}`, step cost {p['perf']} (ms; an estimate for a 70B-class model on 4 x H100, "
        f"not a measurement), max batch {p['max_batch']}, token budget {p['max_num_batched_tokens']}, "
        f"KV unlimited; prompts {IN_TOKENS} tokens, outputs {OUT_TOKENS} (`ignore_eos`). "
        f"Saturation (offline overload run): {result['saturation_rps']:.3f} req/s.",
        "",
        "## Targets",
        "",
        *markdown_lines([Verdict(**v) for v in result["verdicts"]]),
        "",
    ]  # fmt: skip
    for name, key in (("TTFT", "mean_ttft_s"), ("ITL", "mean_itl_s")):
        lines += [
            f"## Mean {name} (ms)",
            "",
            "| load | req/s nominal / offered | requests | client | /metrics | offline | offline nominal "
            "| replay | vs /metrics | vs offline |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in result["rows"]:
            c = r["client"][key]
            m, o, n, y = (r[k][key] for k in ("metrics", "offline", "offline_nominal", "replay"))
            rates = f"{r['rate_rps']:.3f} / {r['offered_rps']:.3f}"
            head = f"| {100 * r['load']:.0f}% | {rates} | {r['client']['successes']} |"
            lines.append(
                f"{head} {1000 * c:.2f} | {1000 * m:.2f} | {1000 * o:.2f} | {1000 * n:.2f} | "
                f"{1000 * y:.2f} | {100 * rel(c, m):+.1f}% | {100 * rel(c, o):+.1f}% |"
            )
        lines.append("")
    lines += [
        "## Pacing lag and machine load",
        "",
        "| load | wakes | lag mean ms | load avg before / after |",
    ]
    lines.append("|---|---|---|---|")
    lines += [
        f"| {100 * r['load']:.0f}% | {r['lag']['wakes']} | {r['lag']['mean_ms']:.2f} | "
        f"{r['loadavg_before'][0]:.1f} / {r['loadavg_after'][0]:.1f} |"
        for r in result["rows"]
    ]
    lag = result["rows"][-1]["lag"]["cumulative"]
    lines += [
        "",
        f"Pacing lag over the whole run (wall time of a wake minus the step end it was planned for): "
        f"{lag['wakes']} wakes, mean {lag['mean_ms']:.2f} ms, p50 {lag['p50_ms']:.2f}, "
        f"p99 {lag['p99_ms']:.2f}, max {lag['max_ms']:.1f} ms. The replica's /metrics never see it (virtual "
        "clock); the client does.",
        "",
        "Offline: the same parameters at virtual time, the same experiment as the client's stage: Poisson "
        "arrivals into an idle replica, as many as the client sent, at the rate it offered (its sends' "
        f"count minus one over their span), then drained; {result['offline_runs']} seeds pooled. Offline "
        f"nominal: the same at the stage's nominal rate for {result['stage_s']} s. Replay: the client's own "
        "send times of that stage. inference-perf's stage sends rate x duration requests with per-second "
        "Poisson counts, so the rate it offers varies by about 1/sqrt(requests) around the nominal one, "
        "which moves the latencies near saturation.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage-s", type=int, default=90, help="seconds per Poisson stage")
    parser.add_argument("--offline-runs", type=int, default=40, help="offline stages (seeds) per load")
    parser.add_argument("--loads", default=",".join(str(x) for x in LOADS), help="shares of saturation")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args()
    if not client_available():
        print("inference-perf is not installed: run bash scripts/setup-client.sh", file=sys.stderr)
        return 2
    loads = [float(x) for x in args.loads.split(",")]
    saturation = saturation_rps(PARAMS)
    server, url = start_server(PARAMS)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-openai-") as tmp:
            for load in loads:
                rate = round(load * saturation, 3)
                print(f"load {100 * load:.0f}%: {rate} req/s for {args.stage_s} s", flush=True)
                row = run_stage(url, rate, args.stage_s, Path(tmp))
                # Offline at the rate the client offered (a stage ends after rate x duration requests,
                # so its span, and the rate, vary by about 1/sqrt(n)), and at the nominal rate.
                sends_s = row.pop("sends_s")
                offered = offered_rps(sends_s)
                runs = args.offline_runs
                row.update(
                    load=load,
                    rate_rps=rate,
                    offered_rps=offered,
                    replay=replay_means(sends_s),
                    offline=offline_stage_means(PARAMS, offered, len(sends_s) / offered, runs),
                    offline_nominal=offline_stage_means(PARAMS, rate, args.stage_s, runs),
                )
                rows.append(row)
                c, m, o = row["client"], row["metrics"], row["offline"]
                print(f"  TTFT client {1000 * c['mean_ttft_s']:.1f} /metrics {1000 * m['mean_ttft_s']:.1f} "
                      f"offline {1000 * o['mean_ttft_s']:.1f} ms; ITL {1000 * c['mean_itl_s']:.2f} / "
                      f"{1000 * m['mean_itl_s']:.2f} / {1000 * o['mean_itl_s']:.2f} ms; "
                      f"lag {row['lag']['mean_ms']:.2f} ms",
                      flush=True)  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
    version = subprocess.run([str(Path(".venv-client/bin/python")), "-c",
                              "import importlib.metadata as m; print(m.version('inference-perf'))"],
                             capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    result = {
        "commit": code_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "nice -n 10 .venv/bin/python -m benchmarks.bench_openai_client " + " ".join(sys.argv[1:]),
        "client_version": version, "stage_s": args.stage_s, "offline_runs": args.offline_runs,
        "params": {**asdict(PARAMS), "perf": asdict(PARAMS.perf)},
        "in_tokens": IN_TOKENS, "out_tokens": OUT_TOKENS,
        "saturation_rps": saturation, "nice": os.nice(0), "rows": rows,
    }  # fmt: skip
    result["verdicts"] = as_json(verdicts(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "openai_client" + (f"_{args.tag}" if args.tag else "")
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    print("\n".join(markdown_lines([Verdict(**v) for v in result["verdicts"]])))
    return 0 if not math.isnan(saturation) else 1


if __name__ == "__main__":
    sys.exit(main())
