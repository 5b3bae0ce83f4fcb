"""Benchmark 8's loop part: the whole control loop (what-if, virtual time) with and without calibration.

Used by :mod:`benchmarks.bench_calibration`. World (written to a temporary directory): samples/small's
accelerators, classes and capacity; one model, granite_13b, on A100 only (step schema, chunked V1
engine, no KV limit); two servers, Bronze (ITL 80 ms, TTFT 2 s) and Free (160 ms, 4 s), each 150
req/min on average, 512 prompt / 256 output tokens (geometric), in a diurnal shape of period 30 min
and amplitude 0.6 (so the running batch varies and the split is identifiable). 120 virtual
minutes, a cycle a minute.

Per case (the engine's truth against the prior of :data:`benchmarks.bench_calibration.CASES`) three
runs on the same arrivals: ``true`` (the static data is the truth, calibration off), ``prior`` (the
static data is the prior, calibration off: how far off the loop stays) and ``calibrated`` (the
prior, ``calibration=apply``). Compared from minute 30 on: requests-weighted SLO attainment and the
mean cost per hour of both servers.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from contract.data.perf import PerfParams, StepPerf
from controller.settings import ControllerSettings
from load_emulator.whatif.driver import Scenario, WhatIfRun
from load_emulator.whatif.kube import config_maps_from
from load_emulator.whatif.records import Row

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "samples" / "small"
COPIED = ("accelerator-data.json", "serviceclass-data.json", "optimizer-data.json", "capacity-data.json")
SERVERS = (("Bronze-granite", "Bronze"), ("Free-granite", "Free"))
RATE_RPM = 150.0
DURATION_S = 7200.0
JUDGED_FROM_S = 1800.0
VARIANTS = ("true", "prior", "calibrated")


def write_world(out: Path, perf: PerfParams) -> Path:
    """The world's data files with ``perf`` as granite_13b's on A100."""
    assert isinstance(perf, StepPerf)
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copy(SOURCE / name, out / name)
    model = {
        "name": "granite_13b", "acc": "A100", "accCount": 1, "maxBatchSize": 64, "atTokens": 512,
        "stepParms": {
            "fixed": perf.fixed_ms, "perDecode": perf.per_decode_ms,
            "perPrefillToken": perf.per_prefill_token_ms, "perContextToken": perf.per_context_token_ms,
        },
    }  # fmt: skip
    (out / "model-data.json").write_text(json.dumps({"models": [model]}))
    servers = [
        {
            "name": name, "class": cls, "model": "granite_13b",
            "currentAlloc": {"load": {"arrivalRate": RATE_RPM, "avgInTokens": 512, "avgOutTokens": 256}},
        }
        for name, cls in SERVERS
    ]  # fmt: skip
    (out / "server-data.json").write_text(json.dumps({"servers": servers}))
    return out


@dataclass(frozen=True)
class LoopScore:
    case: str
    variant: str
    attainment: float
    """Requests-weighted share of requests meeting their class's targets, from minute 30 on."""
    cost_per_hour: float
    """Mean cost per hour of both servers, from minute 30 on."""
    final_factors: tuple[float, float]
    """(fixed, work) the calibration had learned at the end (1, 1 without it)."""


def score(case: str, variant: str, rows: list[Row], factors: tuple[float, float]) -> LoopScore:
    kept = [r for r in rows if r.t_s >= JUDGED_FROM_S]
    weighted = [
        (r.slo_attainment, r.requests) for r in kept if r.requests and not math.isnan(r.slo_attainment)
    ]
    total = sum(n for _, n in weighted)
    attainment = sum(a * n for a, n in weighted) / total if total else math.nan
    cycles = {r.t_s for r in kept}
    cost = sum(r.cost_per_hour for r in kept) / len(cycles) if cycles else math.nan
    return LoopScore(case, variant, attainment, cost, factors)


def run_loop(
    case: str, prior: PerfParams, truth: PerfParams, variant: str, seed: int, duration_s: float = DURATION_S
) -> tuple[LoopScore, WhatIfRun]:
    with tempfile.TemporaryDirectory() as tmp:
        truth_dir = write_world(Path(tmp) / "truth", truth)
        scenario = Scenario(
            samples=truth_dir,
            pattern="diurnal",
            params={"amplitude": "0.6", "period_s": "1800", "noise": "0.05"},
            tokens="geometric",
            duration_s=duration_s,
            period_s=60.0,
            seed=seed,
            controller=ControllerSettings(calibration="apply" if variant == "calibrated" else "off"),
        )
        run = WhatIfRun(scenario)
        if variant != "true":
            static, _ = config_maps_from(write_world(Path(tmp) / "prior", prior))
            cs = scenario.collector
            run.kube.config_maps[(cs.config_namespace, cs.static_configmap)] = static
        rows = asyncio.run(run.run())
    factors = (1.0, 1.0)
    if variant == "calibrated" and run.reports and run.reports[-1].calibration:
        last = run.reports[-1].calibration[0]
        factors = (last.fixed_factor, last.work_factor)
    return score(case, variant, rows, factors), run
