"""Prefill-first stalls in the replica model (v0.6 prefill+decode data): saturation, the stretched
head of the chain against a brute-force chain, ITL and the TTFT residual. See
:func:`optimizer.model.service_time.prefill_decode` and :func:`optimizer.model.queue.head_line`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from contract.data.perf import DecodeOnlyPerf, PrefillDecodePerf
from optimizer.model.latency import evaluate, row_set
from optimizer.model.predict import predict
from optimizer.model.queue import head_line, stall_share
from optimizer.model.service_time import service_model
from optimizer.settings import OptimizerSettings

A100 = PrefillDecodePerf(alpha_ms=20.58, beta_ms=0.41, gamma_ms=164.64, delta_ms=0.0128125)
LLAMA70_A100 = PrefillDecodePerf(alpha_ms=27.41, beta_ms=7.07, gamma_ms=219.28, delta_ms=0.2209375)


def d(perf: PrefillDecodePerf, n: float) -> float:
    return perf.alpha_ms + perf.beta_ms * n


def f(perf: PrefillDecodePerf, n: float, in_tokens: float = 128) -> float:
    return perf.gamma_ms + perf.delta_ms * in_tokens * n


@pytest.mark.parametrize(
    ("perf", "batch"), [(A100, 16), (A100, 1), (LLAMA70_A100, 5)], ids=["a100-16", "a100-1", "70b-5"]
)
def test_saturation_pays_prefills_serially(perf: PrefillDecodePerf, batch: int) -> None:
    """mu_N = 1 / (f(N) + (out-1) d(N) / N): only decodes are shared by the batch."""
    rows = row_set([service_model(perf, 128, 1024)], [batch], [10 * batch])
    expected = 1000.0 / (f(perf, batch) + 1023 * d(perf, batch) / batch)
    assert math.exp(rows.queue.log_mu_top[0]) == pytest.approx(expected, rel=1e-12)
    if batch > 1:  # inferno's N / S(N) is higher: it shares the prefills too
        assert expected < 1000.0 * batch / (f(perf, batch) + 1023 * d(perf, batch))


def test_stall_share_is_the_prefill_at_the_loads_own_batch() -> None:
    """s = lambda f(n + 2), n the fluid number in service on the stretched line (docstring)."""
    model = service_model(A100, 128, 1024)
    rows = row_set([model], [16], [160]).queue
    share = float(stall_share(rows, np.array([0.4]))[0])
    extra = share / (1 - share)
    base, slope = (
        model.base_ms + model.stretch_base_ms * extra,
        model.slope_ms + model.stretch_slope_ms * extra,
    )
    n = 0.4 * base / (1000 - 0.4 * slope)
    assert n == pytest.approx(11.20, abs=0.01)
    assert share == pytest.approx(0.4 * f(A100, n + 2) / 1000, rel=1e-6)
    assert share == pytest.approx(0.07452, abs=1e-5)


def test_head_line_stretches_decodes_by_prefill_share() -> None:
    model = service_model(A100, 128, 1024)
    rows = row_set([model], [16], [160]).queue
    share = float(stall_share(rows, np.array([0.4]))[0])
    base, slope = head_line(rows, np.log(np.array([0.4])))
    assert base[0] == pytest.approx(164.64 + 1023 * 20.58 / (1 - share), rel=1e-12)
    assert slope[0] == pytest.approx(1.64 + 1023 * 0.41 / (1 - share), rel=1e-12)
    # Above saturation the share stops growing at mu_N * f.
    far = head_line(rows, np.log(np.array([50.0])))
    top = head_line(rows, rows.log_mu_top)
    assert (far[0][0], far[1][0]) == pytest.approx((top[0][0], top[1][0]), rel=1e-12)


def brute_wait_ms(
    perf: PrefillDecodePerf, batch: int, room: int, rate: float, share: float
) -> tuple[float, float]:
    """(mean wait, mean stay) of the chain written out state by state: mu_n = 1000 n / S'(n) with
    S'(n) = f(n) + (out-1) d(n) / (1 - share) for n < N (share: :func:`stall_share`), the
    unstretched 1000 N / S(N) in state N (no arrival is prefilled there), mu_N's saturation rate
    above."""
    mu_top = 1000.0 / (f(perf, batch) + 1023 * d(perf, batch) / batch)
    log_p = [0.0]
    for n in range(1, batch + room + 1):
        if n < batch:
            mu = 1000.0 * n / (f(perf, n) + 1023 * d(perf, n) / (1 - share))
        elif n == batch:
            mu = 1000.0 * n / (f(perf, n) + 1023 * d(perf, n))
        else:
            mu = mu_top
        log_p.append(log_p[-1] + math.log(rate / mu))
    p = np.exp(np.array(log_p) - max(log_p))
    p /= p.sum()
    states = np.arange(p.size)
    x = rate * (1 - p[-1])
    busy = float(np.minimum(states, batch) @ p)
    total = float(states @ p)
    return 1000 * (total - busy) / x, 1000 * busy / x


@pytest.mark.parametrize("load", [0.3, 0.7, 0.9, 0.97])
def test_chain_with_stalls_matches_brute_force(load: float) -> None:
    model = service_model(LLAMA70_A100, 128, 1024)
    rows = row_set([model], [5], [50])
    rate = load * math.exp(rows.queue.log_mu_top[0])
    lat = evaluate(rows, np.log(np.array([rate])))
    # Below saturation the queue is open: the chain runs to the room that leaves < 1e-9 beyond it.
    room = int(lat.state.room[0])
    assert room >= 50
    share = float(stall_share(rows.queue, np.array([rate]))[0])
    wait, stay = brute_wait_ms(LLAMA70_A100, 5, room, rate, share)
    assert lat.state.wait_ms[0] == pytest.approx(wait, rel=1e-8)
    assert lat.state.service_ms[0] == pytest.approx(stay, rel=1e-8)


def test_itl_is_stay_less_own_prefill_per_decode_step() -> None:
    model = service_model(A100, 128, 1024)
    lat = evaluate(row_set([model], [16], [160]), np.log(np.array([0.3])))
    s = lat.state
    n_eff = (s.service_ms[0] - s.head_base_ms[0]) / s.head_slope_ms[0]
    assert lat.itl_ms[0] == pytest.approx((s.service_ms[0] - f(A100, n_eff)) / 1023, rel=1e-12)
    # Stalls make it longer than the decode iteration at the same concurrency.
    assert lat.itl_ms[0] > d(A100, n_eff)


def test_ttft_adds_residual_of_iteration_in_progress() -> None:
    """TTFT = W + f(n_eff) + ((busy - phi) d + phi f) / 2, phi = X f / 1000 (arrivals wait out the
    iteration running when they come); the residual vanishes as the load goes to zero."""
    model = service_model(A100, 128, 1024)
    rows = row_set([model], [16], [160])
    lat = evaluate(rows, np.log(np.array([0.3])))
    s = lat.state
    n_eff = (s.service_ms[0] - s.head_base_ms[0]) / s.head_slope_ms[0]
    busy = 1 - s.idle_prob[0]
    phi = s.throughput_rps[0] * f(A100, n_eff) / 1000
    residual = 0.5 * ((busy - phi) * d(A100, n_eff) + phi * f(A100, n_eff))
    assert 5.0 < residual < 20.0
    assert lat.ttft_ms[0] == pytest.approx(s.wait_ms[0] + f(A100, n_eff) + residual, rel=1e-12)
    idle = evaluate(rows, np.log(np.array([1e-9])))
    assert idle.ttft_ms[0] == pytest.approx(f(A100, 1), rel=1e-6)


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
