"""Service time S(n) and latency forms of the three schemas (optimizer.model.service_time)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf, StepPerf
from optimizer.model.latency import evaluate, row_set
from optimizer.model.service_time import LengthSpread, ServiceModel, prefill_steps, service_model

DECODE = DecodeOnlyPerf(alpha_ms=20.58, beta_ms=0.41)
PREFILL = PrefillDecodePerf(alpha_ms=20.58, beta_ms=0.41, gamma_ms=164.64, delta_ms=0.0128125)
ITERATION = IterationPerf(alpha_ms=20.58, beta_ms=0.041, gamma_ms=0.00128125)


def latency(model: ServiceModel, service_ms: float, busy: float, n_eff: float) -> tuple[float, float]:
    features = np.array([1.0, service_ms, busy, n_eff])
    return float(np.dot(model.itl_coef, features)), float(np.dot(model.prefill_coef, features))


def issue_service_ms(perf: PerfParams, n: float, in_tokens: float, out_tokens: float) -> float:
    """S(n) exactly as the issue writes it for each schema."""
    if isinstance(perf, DecodeOnlyPerf):
        return out_tokens * (perf.alpha_ms + perf.beta_ms * n)
    if isinstance(perf, PrefillDecodePerf):
        f = perf.gamma_ms + perf.delta_ms * in_tokens * n
        return f + (out_tokens - 1) * (perf.alpha_ms + perf.beta_ms * n)
    # Chunked engine, no budget, geometric-like lengths (E[out^2] = 2 out^2): one prefill step
    # and out - 1 decode steps, each request's work w once per stay: S(n) = out*alpha + n*w.
    decodes = out_tokens - 1
    context = in_tokens + decodes * in_tokens + (2 * out_tokens**2 - out_tokens) / 2
    work = perf.beta_ms * (in_tokens + decodes) + perf.gamma_ms * context
    return out_tokens * perf.alpha_ms + n * work


@pytest.mark.parametrize(
    "perf", [DECODE, PREFILL, ITERATION], ids=["decode-only", "prefill-decode", "iteration"]
)
@pytest.mark.parametrize(
    ("in_tokens", "out_tokens"), [(128, 1024), (2048, 64), (0, 1)], ids=["chat", "long-in", "one-out"]
)
def test_service_time_is_the_issue_formula(perf: PerfParams, in_tokens: float, out_tokens: float) -> None:
    model = service_model(perf, in_tokens, out_tokens)
    for n in (1, 7, 64):
        assert model.service_ms(n) == pytest.approx(
            issue_service_ms(perf, n, in_tokens, out_tokens), rel=1e-12
        )


def test_decode_only_docstring_example() -> None:
    model = service_model(DECODE, 0, 1024)
    assert (model.base_ms, model.slope_ms) == pytest.approx((21073.92, 419.84))
    assert model.service_rate_rps(1) == pytest.approx(0.046525, rel=1e-4)
    assert model.service_rate_rps(16) == pytest.approx(0.57572, rel=1e-4)
    itl, prefill = latency(model, 24000.0, 5.0, 0.0)
    assert itl == pytest.approx(23.4375)
    assert prefill == pytest.approx(itl)  # TTFT = W + one decode step


def test_prefill_decode_docstring_example() -> None:
    model = service_model(PREFILL, 128, 1024)
    assert (model.base_ms, model.slope_ms) == pytest.approx((21217.98, 421.07))
    n_eff = (24000 - model.base_ms) / model.slope_ms
    assert n_eff == pytest.approx(6.607, abs=1e-3)
    itl, prefill = latency(model, 24000.0, 5.0, n_eff)
    # ITL: the stay less the own prefill, per decode step (it includes the others' prefills).
    assert itl == pytest.approx((24000 - (164.64 + 0.0128125 * 128 * n_eff)) / 1023)
    assert prefill == pytest.approx(164.64 + 0.0128125 * 128 * n_eff)
    assert (itl, prefill) == pytest.approx((23.289, 175.48), abs=5e-3)
    # Saturation: prefills are paid serially, mu_N = N / (S(N) + (N-1) f(N)).
    assert model.saturated_service_ms(16) == pytest.approx(30818.3)
    assert 16000 / model.saturated_service_ms(16) == pytest.approx(0.51917, rel=1e-4)


def test_step_docstring_example() -> None:
    """Fixed 512/256 on the granite_13b step cost: the request's own work is counted once."""
    perf = StepPerf(20.58, 0.041, 0.041, 0.00128125)
    model = service_model(perf, 512, 256, spread=LengthSpread(0.0, 0.0), budget_tokens=2048)
    assert (model.base_ms, model.slope_ms) == pytest.approx((5268.48, 241.203))
    assert 32000 / model.service_ms(32) == pytest.approx(2.4640, abs=1e-4)
    assert model.budget_batch == pytest.approx(683.557, abs=1e-3)
    itl, step = latency(model, model.service_ms(1), 2.0, 0.0)
    assert itl == pytest.approx(20.58 + 0.041 + 0.00128125 * (512 + 128))  # a decode step alone
    assert step == pytest.approx(20.908 + 2 * 0.942199, abs=1e-5)
    assert model.prefill_own_ms == pytest.approx(512 * (0.041 + 0.00128125 / 2))
    small = service_model(perf, 512, 256, spread=LengthSpread(0.0, 0.0), budget_tokens=512)
    assert small.budget_batch == pytest.approx(171.557, abs=1e-3)
    assert 1000 * small.budget_batch / small.service_ms(small.budget_batch) == pytest.approx(3.6716, abs=1e-4)


def test_prefill_steps_docstring_example() -> None:
    assert prefill_steps(512, 511, exact=True) == 2
    assert prefill_steps(1164, 511, exact=False) == pytest.approx(2.814, abs=1e-3)
    assert prefill_steps(512, math.inf, exact=True) == 1


def test_evaluate_uses_queue_means() -> None:
    """At lambda -> 0 a lone request runs at S(1): the decode-only ITL is t(1) = alpha + beta."""
    model = service_model(DECODE, 0, 1024)
    rows = row_set([model], [16], [160])
    lat = evaluate(rows, np.log(np.array([1e-9])))
    assert lat.itl_ms[0] == pytest.approx(20.99, rel=1e-6)
    assert lat.state.wait_ms[0] == pytest.approx(0.0, abs=1e-6)


def test_prefill_decode_itl_at_saturation_includes_prefill_stalls() -> None:
    """Far above saturation a queue always waits, so a prefill follows each completion: a request
    stays S(N) + (N-1) f(N) and ITL = (S - (TTFT - W))/(out-1), about d(N) + (N-1) f(N) / (out-1)
    (less the chain's residual of the step in progress), above inferno's d(N)."""
    model = service_model(PREFILL, 128, 1024)
    rows = row_set([model], [4], [40])
    lat = evaluate(rows, np.log(np.array([10.0])))  # ~70x mu_4
    d4, f4 = 20.58 + 0.41 * 4, 164.64 + 1.64 * 4
    assert lat.state.service_ms[0] == pytest.approx(model.saturated_service_ms(4), rel=1e-4)
    assert lat.itl_ms[0] == pytest.approx((lat.state.service_ms[0] - lat.prefill_ms[0]) / 1023, rel=1e-9)
    assert lat.itl_ms[0] == pytest.approx(d4 + 3 * f4 / 1023, rel=1e-3)
    assert lat.itl_ms[0] > d4


@pytest.mark.parametrize(
    ("perf", "out_tokens", "message"),
    [
        (DECODE, 0, "output tokens"),
        (DECODE, -5, "output tokens"),
        (DecodeOnlyPerf(0.0, 0.0), 100, "zero service time"),
        (IterationPerf(0.0, 0.0, 0.0), 100, "zero service time"),
    ],
    ids=["zero-out", "negative-out", "zero-decode", "zero-iteration"],
)
def test_bad_input_is_rejected(perf: PerfParams, out_tokens: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        service_model(perf, 10, out_tokens)
