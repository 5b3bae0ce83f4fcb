"""Model accuracy grid: the optimizer's predicted TTFT/ITL against the emulator's observed ones.

Role: the measurement core of :mod:`benchmarks.bench_accuracy` (issue 6, benchmark 3) and of
``tests/sim/test_accuracy_smoke.py``. Pure apart from CPU: no I/O, no clock reads.

One grid point is (model, accelerator, batch N, load share). Its arrival rate is the share times
the *emulator's* saturation throughput for that batch, measured with a permanent backlog
(:func:`emulated_saturation_rps`), so the grid does not depend on the model being judged and the
before/after runs use the same rates. At that rate:

- the emulator (:mod:`load_emulator.replica`, one replica, Poisson arrivals, geometric token
  counts with the server's mean in/out tokens, seeded) runs for ``requests`` expected arrivals per
  seed after a warm-up of ``warmup_share`` of that time; observed means are the exact
  event-level means of the measured window (TTFT over first tokens, ITL over every inter-token
  gap, token-weighted like vLLM's histogram), averaged over the seeds, with a 95 % confidence
  interval from the seeds' spread (Student t);
- every point and every saturation run draws its own seeds (:func:`point_seeds`, a hash of the
  point's name). The same seed at every point would give every row the same arrival and token
  stream in units of its own service time (a Poisson stream at rate r is a unit-rate stream
  scaled by 1/r), so one lucky or unlucky stream shifts a whole load column alike;
- the model (:func:`optimizer.model.predict`, the optimizer's own settings, so its queue room
  ``max_queue_factor * N``) predicts mean TTFT (wait + prefill), mean ITL and TTFT p50/p95.

Relative error is ``(predicted - observed) / observed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from contract.data.perf import PerfParams
from load_emulator.patterns import Constant, stable_seed
from load_emulator.replica import ReplicaSim
from load_emulator.server import ServerSim
from load_emulator.stats import WindowStats
from load_emulator.timing import IterationCost
from load_emulator.tokens import TokenSpec
from optimizer.model.batch import default_batch
from optimizer.model.predict import predict
from optimizer.settings import OptimizerSettings

TOKEN_BUDGET = 8192
"""vLLM's default ``--max-num-batched-tokens``, as in :class:`load_emulator.engine.EngineConfig`."""
LOADS = (0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 0.95)
SATURATION_BACKLOG = 3.0
"""The saturation run offers this multiple of the replica's nominal capacity (a permanent queue)."""


@dataclass(frozen=True)
class Pair:
    model: str
    accelerator: str
    perf: PerfParams
    max_batch_size: int


@dataclass(frozen=True)
class PointResult:
    model: str
    accelerator: str
    batch: int
    load: float
    rate_rps: float
    saturation_rps: float
    observed_requests: int
    obs_ttft_mean_ms: float
    obs_ttft_p50_ms: float
    obs_ttft_p95_ms: float
    obs_itl_mean_ms: float
    obs_throughput_rps: float
    obs_ttft_spread: float
    """Half the range of the seeds' mean TTFTs over their mean: the measurement's own noise."""
    pred_ttft_mean_ms: float
    pred_ttft_p50_ms: float
    pred_ttft_p95_ms: float
    pred_itl_mean_ms: float
    pred_wait_ms: float
    pred_utilization: float
    seeds: int = 0
    """How many independent runs the observed means average."""
    obs_rate_rps: float = math.nan
    """The realised arrival rate in the measured windows (mean over the seeds)."""
    obs_ttft_ci: float = math.nan
    """Half-width of the 95 % confidence interval of the observed mean TTFT, over that mean."""
    obs_itl_ci: float = math.nan
    pred_ttft_at_obs_rate_ms: float = math.nan
    """The model's mean TTFT at the realised rate instead of the nominal one."""

    @property
    def ttft_error(self) -> float:
        return relative_error(self.pred_ttft_mean_ms, self.obs_ttft_mean_ms)

    @property
    def itl_error(self) -> float:
        return relative_error(self.pred_itl_mean_ms, self.obs_itl_mean_ms)


def spread(values: Sequence[float]) -> float:
    """``(max - min) / 2 / mean`` of the finite values; NaN with fewer than two."""
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < 2 or not sum(finite) > 0:
        return math.nan
    return (max(finite) - min(finite)) / 2 / (sum(finite) / len(finite))


def confidence(values: Sequence[float], level: float = 0.95) -> float:
    """Half-width of the ``level`` confidence interval of the mean of ``values`` (independent
    runs; Student t with n - 1 degrees of freedom) over that mean; NaN with fewer than two."""
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < 2 or not sum(finite) > 0:
        return math.nan
    n = len(finite)
    mean = sum(finite) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    return float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n) / mean


def point_seeds(name: str, count: int) -> list[int]:
    """``count`` seeds of their own for the run named ``name`` (e.g. ``granite_13b/A100/N8/60``):
    independent streams per point, reproducible from the name alone."""
    return [stable_seed(k, name) for k in range(1, count + 1)]


def relative_error(predicted: float, observed: float) -> float:
    """``(predicted - observed) / observed``; NaN when nothing was observed."""
    if not observed > 0 or math.isnan(predicted):
        return math.nan
    return (predicted - observed) / observed


def _replica(perf: PerfParams, batch: int, stats_sink: ServerSim) -> ReplicaSim:
    return ReplicaSim(
        "accuracy-0",
        IterationCost.from_perf(perf),
        batch,
        stats_sink.stats,
        chunked=True,
        token_budget=TOKEN_BUDGET,
        kv_capacity_tokens=1 << 40,  # preemption is not modelled; the gauge is unused here
    )


def emulate(
    perf: PerfParams,
    batch: int,
    tokens: TokenSpec,
    rate_rps: float,
    horizon_s: float,
    warmup_s: float,
    seed: int,
) -> WindowStats:
    """One replica at a steady Poisson ``rate_rps`` from empty; statistics of the window
    ``[warmup, warmup + horizon)``."""
    server = ServerSim(Constant(rate_rps * 60.0, tokens).arrivals(seed))
    server.add_replica(_replica(perf, batch, server), 0.0)
    end_s = warmup_s + horizon_s
    server.advance_to(end_s)
    server.flush()
    return server.stats.window(warmup_s, end_s)


def nominal_capacity_rps(perf: PerfParams, batch: int, in_tokens: float, out_tokens: float) -> float:
    """A rough capacity (full batch, no prefill cost) used only to size the saturation run."""
    cost = IterationCost.from_perf(perf)
    return batch / (max(out_tokens, 1.0) * cost.decode_s(batch, batch * (in_tokens + out_tokens / 2)))


def emulated_saturation_rps(
    perf: PerfParams, batch: int, tokens: TokenSpec, completions: int, seed: int
) -> float:
    """Completions/s of one replica with a permanent backlog: arrivals at 3x its nominal capacity,
    throughput measured over the second half of a run long enough for ``completions`` there."""
    rate = SATURATION_BACKLOG * nominal_capacity_rps(
        perf, batch, tokens.mean_in_tokens, tokens.mean_out_tokens
    )
    half_s = completions / (rate / SATURATION_BACKLOG)
    return emulate(perf, batch, tokens, rate, half_s, half_s, seed).throughput_rps


def measure_point(
    pair: Pair,
    batch: int,
    load: float,
    saturation_rps: float,
    tokens: TokenSpec,
    requests: int,
    seeds: Sequence[int],
    settings: OptimizerSettings,
    warmup_share: float = 0.1,
) -> PointResult:
    """Emulate and predict one grid point; observed values are means over ``seeds`` (give each
    point its own: :func:`point_seeds`)."""
    rate = load * saturation_rps
    horizon_s = requests / rate
    windows = [emulate(pair.perf, batch, tokens, rate, horizon_s, warmup_share * horizon_s, s) for s in seeds]

    def avg(values: Sequence[float]) -> float:
        finite = [v for v in values if not math.isnan(v)]
        return sum(finite) / len(finite) if finite else math.nan

    in_tok, out_tok = tokens.mean_in_tokens, tokens.mean_out_tokens
    mean = predict(pair.perf, batch, in_tok, out_tok, rate, settings, ttft_percentile=95.0)
    median = predict(pair.perf, batch, in_tok, out_tok, rate, settings, ttft_percentile=50.0)
    observed_rate = avg([w.arrivals / horizon_s for w in windows])
    at_observed = predict(pair.perf, batch, in_tok, out_tok, observed_rate, settings)
    return PointResult(
        model=pair.model,
        accelerator=pair.accelerator,
        batch=batch,
        load=load,
        rate_rps=rate,
        saturation_rps=saturation_rps,
        observed_requests=sum(w.completed for w in windows),
        obs_ttft_mean_ms=avg([w.ttft_mean_ms for w in windows]),
        obs_ttft_p50_ms=avg([w.ttft_p50_ms for w in windows]),
        obs_ttft_p95_ms=avg([w.ttft_p95_ms for w in windows]),
        obs_itl_mean_ms=avg([w.itl_mean_ms for w in windows]),
        obs_throughput_rps=avg([w.throughput_rps for w in windows]),
        obs_ttft_spread=spread([w.ttft_mean_ms for w in windows]),
        pred_ttft_mean_ms=mean.ttft_ms,
        pred_ttft_p50_ms=median.ttft_percentile_ms,
        pred_ttft_p95_ms=mean.ttft_percentile_ms,
        pred_itl_mean_ms=mean.itl_ms,
        pred_wait_ms=mean.wait_ms,
        pred_utilization=mean.utilization,
        seeds=len(windows),
        obs_rate_rps=observed_rate,
        obs_ttft_ci=confidence([w.ttft_mean_ms for w in windows]),
        obs_itl_ci=confidence([w.itl_mean_ms for w in windows]),
        pred_ttft_at_obs_rate_ms=at_observed.ttft_ms,
    )


def batches_for(max_batch_size: int, at_tokens: float, out_tokens: float) -> list[int]:
    """The optimizer's default batch (:func:`optimizer.model.batch.default_batch`), half of it and
    the data's ``maxBatchSize``: small, default and large batches, deduplicated, ascending."""
    default = default_batch(max_batch_size, at_tokens, out_tokens)
    return sorted({max(1, default // 2), default, max_batch_size})
