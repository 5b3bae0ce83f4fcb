"""Benchmark 8: online calibration against the emulated engine whose parameters are not the prior's.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.bench_calibration [--jobs 2] [--out benchmarks/results]
[--seed 6]`` (about 6 minutes on 2 cores; ``--no-loop``: about 2). Writes ``calibration.md`` and
``calibration.json`` with the verdicts.

World: one Deployment of 2 chunked (vLLM V1) replicas, batch 64, token budget 2048, geometric
lengths around 512 in / 256 out. The prior (the static data) is the granite_13b on A100 step
schema (fixed 20.58, per decode 0.041, per prefill token 0.041, per context token 0.00128125 ms);
the engine runs another truth per case:

- ``x0.5`` / ``x2``: every parameter half / twice the prior's;
- ``split``: the fixed part twice the prior's, the work part half (another alpha/beta split);
- ``v0-on-chunked``: the prior is samples/large's prefill+decode schema for the same pair
  (decode 20.58 + 0.41 n, prefill 164.64 + 0.0128125 in n: a prefill-first engine's), the engine
  the chunked step engine above. No factor pair makes that schema the engine's; the fit lands on
  the best one and the residual error is reported, not judged.

Learning (30 virtual minutes): the load steps every 5 minutes through 20, 60, 35, 75, 50 and 30 %
of a replica's emulated saturation; every 60 s the learner gets one observation, the last 240 s
of the Deployment (as the collector's rate window reads vLLM's counters: completions, token
counts, ITL and TTFT histogram means; and the running-requests gauge scraped every 15 s, its
mean and variance over the window per pod, averaged over the pods), and updates with the
default guardrails.

Check (held out): one replica of the true engine at a steady 20, 40, 60 and 75 % of saturation,
settled: the mean over 24 runs (seeds) of ``3000 * clip(0.16 / (1 - load)^2, 1, 16)`` requests
each (3,000 up to 60 %, 7,680 at 75 %) after a warm-up, with its standard error. One run is not
enough near saturation: 12 runs of 3,000 requests at 75 % of the split case's saturation measured
a mean TTFT from 105 to 370 ms. The model's mean ITL and TTFT with the prior, the learned and the
true parameters are compared with those means. Ten more learning runs per judged case (other
seeds, the same check) show how the verdict fares over the learning's own noise. A last run holds
the split case at one load (50 %) for 30 minutes: the learner must move only the common scale and
say so.

Loop (:mod:`benchmarks.calibration_loop`): the whole control loop in the what-if driver for 120
virtual minutes, per judged case three runs (true data, prior data, prior data with
``calibration=apply``); from minute 30 on, the calibrated run's attainment must be within 2
points and its cost within 5 % of the true run's; the prior run shows how far off the loop stays
without calibration.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import structlog

from benchmarks.accuracy_grid import emulated_saturation_rps
from benchmarks.calibration_loop import VARIANTS, LoopScore, run_loop
from benchmarks.provenance import code_commit
from benchmarks.verdicts import Verdict, as_json, markdown_lines
from benchmarks.vllm_settled import requests_at
from calibration import Limits, Observation, State, learned, scaled, update
from calibration.learner import CalibrationReport
from collector.measured import context_from_kv
from contract.data.perf import PerfParams, PrefillDecodePerf, StepPerf
from load_emulator.patterns import Arrival, Constant, stable_seed
from load_emulator.replica import ReplicaSim
from load_emulator.server import ServerSim
from load_emulator.timing import IterationCost
from load_emulator.tokens import TokenSpec
from optimizer.model.predict import predict
from optimizer.settings import OptimizerSettings

RESULTS = Path(__file__).resolve().parent / "results"
PRIOR = StepPerf(20.58, 0.041, 0.041, 0.00128125)
V0_PRIOR = PrefillDecodePerf(20.58, 0.41, 164.64, 0.0128125)
CASES: dict[str, tuple[PerfParams, PerfParams]] = {
    "x0.5": (PRIOR, scaled(PRIOR, 0.5, 0.5)),
    "x2": (PRIOR, scaled(PRIOR, 2.0, 2.0)),
    "split": (PRIOR, scaled(PRIOR, 2.0, 0.5)),
    "v0-on-chunked": (V0_PRIOR, PRIOR),
}
"""Case -> (prior the optimizer has, truth the engine runs)."""
JUDGED = ("x0.5", "x2", "split")
BATCH = 64
BUDGET = 2048
REPLICAS = 2
TOKENS = TokenSpec(512, 256, "geometric")
LEVELS = (0.2, 0.6, 0.35, 0.75, 0.5, 0.3)
LEVEL_S = 300.0
WINDOW_S = 240.0
PERIOD_S = 60.0
SCRAPE_S = 15.0
CHECK_LOADS = (0.2, 0.4, 0.6, 0.75)
CHECK_SEEDS = 24
SPREAD_RUNS = 10
TOLERANCE = 0.10
MODEL, ACC = "granite_13b", "A100"
SEED = 6
"""The published run's seed (``--seed``): learning, check and loop streams derive from it."""


def stepped_arrivals(rates_rps: Sequence[float], level_s: float, seed: int) -> Iterator[Arrival]:
    """Poisson arrivals at ``rates_rps[k]`` during ``[k*level_s, (k+1)*level_s)``, then none."""
    rng = random.Random(seed)
    sampler = TOKENS.sampler()
    t = 0.0
    for k, rate in enumerate(rates_rps):
        end = (k + 1) * level_s
        while True:
            t_next = t + rng.expovariate(rate)
            if t_next >= end:
                t = end
                break
            t = t_next
            yield Arrival(t, *sampler.draw(rng))


def _replica(perf: PerfParams, server: ServerSim, pod: str) -> ReplicaSim:
    return ReplicaSim(
        pod, IterationCost.from_perf(perf), BATCH, server.stats, chunked=True, token_budget=BUDGET,
        kv_capacity_tokens=1 << 40,
    )  # fmt: skip


def learn(
    prior: PerfParams, truth: PerfParams, levels: Sequence[float], saturation_rps: float, seed: int
) -> tuple[State, list[CalibrationReport]]:
    """Run the engine through ``levels`` and feed the learner every period; the last state and reports."""
    rates = [level * saturation_rps * REPLICAS for level in levels]
    server = ServerSim(stepped_arrivals(rates, LEVEL_S, seed))
    for k in range(REPLICAS):
        server.add_replica(_replica(truth, server, f"calib-{k}"), 0.0)
    state, limits, reports = State(MODEL, ACC), Limits(), []
    gauge: list[tuple[float, list[int]]] = []  # (scrape time, running requests of each pod)
    usage: list[tuple[float, list[float]]] = []  # (scrape time, KV-cache usage of each pod)
    t = WINDOW_S
    scrape_s = 0.0
    while t <= LEVEL_S * len(levels) + 1e-9:
        while scrape_s + SCRAPE_S <= t + 1e-9:
            scrape_s += SCRAPE_S
            server.advance_to(scrape_s)
            gauge.append((scrape_s, [r.running for r in server.replicas.values()]))
            usage.append((scrape_s, [r.kv_usage() for r in server.replicas.values()]))
        server.flush()
        w = server.stats.window(t - WINDOW_S, t)
        per_pod = list(zip(*(ns for ts, ns in gauge if t - WINDOW_S < ts <= t), strict=True))
        usage_per_pod = list(zip(*(us for ts, us in usage if t - WINDOW_S < ts <= t), strict=True))
        running = statistics.fmean(statistics.fmean(p) for p in per_pod)
        cache = next(iter(server.replicas.values()))
        obs = Observation(
            source="bench/granite", model=MODEL, accelerator=ACC, served_models=("ibm/granite-13b",),
            end_s=t, window_s=WINDOW_S, last_sample_s=t, reporting_pods=REPLICAS, ready_pods=REPLICAS,
            completion_rps=w.throughput_rps, in_tokens=w.mean_in_tokens, out_tokens=w.mean_out_tokens,
            itl_ms=w.itl_mean_ms, ttft_ms=w.ttft_mean_ms, preemptions=0.0, counter_resets=0.0,
            running_per_pod=running,
            context_tokens_per_pod=context_from_kv(
                statistics.fmean(statistics.fmean(p) for p in usage_per_pod),
                cache.num_gpu_blocks, cache.block_tokens, running,
            ),
            running_var_per_pod=statistics.fmean(statistics.pvariance(p) for p in per_pod),
        )  # fmt: skip
        state, report = update(state, prior, [obs], t, limits)
        reports.append(report)
        t += PERIOD_S
    return state, reports


@dataclass(frozen=True)
class CheckPoint:
    load: float
    observed_itl_ms: float
    observed_ttft_ms: float
    predicted: dict[str, tuple[float, float]]
    """Parameters ("prior", "learned", "true") -> (ITL, TTFT) the model predicts, ms."""
    itl_se_ms: float = 0.0
    """Standard error of the observed mean ITL over the check's seeds."""
    ttft_se_ms: float = 0.0
    requests: int = 0
    """Requests per seed (after the warm-up)."""
    seeds: int = 0

    def error(self, which: str, metric: int) -> float:
        observed = self.observed_itl_ms if metric == 0 else self.observed_ttft_ms
        return self.predicted[which][metric] / observed - 1.0


def observe(truth: PerfParams, rate_rps: float, requests: int, seed: int) -> tuple[float, float]:
    """One replica of ``truth`` at a steady ``rate_rps``: its mean ITL and TTFT (ms) over
    ``requests`` arrivals' time after a warm-up of a tenth of that."""
    horizon_s = requests / rate_rps
    server = ServerSim(Constant(rate_rps * 60.0, TOKENS).arrivals(seed))
    server.add_replica(_replica(truth, server, "check-0"), 0.0)
    warmup_s = 0.1 * horizon_s
    server.advance_to(warmup_s + horizon_s)
    server.flush()
    w = server.stats.window(warmup_s, warmup_s + horizon_s)
    return w.itl_mean_ms, w.ttft_mean_ms


def check(
    perfs: dict[str, PerfParams], truth: PerfParams, saturation_rps: float, seed: int
) -> list[CheckPoint]:
    """The engine's settled mean ITL and TTFT at each check load (the mean over ``CHECK_SEEDS``
    runs, with its standard error: near saturation one run's mean is a sample of a heavy-tailed
    spread, 105 to 370 ms over 12 runs of 3,000 requests at 75 %), and the model's predictions."""
    model = {name: predicted_at(perf, saturation_rps) for name, perf in perfs.items()}
    points = []
    for load in CHECK_LOADS:
        rate = load * saturation_rps
        count = requests_at(load)  # benchmark 3's settled-mean run length
        seeds = [stable_seed(seed, f"check/{load}/{k}") for k in range(CHECK_SEEDS)]
        runs = [observe(truth, rate, count, s) for s in seeds]
        itl, ttft = [r[0] for r in runs], [r[1] for r in runs]
        root = math.sqrt(len(runs))
        predicted = {name: at[load] for name, at in model.items()}
        points.append(
            CheckPoint(
                load,
                statistics.fmean(itl),
                statistics.fmean(ttft),
                predicted,
                itl_se_ms=statistics.stdev(itl) / root,
                ttft_se_ms=statistics.stdev(ttft) / root,
                requests=count,
                seeds=len(runs),
            )
        )
    return points


@dataclass(frozen=True)
class CaseResult:
    case: str
    saturation_rps: float
    state: State
    reports: list[CalibrationReport]
    points: list[CheckPoint]
    spread: list[tuple[float, float, float, float]] = field(default_factory=list)
    """More learning runs (other seeds), each judged against the same settled engine means:
    (fixed factor, work factor, worst |ITL error|, worst |TTFT error|)."""


def predicted_at(perf: PerfParams, saturation_rps: float) -> dict[float, tuple[float, float]]:
    """The model's mean (ITL, TTFT) in ms with ``perf`` at each check load."""
    out = {}
    for load in CHECK_LOADS:
        p = predict(
            perf, BATCH, TOKENS.mean_in_tokens, TOKENS.mean_out_tokens, load * saturation_rps,
            OptimizerSettings(), budget_tokens=BUDGET,
        )  # fmt: skip
        out[load] = (p.itl_ms, p.ttft_ms)
    return out


def spread_of(
    case: str, saturation_rps: float, points: list[CheckPoint], seed_base: int
) -> list[tuple[float, float, float, float]]:
    """``SPREAD_RUNS`` more learning runs of ``case`` on other seeds, judged like the first."""
    prior, truth = CASES[case]
    out = []
    for k in range(SPREAD_RUNS):
        state, _ = learn(prior, truth, LEVELS, saturation_rps, stable_seed(seed_base, f"{case}/spread/{k}"))
        at = predicted_at(learned(prior, state), saturation_rps)
        itl = max(abs(at[p.load][0] / p.observed_itl_ms - 1.0) for p in points)
        ttft = max(abs(at[p.load][1] / p.observed_ttft_ms - 1.0) for p in points)
        out.append((state.fixed_factor, state.work_factor, itl, ttft))
    return out


def run_case(case: str, seed_base: int = SEED) -> CaseResult:
    prior, truth = CASES[case]
    seed = stable_seed(seed_base, case)
    saturation = emulated_saturation_rps(truth, BATCH, TOKENS, 3000, seed)
    state, reports = learn(prior, truth, LEVELS, saturation, seed)
    perfs = {"prior": prior, "learned": learned(prior, state), "true": truth}
    if case == "v0-on-chunked":
        del perfs["true"]
    points = check(perfs, truth, saturation, seed)
    spread = spread_of(case, saturation, points, seed_base) if case in JUDGED else []
    return CaseResult(case, saturation, state, reports, points, spread)


def run_steady(seed_base: int = SEED) -> CaseResult:
    prior, truth = CASES["split"]
    seed = stable_seed(seed_base, "steady")
    saturation = emulated_saturation_rps(truth, BATCH, TOKENS, 3000, seed)
    state, reports = learn(prior, truth, (0.5,) * len(LEVELS), saturation, seed)
    return CaseResult("split at one load", saturation, state, reports, [])


def worst(result: CaseResult, which: str) -> tuple[float, float]:
    """Largest |error| of ITL and of TTFT over the check points."""
    return (
        max(abs(p.error(which, 0)) for p in result.points),
        max(abs(p.error(which, 1)) for p in result.points),
    )


ATTAINMENT_POINTS = 2.0
COST_SHARE = 0.05


def loop_case(args: tuple[str, str, int]) -> LoopScore:
    case, variant, seed_base = args
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    prior, truth = CASES[case]
    return run_loop(case, prior, truth, variant, stable_seed(seed_base, f"loop/{case}"))[0]


def loop_verdicts(scores: list[LoopScore]) -> list[Verdict]:
    by = {(s.case, s.variant): s for s in scores}
    out: list[Verdict] = []
    if not scores:
        return out
    for case in JUDGED:
        true, prior, calibrated = (by[(case, v)] for v in VARIANTS)
        d_att = 100 * (calibrated.attainment - true.attainment)
        d_cost = calibrated.cost_per_hour / true.cost_per_hour - 1.0
        out.append(
            Verdict(
                f"{case}: in the loop, attainment within {ATTAINMENT_POINTS:g} points and cost within "
                f"{COST_SHARE:.0%} of the run with the true parameters (minutes 30-120)",
                abs(d_att) <= ATTAINMENT_POINTS and abs(d_cost) <= COST_SHARE,
                f"calibrated {calibrated.attainment:.1%} at {calibrated.cost_per_hour:.0f}/h "
                f"({d_att:+.1f} points, {d_cost:+.1%}; learned fixed x{calibrated.final_factors[0]:.3f}, "
                f"work x{calibrated.final_factors[1]:.3f}); true {true.attainment:.1%} at "
                f"{true.cost_per_hour:.0f}/h; without calibration {prior.attainment:.1%} at "
                f"{prior.cost_per_hour:.0f}/h",
            )
        )
    return out


def _settled(r: CaseResult) -> str:
    """The engine's TTFT where the learned parameters miss it most, with its standard error."""
    p = max(r.points, key=lambda q: abs(q.error("learned", 1)))
    return (
        f"engine TTFT there (load {p.load:g}) {p.observed_ttft_ms:.1f} ± {p.ttft_se_ms:.1f} ms over "
        f"{p.seeds} runs of {p.requests} requests"
    )


def _spread(r: CaseResult) -> str:
    """How the verdict fares over the case's other learning runs."""
    if not r.spread:
        return "no other learning runs"
    work = [w for _, w, _, _ in r.spread]
    ttft = sorted(t for _, _, _, t in r.spread)
    inside = sum(i <= TOLERANCE and t <= TOLERANCE for _, _, i, t in r.spread)
    return (
        f"{len(r.spread)} more learning runs (other seeds): both within {TOLERANCE:.0%} in {inside}, "
        f"worst TTFT median {statistics.median(ttft):.1%}, largest {ttft[-1]:.1%}, work factor "
        f"x{statistics.fmean(work):.3f} ± {statistics.stdev(work):.3f} (sd)"
    )


def verdicts(results: dict[str, CaseResult], steady: CaseResult) -> list[Verdict]:
    out = []
    for case in JUDGED:
        r = results[case]
        itl, ttft = worst(r, "learned")
        p_itl, p_ttft = worst(r, "prior")
        t_itl, t_ttft = worst(r, "true")
        out.append(
            Verdict(
                f"{case}: predicted mean ITL and TTFT within {TOLERANCE:.0%} of the engine's "
                "after 30 virtual min",
                itl <= TOLERANCE and ttft <= TOLERANCE,
                f"learned: worst ITL {itl:.1%}, TTFT {ttft:.1%} at {CHECK_LOADS} of saturation "
                f"(without calibration {p_itl:.1%}, {p_ttft:.1%}; the model with the true "
                f"parameters {t_itl:.1%}, {t_ttft:.1%}); {_settled(r)}; {_spread(r)}",
            )
        )
    s = steady.state
    out.append(
        Verdict(
            "one steady operating point: only the common scale moves, and the reason says so",
            s.identified == "scale"
            and s.fixed_factor == s.work_factor
            and "only the common scale" in steady.reports[-1].reasons[-1],
            f"identified {s.identified!r}, fixed x{s.fixed_factor:.3f}, work x{s.work_factor:.3f}: "
            f"{steady.reports[-1].fit.reason if steady.reports[-1].fit else ''}",
        )
    )
    return out


def render(results: dict[str, CaseResult], steady: CaseResult, found: list[Verdict], seed: int) -> str:
    flag = "" if seed == SEED else f" --seed {seed}"
    lines = [
        "# Benchmark 8: online calibration",
        "",
        f"Command: `python -m benchmarks.bench_calibration{flag}`. Code at commit " + code_commit() + ".",
        "",
    ]
    lines += ["## Targets", "", *markdown_lines(found), ""]
    for r in [*results.values(), steady]:
        s = r.state
        lines += [
            f"## {r.case}",
            "",
            f"Replica saturation {r.saturation_rps:.3f} req/s. After 30 min: fixed x{s.fixed_factor:.3f}, "
            f"work x{s.work_factor:.3f}, identified {s.identified}, confidence {s.confidence:.2f}, "
            f"{len(s.evidence)} windows.",
            "",
            "| minute | fixed | work | identified | confidence | bounds | reason |",
            "|---|---|---|---|---|---|---|",
        ]
        for k, rep in enumerate(r.reports):
            if k % 3 == 0 or k == len(r.reports) - 1:
                minute = (WINDOW_S + k * PERIOD_S) / 60.0
                lines.append(
                    f"| {minute:.0f} | {rep.fixed_factor:.3f} | {rep.work_factor:.3f} | {rep.identified} | "
                    f"{rep.confidence:.2f} | {','.join(rep.bounds)} | {rep.reasons[0]} |"
                )
        if r.points:
            names = list(r.points[0].predicted)
            head = " | ".join(f"{n} ITL | {n} TTFT" for n in names)
            lines += [
                "",
                f"| load | engine ITL ms | engine TTFT ms (± s.e.) | {head} |",
                "|---" * (3 + 2 * len(names)) + "|",
            ]
            for p in r.points:
                cells = " | ".join(
                    f"{p.predicted[n][0]:.1f} ({p.error(n, 0):+.1%}) | "
                    f"{p.predicted[n][1]:.1f} ({p.error(n, 1):+.1%})"
                    for n in names
                )
                lines.append(
                    f"| {p.load:.2f} | {p.observed_itl_ms:.1f} ± {p.itl_se_ms:.1f} | "
                    f"{p.observed_ttft_ms:.1f} ± {p.ttft_se_ms:.1f} | {cells} |"
                )
            lines += [
                "",
                f"Engine: the mean over {r.points[0].seeds} runs of one replica at each load (requests per "
                f"run: {', '.join(str(p.requests) for p in r.points)}), ± its standard error.",
            ]
        lines.append("")
    return "\n".join(lines)


def as_record(r: CaseResult) -> dict[str, object]:
    s = r.state
    return {
        "case": r.case,
        "saturation_rps": r.saturation_rps,
        "fixed_factor": s.fixed_factor,
        "work_factor": s.work_factor,
        "identified": s.identified,
        "confidence": s.confidence,
        "spread": [
            {"fixed_factor": f, "work_factor": w, "worst_itl_error": i, "worst_ttft_error": t}
            for f, w, i, t in r.spread
        ],
        "points": [
            {
                "load": p.load,
                "itl_ms": p.observed_itl_ms,
                "itl_se_ms": p.itl_se_ms,
                "ttft_ms": p.observed_ttft_ms,
                "ttft_se_ms": p.ttft_se_ms,
                "requests_per_seed": p.requests,
                "seeds": p.seeds,
                "predicted": p.predicted,
            }
            for p in r.points
        ],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the learning, check and loop runs")
    parser.add_argument(
        "--no-loop", action="store_true", help="leave out the loop runs (9 x 120 virtual min)"
    )
    args = parser.parse_args(argv)
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {case: pool.submit(run_case, case, args.seed) for case in CASES}
        steady_future = pool.submit(run_steady, args.seed)
        runs = [(c, v, args.seed) for c in JUDGED for v in VARIANTS]
        loops = [] if args.no_loop else list(pool.map(loop_case, runs))
        results = {case: f.result() for case, f in futures.items()}
        steady = steady_future.result()
    found = verdicts(results, steady) + loop_verdicts(loops)
    text = render(results, steady, found, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.md").write_text(text + "\n")
    record = {
        "seed": args.seed,
        "verdicts": as_json(found),
        "cases": [as_record(r) for r in [*results.values(), steady]],
        "loop": [asdict(s) for s in loops],
    }
    (args.out / "calibration.json").write_text(json.dumps(record, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
