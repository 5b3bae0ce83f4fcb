"""Instrumented runs of the emulated prefill-first (V0) engine with fixed lengths: what the model's
V0 chain assumes, measured step by step.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.v0_cohorts [--perf v0-7b,v0-34b,v0-13b]
[--requests 20000] [--seeds 2]``. For each prefill+decode schema of ``benchmarks.model_vs_engine``
(batch 32, budget 8192, 512 in / 256 out, Poisson arrivals) and each load (a share of that
benchmark's published saturation), it prints:

- the engine's prefill steps: prompts per step ``k``, prompts per cohort ``c`` (a run of prefill
  steps back to back, whose prompts start decoding in the same step and, with equal outputs,
  finish in the same step), and the cohort the model's formula gives, ``1/(1 - s)`` with s the
  measured share of time in prefill steps (:func:`optimizer.model.service_time.refill_prompts`);
- the number of requests running (admitted, not finished): its time mean, variance and the share
  of time the batch is full, against the model's chain (mean in service, P(n >= N));
- then, per schema, the throughput over the second half of a run whose Poisson arrivals come at
  1.0 to 3.0 times the published saturation: what the engine sustains depends on how fast it
  filled, since cohorts formed while filling persist under a permanent queue.
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass, field

import numpy as np

from benchmarks import model_vs_engine as mve
from load_emulator.patterns import stable_seed
from load_emulator.replica import ReplicaSim
from load_emulator.replica_book import SINGLE
from load_emulator.server import ServerSim
from load_emulator.timing import IterationCost
from optimizer.model.latency import evaluate, row_set
from optimizer.model.service_time import LengthSpread, service_model

SATURATION_RPS = {"v0-7b": 2.7193, "v0-34b": 1.2005, "v0-13b": 1.8872}
"""The engine's saturation published in benchmarks/results/model_vs_engine.txt (fixed lengths)."""
LOADS = (0.3, 0.5, 0.7, 0.75, 0.8, 0.87, 0.9)
OVERLOADS = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0)
BATCH = 32
BUDGET = 8192


@dataclass
class Recorder:
    """What the instrumented replica saw: its running count after each plan, and its prefill steps."""

    plans: list[tuple[float, int]] = field(default_factory=list)
    prefills: list[tuple[float, float, int]] = field(default_factory=list)
    """(start s, end s, prompts) of each prefill step."""


class RecordingReplica(ReplicaSim):
    """A :class:`ReplicaSim` that records its steps; it schedules exactly as the engine does."""

    recorder: Recorder

    def plan(self, now_s: float) -> None:
        super().plan(now_s)
        self.recorder.plans.append((now_s, self.n_run))
        if self.state == SINGLE and self.sched and self.step_decodes == 0:
            self.recorder.prefills.append((now_s, self.end_s, len(self.sched)))


def run(
    perf: str, rate_rps: float, horizon_s: float, warmup_s: float, seed: int
) -> tuple[Recorder, tuple[float, ...]]:
    """One run; the recorder and (throughput, TTFT ms, ITL ms) over the window after the warm-up."""
    server = ServerSim(mve.arrivals("fixed", rate_rps, seed))
    replica = RecordingReplica(
        "ref-0",
        IterationCost.from_perf(mve.PERFS[perf]),
        BATCH,
        server.stats,
        chunked=True,
        token_budget=BUDGET,
        kv_capacity_tokens=1 << 40,
    )
    replica.recorder = Recorder()
    server.add_replica(replica, 0.0)
    end_s = warmup_s + horizon_s
    server.advance_to(end_s)
    server.flush()
    w = server.stats.window(warmup_s, end_s)
    return replica.recorder, (w.throughput_rps, w.ttft_mean_ms, w.itl_mean_ms)


@dataclass(frozen=True)
class StepStats:
    per_step: float
    per_cohort: float
    prefill_share: float
    running_mean: float
    running_var: float
    full_share: float


def step_stats(rec: Recorder, start_s: float, end_s: float) -> StepStats:
    steps = [p for p in rec.prefills if start_s <= p[0] < end_s]
    cohorts: list[int] = []
    last_end = -1.0
    for begin, finish, k in steps:
        if cohorts and begin == last_end:
            cohorts[-1] += k
        else:
            cohorts.append(k)
        last_end = finish
    prompts = sum(p[2] for p in steps)
    busy_s = sum(min(p[1], end_s) - p[0] for p in steps)
    plans = [p for p in rec.plans if start_s <= p[0] < end_s]
    times = np.array([p[0] for p in plans] + [end_s])
    counts = np.array([p[1] for p in plans], dtype=np.float64)
    dt = np.diff(times)
    span = float(dt.sum())
    mean = float((counts * dt).sum() / span)
    return StepStats(
        per_step=prompts / len(steps),
        per_cohort=prompts / len(cohorts),
        prefill_share=busy_s / (end_s - start_s),
        running_mean=mean,
        running_var=float(((counts - mean) ** 2 * dt).sum() / span),
        full_share=float(dt[counts >= BATCH].sum() / span),
    )


def chain(perf: str, rate_rps: float) -> tuple[float, float, float, float, float]:
    """The model at ``rate_rps``: mean in service, its variance, P(n >= N), TTFT and ITL (ms).
    The variance is the chain's: ``p_n = p_0 * prod_{k<=n} lambda/mu_k`` below N (the head's
    stay ``S(n) = base + slope*n + curve*n^2``), ``P(n >= N)`` at N."""
    model = service_model(mve.PERFS[perf], 512, 256, spread=LengthSpread(0.0, 0.0), budget_tokens=BUDGET)
    rows = row_set([model], [BATCH], [10 * BATCH])
    lat = evaluate(rows, np.array([math.log(rate_rps)]))
    state, q = lat.state, rows.queue
    n = np.arange(1, BATCH, dtype=np.float64)
    mu = 1000.0 * n / (q.base_ms[0] + (q.slope_ms[0] + q.curve_ms[0] * n) * n)
    head = float(state.idle_prob[0]) * np.concatenate([[1.0], np.cumprod(rate_rps / mu)])
    p = np.concatenate([head, [float(state.full_prob[0])]])
    levels = np.arange(BATCH + 1, dtype=np.float64)
    mean = float((p * levels).sum())
    var = float((p * levels**2).sum()) - mean * mean
    return mean, var, float(state.full_prob[0]), float(lat.ttft_ms[0]), float(lat.itl_ms[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perf", default=",".join(SATURATION_RPS))
    parser.add_argument("--requests", type=int, default=20000, help="arrivals per run after the warm-up")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    for perf in args.perf.split(","):
        sat = SATURATION_RPS[perf]
        print(f"\n{perf}/fixed/N{BATCH}/B{BUDGET} (published saturation {sat} req/s)")
        print(
            " load  TTFT e/m ms      ITL e/m ms    k/step c/cohort 1/(1-s) | "
            "running: mean e/m    var e/m       full e / P(n>=N) m"
        )
        for load in LOADS:
            rate = load * sat
            horizon_s = args.requests / rate
            warm_s = 0.15 * horizon_s
            rows = []
            for k in range(args.seeds):
                rec, (_, ttft, itl) = run(
                    perf, rate, horizon_s, warm_s, stable_seed(k, f"cohorts/{perf}/{load}")
                )
                rows.append((step_stats(rec, warm_s, warm_s + horizon_s), ttft, itl))
            s = [r[0] for r in rows]

            def avg(name: str, stats: list[StepStats] = s) -> float:
                return statistics.fmean(getattr(x, name) for x in stats)

            ttft = statistics.fmean(r[1] for r in rows)
            itl = statistics.fmean(r[2] for r in rows)
            m_busy, m_var, m_full, m_ttft, m_itl = chain(perf, rate)
            formula = 1.0 / (1.0 - avg("prefill_share"))
            print(
                f" {load:4.2f} {ttft:7.1f} {m_ttft:7.1f} {itl:7.2f} {m_itl:7.2f}"
                f"  {avg('per_step'):5.2f}  {avg('per_cohort'):5.2f}   {formula:5.2f}  |"
                f"  {avg('running_mean'):6.2f} {m_busy:6.2f}  {avg('running_var'):6.1f} {m_var:6.1f}"
                f"   {avg('full_share'):.4f} / {m_full:.4f}"
            )
        print(
            " overload  arrivals  throughput over the second half, per seed  (model saturation "
            f"{chain_saturation(perf):.4f})"
        )
        for mult in OVERLOADS:
            rate = mult * sat
            half_s = args.requests / sat
            xs = [
                run(perf, rate, half_s, half_s, stable_seed(k, f"cohorts/cap/{perf}/{mult}"))[1][0]
                for k in range(args.seeds)
            ]
            print(f"   {mult:4.2f}x  {rate:7.3f}  " + "  ".join(f"{x:.4f}" for x in xs))


def chain_saturation(perf: str) -> float:
    return mve.model(mve.Scenario("fixed", BATCH, BUDGET, perf=perf), 1.0)[2]


if __name__ == "__main__":
    main()
