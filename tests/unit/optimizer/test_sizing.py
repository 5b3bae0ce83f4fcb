"""Sizing (optimizer.model.sizing): the max per-replica rate meets every target, 1% more does not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from contract.data.loader import load_system_dir
from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf
from optimizer.candidates import build_problem
from optimizer.model.latency import evaluate, row_set
from optimizer.model.predict import Prediction, predict_many
from optimizer.model.service_time import service_model
from optimizer.model.sizing import SizingRequest, Targets, size_rates
from optimizer.settings import OptimizerSettings
from tests.conftest import REFERENCE_SETS

DECODE = DecodeOnlyPerf(alpha_ms=20.58, beta_ms=0.41)
PREFILL = PrefillDecodePerf(alpha_ms=20.58, beta_ms=0.41, gamma_ms=164.64, delta_ms=0.0128125)
ITERATION = IterationPerf(alpha_ms=20.58, beta_ms=0.041, gamma_ms=0.00128125)


def request(
    perf: PerfParams, batch: int, targets: Targets, in_tokens: int = 128, out: int = 1024
) -> SizingRequest:
    return SizingRequest(service_model(perf, in_tokens, out), batch, 10 * batch, targets, 0.9)


def at(req: SizingRequest, rate_rps: float) -> Prediction:
    pct = req.targets.ttft_percentile if req.targets.ttft_ms > 0 else 0.0
    return predict_many([req.service], [req.batch], [req.room], rates_rps=[rate_rps], percentiles=[pct])[0]


def missed(req: SizingRequest, rate_rps: float, rel: float = 0.0) -> set[str]:
    """Targets missed at the rate, judged from the prediction (with a relative slack)."""
    t, p = req.targets, at(req, rate_rps)
    out = set()
    if t.itl_ms and p.itl_ms > t.itl_ms * (1 + rel):
        out.add("ITL")
    if t.ttft_ms and not t.ttft_percentile and p.ttft_ms > t.ttft_ms * (1 + rel):
        out.add("TTFT")
    if t.ttft_ms and t.ttft_percentile and p.ttft_percentile_ms > t.ttft_ms * (1 + rel):
        out.add("TTFT percentile")
    if t.ttw_ms and p.wait_ms > t.ttw_ms / math.log(20) * (1 + rel):
        out.add("TTW")
    return out


BOUND = [
    pytest.param(request(DECODE, 16, Targets(itl_ms=24)), "ITL", id="decode-itl"),
    pytest.param(request(DECODE, 16, Targets(itl_ms=40, ttw_ms=500)), "TTW", id="decode-ttw"),
    pytest.param(request(PREFILL, 16, Targets(itl_ms=40, ttft_ms=1000)), "TTFT", id="prefill-ttft"),
    pytest.param(request(PREFILL, 16, Targets(itl_ms=23)), "ITL", id="prefill-itl"),
    pytest.param(request(ITERATION, 32, Targets(itl_ms=30, ttft_ms=1000)), "ITL", id="iteration-itl"),
    pytest.param(request(ITERATION, 32, Targets(ttft_ms=300)), "TTFT", id="iteration-ttft"),
    pytest.param(
        request(ITERATION, 32, Targets(ttft_ms=2000, ttft_percentile=95)), "TTFT percentile", id="p95"
    ),
    pytest.param(request(DECODE, 16, Targets(ttft_ms=5000, ttft_percentile=99)), "TTFT percentile", id="p99"),
    pytest.param(
        request(PREFILL, 8, Targets(ttft_ms=1500, ttft_percentile=90), 2048, 128), "TTFT percentile", id="p90"
    ),
]


@pytest.mark.parametrize(("req", "binding"), BOUND)
def test_max_rate_meets_targets_and_one_percent_more_misses(req: SizingRequest, binding: str) -> None:
    (result,) = size_rates([req])
    assert result.feasible
    assert result.limit == binding
    assert 0 < result.max_rate_rps < 0.999 * result.saturation_rps
    assert missed(req, result.max_rate_rps, rel=1e-7) == set()
    assert binding in missed(req, 1.01 * result.max_rate_rps)


@pytest.mark.parametrize(
    ("targets", "share", "limit"),
    [
        (Targets(tps=2000), 0.9, "throughput cap"),
        (Targets(), 0.9, "throughput cap"),
        (Targets(itl_ms=1000, ttft_ms=1e9), 0.999, "saturation"),
    ],
    ids=["tps-only", "no-targets", "loose-targets"],
)
def test_unbound_rate_is_a_share_of_saturation(targets: Targets, share: float, limit: str) -> None:
    (result,) = size_rates([request(DECODE, 16, targets)])
    assert result.limit == limit
    assert result.max_rate_rps == pytest.approx(share * result.saturation_rps, rel=1e-12)
    assert result.saturation_rps == pytest.approx(16000 / (1024 * (20.58 + 0.41 * 16)), rel=1e-12)


@pytest.mark.parametrize(
    ("req", "words"),
    [
        (request(DECODE, 16, Targets(itl_ms=20)), ["ITL 20.99 ms > target 20 ms"]),
        (request(PREFILL, 16, Targets(ttft_ms=150)), ["TTFT", "> target 150 ms"]),
        (request(ITERATION, 32, Targets(ttft_ms=20, ttft_percentile=95)), ["TTFT p95", "> target 20 ms"]),
    ],
    ids=["itl", "ttft", "ttft-p95"],
)
def test_infeasible_has_a_reason(req: SizingRequest, words: list[str]) -> None:
    (result,) = size_rates([req])
    assert not result.feasible
    assert result.max_rate_rps == 0.0
    assert result.limit == "infeasible"
    for word in [*words, "even at minimal load"]:
        assert word in result.reason


@pytest.mark.parametrize("perf", [DECODE, PREFILL, ITERATION], ids=["decode", "prefill", "iteration"])
def test_latencies_are_monotone_in_rate(perf: PerfParams) -> None:
    model = service_model(perf, 128, 1024)
    rows = row_set([model] * 300, [32] * 300, [320] * 300)
    rates = np.geomspace(1e-4, 0.999, 300) * math.exp(rows.queue.log_mu_top[0])
    lat = evaluate(rows, np.log(rates))
    for series in (lat.itl_ms, lat.ttft_ms, lat.state.wait_ms):
        assert np.all(np.diff(series) >= -1e-9 * series[1:])


def test_equal_requests_are_sized_once_and_agree() -> None:
    a = request(DECODE, 16, Targets(itl_ms=24))
    b = request(ITERATION, 32, Targets(ttft_ms=300))
    results = size_rates([a, b, a, b, a])
    assert results[0] == results[2] == results[4]
    assert results[1] == results[3]
    assert size_rates([a])[0].max_rate_rps == pytest.approx(results[0].max_rate_rps, rel=1e-6)
    assert size_rates([]) == []


@pytest.mark.parametrize("data_dir", REFERENCE_SETS, ids=lambda p: f"{p.parent.name}-{p.name}")
def test_reference_sets_a100_beats_l4_for_granite_13b(data_dir: Path) -> None:
    system = load_system_dir(data_dir)
    entries = {e.acc: e for e in system.perf_by_model()["granite_13b"]}
    loose = Targets(itl_ms=1000, ttft_ms=100_000)
    reqs = [request(entries[acc].perf, 8, loose, 128, 1024) for acc in ("A100", "L4")]
    a100, l4 = size_rates(reqs)
    assert a100.max_rate_rps > l4.max_rate_rps > 0
    problem = build_problem(system, OptimizerSettings())
    assert len(problem.servers) == len(system.servers.servers)
