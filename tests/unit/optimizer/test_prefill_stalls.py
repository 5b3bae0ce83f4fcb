"""Prefill-first stalls in the replica model (v0.6 prefill+decode data): saturation, refill cohorts,
the chain against its balance equations written out state by state, ITL and the TTFT residual.
See :func:`optimizer.model.service_time.prefill_decode`, :func:`optimizer.model.service_time.
refill_prompts` and :func:`optimizer.model.queue.prefill_first_head`."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from contract.data.perf import DecodeOnlyPerf, PrefillDecodePerf
from optimizer.model.latency import evaluate, row_set
from optimizer.model.predict import predict
from optimizer.model.queue import QueueState
from optimizer.model.service_time import LengthSpread, service_model
from optimizer.settings import OptimizerSettings

A100 = PrefillDecodePerf(alpha_ms=20.58, beta_ms=0.41, gamma_ms=164.64, delta_ms=0.0128125)
LLAMA70_A100 = PrefillDecodePerf(alpha_ms=27.41, beta_ms=7.07, gamma_ms=219.28, delta_ms=0.2209375)
LLAMA7_H100 = PrefillDecodePerf(alpha_ms=6.96, beta_ms=0.38, gamma_ms=55.68, delta_ms=0.011875)
FIXED = LengthSpread(0.0, 0.0)


def d(perf: PrefillDecodePerf, n: float) -> float:
    return perf.alpha_ms + perf.beta_ms * n


def f(perf: PrefillDecodePerf, n: float, in_tokens: float = 128) -> float:
    return perf.gamma_ms + perf.delta_ms * in_tokens * n


@pytest.mark.parametrize(
    ("perf", "batch"), [(A100, 16), (A100, 1), (LLAMA70_A100, 5)], ids=["a100-16", "a100-1", "70b-5"]
)
def test_saturation_pays_prefills_serially(perf: PrefillDecodePerf, batch: int) -> None:
    """Spread outputs: mu_N = 1 / (f(N) + (out-1) d(N) / N): only decodes are shared by the batch."""
    rows = row_set([service_model(perf, 128, 1024)], [batch], [10 * batch])
    expected = 1000.0 / (f(perf, batch) + 1023 * d(perf, batch) / batch)
    assert math.exp(rows.queue.log_mu_top[0]) == pytest.approx(expected, rel=1e-12)
    if batch > 1:  # inferno's N / S(N) is higher: it shares the prefills too
        assert expected < 1000.0 * batch / (f(perf, batch) + 1023 * d(perf, batch))


def cohort_by_iteration(perf: PrefillDecodePerf, batch: int, in_tokens: float, out_tokens: float) -> float:
    """The cohort c = 1/(1 - s) at the saturation's prefill share s, by fixed-point iteration."""
    u = (out_tokens - 1) * d(perf, batch) / batch
    b = perf.delta_ms * in_tokens * batch
    c = 1.0
    for _ in range(200):
        share = (perf.gamma_ms / c + b) / (u + perf.gamma_ms / c + b)
        c = 1.0 / (1.0 - share)
    return c


@pytest.mark.parametrize(
    ("perf", "batch", "in_tokens", "out_tokens"),
    [(LLAMA7_H100, 32, 512, 256), (A100, 16, 128, 1024), (LLAMA70_A100, 8, 512, 128)],
    ids=["7b-32", "13b-16", "70b-8"],
)
def test_equal_outputs_refill_cohorts_share_the_fixed_prefill_cost(
    perf: PrefillDecodePerf, batch: int, in_tokens: int, out_tokens: int
) -> None:
    """Requests prefilled together finish together: a refill serves the cohort c and pays gamma
    once, so the saturation rises from 1/(u + gamma + b) to 1/(u + gamma/c + b)."""
    fixed = service_model(perf, in_tokens, out_tokens, spread=FIXED)
    spread = service_model(perf, in_tokens, out_tokens, spread=LengthSpread(0.0, 0.5))
    c = cohort_by_iteration(perf, batch, in_tokens, out_tokens)
    assert c > 1.05
    u = (out_tokens - 1) * d(perf, batch) / batch
    b = perf.delta_ms * in_tokens * batch
    alone = 1000.0 / (u + perf.gamma_ms + b)
    grouped = 1000.0 / (u + perf.gamma_ms / c + b)
    top = {
        name: math.exp(row_set([m], [batch], [10 * batch]).queue.log_mu_top[0])
        for name, m in (("fixed", fixed), ("spread", spread))
    }
    assert top["spread"] == pytest.approx(alone, rel=1e-12)
    assert top["fixed"] == pytest.approx(grouped, rel=1e-9)
    assert 1000.0 * batch / fixed.saturated_service_ms(batch) == pytest.approx(grouped, rel=1e-9)
    assert top["fixed"] / top["spread"] == pytest.approx(
        (u + perf.gamma_ms + b) / (u + perf.gamma_ms / c + b)
    )


def test_a_refill_serves_at_most_what_the_token_budget_holds() -> None:
    """llama_7b at N = 32 forms cohorts of 2.43; a budget of 1,024 tokens holds two 512-token
    prompts, so the refill serves 2 and the saturation is 1000/(u + gamma/2 + b)."""
    model = service_model(LLAMA7_H100, 512, 256, spread=FIXED, budget_tokens=1024)
    assert model.refill_cap == 2
    rows = row_set([model], [32], [320]).queue
    u = 255 * d(LLAMA7_H100, 32) / 32
    b = LLAMA7_H100.delta_ms * 512 * 32
    assert rows.refill_group[0] == 2
    assert math.exp(rows.log_mu_top[0]) == pytest.approx(1000.0 / (u + 55.68 / 2 + b), rel=1e-12)
    # Fixed lengths: Allen-Cunneen's 1/2, plus (c - 1)/2 for departures that come c at a time.
    assert rows.wait_scale[0] == pytest.approx(0.5 + 0.5, rel=1e-12)


def balance_chain(
    perf: PrefillDecodePerf, batch: int, rate: float, refill_ms: float, states: int
) -> np.ndarray:
    """The chain's state probabilities from its balance equations, state by state (in 128, out
    1024). The time p_n in state n holds the prefills started there, f(n) per arrival admitted
    (n <= N) and ``refill_ms`` per departure from n + 1 refilled from the queue (n >= N, at the
    flow lam*p_n), and decodes, during which requests leave at min(n, N)/(D*d) per ms; the flow
    lam*p_{n-1} up from n - 1 equals the flow down from n."""
    lam = rate / 1000.0
    p = [1.0]
    for n in range(1, states):
        m = min(n, batch)
        up = lam * p[-1]
        prefill = up * f(perf, n) if n <= batch else 0.0
        decode = up * 1023 * d(perf, m) / m
        keep = 1.0 - lam * refill_ms if n >= batch else 1.0
        p.append((prefill + decode) / keep)
    probs = np.array(p, dtype=np.float64)
    return np.asarray(probs / probs.sum(), dtype=np.float64)


@pytest.mark.parametrize("load", [0.3, 0.7, 0.9, 0.97])
def test_chain_follows_its_balance_equations(load: float) -> None:
    model = service_model(LLAMA70_A100, 128, 1024)
    rows = row_set([model], [5], [50])
    rate = load * math.exp(rows.queue.log_mu_top[0])
    lat = evaluate(rows, np.log(np.array([rate])))
    room = int(lat.state.room[0])
    assert room >= 50  # an open queue below saturation: the room leaving < 1e-9 beyond it
    refill = float(rows.queue.refill_ms[0])
    assert refill == pytest.approx(f(LLAMA70_A100, 5))  # spread outputs: one prompt per refill
    p = balance_chain(LLAMA70_A100, 5, rate, refill, 5 + room + 1)
    states = np.arange(p.size)
    busy = float(np.minimum(states, 5) @ p)
    queued = float(np.maximum(states - 5, 0) @ p)
    x = rate * (1 - p[-1])
    assert lat.state.service_ms[0] == pytest.approx(1000 * busy / x, rel=1e-7)
    assert lat.state.wait_ms[0] == pytest.approx(1000 * queued / x * rows.queue.wait_scale[0], rel=1e-7)
    admit = float((states[:5] + 1) @ p[:5]) + 5 * float(p[5:].sum())
    assert lat.state.admit_batch[0] == pytest.approx(admit, rel=1e-7)


def test_fuller_batch_stretches_each_stay_more() -> None:
    """mu_n = n / (D d(n) + n f(n)): at n = 10 llama_7b completes 2.558 req/s, not the 3.496 of
    ten requests that each wait only for their own prefill."""
    model = service_model(LLAMA7_H100, 512, 256, spread=FIXED)
    q = row_set([model], [32], [320]).queue
    n = 10
    stay = q.base_ms[0] + q.slope_ms[0] * n + q.curve_ms[0] * n * n
    assert 1000 * n / stay == pytest.approx(1000 * n / (255 * d(LLAMA7_H100, n) + n * f(LLAMA7_H100, n, 512)))
    assert 1000 * n / stay == pytest.approx(2.558, abs=1e-3)
    assert 1000 * n / model.service_ms(n) == pytest.approx(3.496, abs=1e-3)


def test_itl_is_the_stay_after_the_first_token_per_decode_step() -> None:
    """ITL = (S - f(n_a) - R)/D: the stay less the request's own prefill (as the chain charges it,
    at its admission batch) and the rest of the step it arrived in, per decode step."""
    model = service_model(A100, 128, 1024)
    rows = row_set([model], [16], [160])
    lat = evaluate(rows, np.log(np.array([0.3])))
    s = lat.state
    residual = residual_ms(s, s.admit_batch[0])
    own = f(A100, s.admit_batch[0])
    assert lat.itl_ms[0] == pytest.approx((s.service_ms[0] - own - residual) / 1023, rel=1e-12)
    # Stalls make it longer than the decode iteration at the same concurrency.
    assert lat.itl_ms[0] > d(A100, s.busy[0])


def residual_ms(s: QueueState, n_a: float) -> float:
    """((busy - phi) d + phi f) / 2 at the admission batch, phi = X f / 1000."""
    busy = 1 - s.idle_prob[0]
    phi = s.throughput_rps[0] * f(A100, n_a) / 1000
    return float(0.5 * ((busy - phi) * d(A100, n_a) + phi * f(A100, n_a)))


def test_ttft_adds_residual_and_the_prompts_prefilled_with_it() -> None:
    """TTFT = W + R + gamma + delta*in*(n_direct*k + c*N*P(full)): the rest R of the iteration in
    progress, then a prefill step that also serves the k - 1 = 2 X R prompts that arrived during
    the step it arrived in; the residual and the group vanish as the load goes to zero."""
    model = service_model(A100, 128, 1024)
    rows = row_set([model], [16], [160])
    lat = evaluate(rows, np.log(np.array([0.3])))
    s = lat.state
    residual = residual_ms(s, s.admit_batch[0])
    assert 5.0 < residual < 20.0
    k = 1 + 2 * s.throughput_rps[0] * residual / 1000
    queued = 16 * s.full_prob[0]  # spread outputs: one prompt per refill
    n_step = (s.admit_batch[0] - queued) * k + queued
    assert k > 1.001
    assert lat.ttft_ms[0] == pytest.approx(s.wait_ms[0] + f(A100, n_step) + residual, rel=1e-12)
    idle = evaluate(rows, np.log(np.array([1e-9])))
    assert idle.ttft_ms[0] == pytest.approx(f(A100, 1), rel=1e-6)


def test_overload_is_finite() -> None:
    """Far above saturation (lambda*f_top > 1) the chain sits at its room: finite, blocking."""
    model = service_model(LLAMA7_H100, 512, 256, spread=FIXED)
    p = predict(LLAMA7_H100, 32, 512, 256, 50.0, OptimizerSettings(), spread=FIXED)
    assert math.isfinite(p.ttft_ms) and math.isfinite(p.itl_ms)
    assert p.block_prob > 0.9
    assert p.saturation_rps == pytest.approx(1000 * 32 / model.saturated_service_ms(32), rel=1e-9)


def test_decode_only_ttft_adds_half_an_iteration_when_busy() -> None:
    """No stall terms outside the prefill+decode schema: mu_N = N / S(N); a newcomer joins at the
    next iteration boundary, TTFT = W + ITL + (1 - p_0) ITL / 2."""
    perf = DecodeOnlyPerf(alpha_ms=20.58, beta_ms=0.41)
    model = service_model(perf, 0, 1024)
    assert model.saturated_service_ms(16) == model.service_ms(16)
    lat = evaluate(row_set([model], [16], [160]), np.log(np.array([0.3])))
    s = lat.state
    busy = 1 - s.idle_prob[0]
    assert 0.5 < busy < 1.0
    assert lat.ttft_ms[0] == pytest.approx(s.wait_ms[0] + lat.itl_ms[0] * (1 + busy / 2), rel=1e-12)
    p = predict(perf, 16, 0, 1024, 0.3, OptimizerSettings())
    assert p.ttft_ms == pytest.approx(lat.ttft_ms[0], rel=1e-9)


@pytest.mark.parametrize("rate", [0.5, 2.0, 50.0])
def test_one_token_outputs_have_no_decode_to_stall(rate: float) -> None:
    """out = 1: a prefill is the whole stay, so prefills are paid one after another (mu_N = 1/f(N))
    and far above it the chain blocks 1 - mu_N/lambda of the arrivals; no numpy warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = predict(LLAMA7_H100, 32, 512, 1, rate, OptimizerSettings(), spread=FIXED)
    assert p.saturation_rps == pytest.approx(1000 / f(LLAMA7_H100, 32, 512), rel=1e-9)
    assert math.isfinite(p.ttft_ms) and math.isfinite(p.itl_ms)
    if rate > p.saturation_rps:
        assert p.block_prob == pytest.approx(1 - p.saturation_rps / rate, abs=0.01)
    else:
        assert p.block_prob < 1e-6
