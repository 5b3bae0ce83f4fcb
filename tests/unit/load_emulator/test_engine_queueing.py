"""The emulator against queueing theory where the theory is exact.

- Batch size 1, decode-only with ``beta = 0``: each request is served alone in ``out`` iterations
  of ``alpha``; geometric output lengths make the service time geometric (an exponential in the
  limit), so the replica is an M/G/1 queue whose mean time in system is Pollaczek-Khinchine's
  ``T = E[S] + lambda E[S^2] / (2 (1 - rho))``, within ~1/(2m) of M/M/1's ``1 / (mu - lambda)``.
- Far above capacity a decode-only replica keeps its batch full: completions/s = ``N / S(N)`` with
  ``S(N) = out * (alpha + beta*N)``.
- Any schema, saturated: Little's law on the batch, completions/s = N / mean time in service.
"""

from __future__ import annotations

import pytest

from load_emulator.engine import EngineConfig
from load_emulator.patterns import Constant
from load_emulator.tokens import TokenSpec
from tests.unit.load_emulator.builders import DEP, decode_only, iteration, one_server, prefill_decode

ALPHA_MS, MEAN_OUT = 10.0, 100.0  # E[S] = 1 s


@pytest.mark.parametrize(("rho", "tolerance"), [(0.5, 0.03), (0.7, 0.05)], ids=["rho=0.5", "rho=0.7"])
def test_batch_one_is_mm1(rho: float, tolerance: float) -> None:
    mean_s = ALPHA_MS / 1000 * MEAN_OUT
    lam = rho / mean_s
    pattern = Constant(lam * 60, TokenSpec(0, MEAN_OUT, "geometric"))
    engine, _ = one_server(decode_only(ALPHA_MS, 0.0, max_batch=1), pattern, seed=11)
    horizon_s = 150_000 / lam
    engine.advance_to(horizon_s)
    w = engine.window(DEP, 0.02 * horizon_s, horizon_s)
    # Geometric service: E[S^2] = a^2 (2 m^2 - m).
    es2 = (ALPHA_MS / 1000) ** 2 * (2 * MEAN_OUT**2 - MEAN_OUT)
    pk_mean_s = mean_s + lam * es2 / (2 * (1 - rho))
    mm1_mean_s = 1 / (1 / mean_s - lam)
    assert pk_mean_s == pytest.approx(mm1_mean_s, rel=0.01)
    assert w.e2e_mean_ms / 1000 == pytest.approx(pk_mean_s, rel=tolerance)
    assert w.throughput_rps == pytest.approx(lam, rel=0.02)
    # TTFT = wait + one iteration; the M/M/1 wait is rho / (mu - lambda).
    assert w.ttft_mean_ms / 1000 == pytest.approx(rho * mm1_mean_s + ALPHA_MS / 1000, rel=tolerance + 0.02)


def test_decode_only_saturates_at_n_over_s_of_n() -> None:
    batch, alpha_ms, beta_ms, out = 8, 10.0, 1.0, 100
    s_of_n = out * (alpha_ms + beta_ms * batch) / 1000
    capacity_rps = batch / s_of_n  # 4.44 req/s
    pattern = Constant(10 * capacity_rps * 60, TokenSpec(0, out, "deterministic"))
    engine, _ = one_server(decode_only(alpha_ms, beta_ms, max_batch=batch), pattern)
    engine.advance_to(600.0)
    w = engine.window(DEP, 60.0, 600.0)
    assert w.throughput_rps == pytest.approx(capacity_rps, rel=0.01)
    assert w.itl_p50_ms == pytest.approx(alpha_ms + beta_ms * batch)
    ((_, replica),) = engine.replicas()
    assert replica.running == batch and len(replica.waiting) > 1000


@pytest.mark.parametrize(
    ("perf", "scheduling"),
    [
        (prefill_decode(20, 0.4, 160, 0.012, max_batch=16), "chunked"),
        (iteration(20, 0.05, 0.001, max_batch=16), "chunked"),
        (iteration(20, 0.05, 0.001, max_batch=16), "prefill-first"),
    ],
    ids=["prefill-decode", "iteration-chunked", "iteration-prefill-first"],
)
def test_saturated_batch_obeys_littles_law(perf: object, scheduling: str) -> None:
    pattern = Constant(3000.0, TokenSpec(128, 200, "geometric"))
    config = EngineConfig(sync_period_s=0, scheduling=scheduling)  # type: ignore[arg-type]
    engine, _ = one_server(perf, pattern, config=config, seed=5)  # type: ignore[arg-type]
    engine.advance_to(900.0)
    w = engine.window(DEP, 100.0, 900.0)
    # Time in service = e2e - queue wait; the batch holds N requests the whole time.
    in_service_s = (w.e2e_mean_ms - w.queue_mean_ms) / 1000
    assert w.throughput_rps == pytest.approx(16 / in_service_s, rel=0.03)
    # Saturated below what the arrival rate asks: a queue builds up.
    assert w.throughput_rps < w.arrival_rpm / 60 / 2


def test_same_seed_same_run_other_seed_other_run() -> None:
    def run(seed: int) -> tuple[float, float, int]:
        pattern = Constant(600.0, TokenSpec(128, 64, "lognormal"))
        engine, _ = one_server(iteration(20, 0.05, 0.001), pattern, replicas=2, seed=seed)
        engine.advance_to(120.0)
        w = engine.window(DEP, 0, 120)
        return w.ttft_p95_ms, w.itl_p95_ms, w.completed

    assert run(1) == run(1)
    assert run(1) != run(2)
