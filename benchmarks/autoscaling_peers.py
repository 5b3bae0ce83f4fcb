"""Two peers' policies, re-implemented from their public descriptions, as what-if deciders.

Used by :mod:`benchmarks.bench_autoscaling` (issue 18). Both keep the GPU type and batch of the
start and are capped by the free cards of that type, as :class:`~benchmarks.autoscaling_policies.HpaStyle`
is (same cards, so the comparison is of when and how much they scale, not of GPU choice). What
they see is what the emulated Prometheus holds (per Deployment, sums over its pods), as HPA does.

- :class:`SloAwareKeda`, after llm-d's SLO-aware KEDA recipe (scale on the predicted p90 TTFT and
  TPOT over their targets, with a no-change band of 0.40-0.55 and a credit for warming
  replicas). The emulated Prometheus has no latency predictor and no histograms, so the ratio
  is the *observed* mean TTFT and mean ITL over the last period against the class's targets
  (which in benchmark 4 bound means): ``x = max(ttft / slo_ttft, itl / slo_itl)``. KEDA hands
  the ratio to HPA as the metric with target 0.55: ``desired = ceil(ready * x / 0.55)`` when
  ``x > 0.55``; ``ceil(ready * x / 0.40)`` (at least 1) when ``x < 0.40``; no change inside the
  band. Warming credit: replicas created but not Ready count as provided, so a scale-up asks only
  for what ready + warming do not cover. Scale-down through HPA's 300 s stabilisation window.
  With no traffic in the period (no latency samples) nothing changes. Knob, ``band_scale``
  (default 1, the recipe's band): the band is ``band_scale x (0.40, 0.55)``. The band is the
  recipe's own setting (the KEDA trigger's target and its no-change floor): a lower band aims the
  fleet at a smaller share of the SLO, i.e. buys headroom with replicas. E.g. 0.6 gives
  0.24-0.33, so ``x`` = 0.5 already scales up.
- :class:`DynamoPlanner`, after NVIDIA Dynamo's SLA planner (a load predictor over the next
  adjustment interval, replicas = predicted load / the per-replica capacity that meets the SLA
  from offline profiling; a short load-based loop for bursts). Predictor: the point forecast of
  :mod:`controller.forecast` (damped Holt on the per-minute request rate; Dynamo ships constant,
  ARIMA, Prophet and Kalman predictors) over the next period + start-up. Capacity: the optimizer's
  ``max_rpm_per_replica`` at the start's GPU type and batch (the queueing model standing in for
  the profiling sweep). Burst loop: when requests wait (``vllm:num_requests_waiting``) more than
  one batch per ready replica on average over the period, one replica more. Scale-down at once.
  Knob, ``fill_share`` (default 1, replicas = forecast / capacity as described): replicas =
  ``ceil(forecast / (fill_share x capacity))``. The planner's operator sets the SLA its profiling
  is run at; a tighter TTFT/ITL target profiles a lower throughput per replica, so the planner
  plans each replica to carry less. ``fill_share`` is that lever stated directly: the share of
  the per-replica SLA capacity the planner fills. E.g. 300 rpm forecast at 100 rpm per replica:
  3 replicas at 1.0, ``ceil(300 / 70)`` = 5 at 0.7.
"""

from __future__ import annotations

import math

from benchmarks.autoscaling_policies import HpaStyle, ready_pods, system_with_loads
from controller.forecast import ForecastPolicy, forecast
from load_emulator.cluster import DeploymentState
from load_emulator.whatif.driver import WhatIfRun
from optimizer.optimize import optimize

BAND = (0.40, 0.55)


def _window(run: WhatIfRun, state: DeploymentState, now_s: float) -> list[dict[str, float]]:
    period_s = run.scenario.period_s
    return [
        s.values
        for s in run.prometheus.series.get((state.namespace, state.name), ())
        if now_s - period_s <= s.t_s <= now_s
    ]


class SloAwareKeda(HpaStyle):
    """llm-d's SLO-aware KEDA formula (module docstring); HPA's capping and window are reused."""

    name = "slo-aware"

    def __init__(self, run: WhatIfRun, window_s: float = 300.0, band_scale: float = 1.0) -> None:
        if not 0 < band_scale * BAND[1] <= 1:
            raise ValueError(f"band_scale must put the band's top in (0, 1], got {band_scale}")
        self.band = (BAND[0] * band_scale, BAND[1] * band_scale)
        super().__init__(run, self.band[1], window_s)
        classes = run.system.class_by_name()
        self.targets: dict[str, tuple[float, float]] = {}
        for server in run.system.servers.servers:
            spec = classes.get(server.service_class)
            target = spec.target_for(server.model) if spec else None
            self.targets[server.name] = (target.slo_ttft_ms, target.slo_itl_ms) if target else (0.0, 0.0)
        self.ratio: dict[str, float] = {}

    def _recommend(self, state: DeploymentState, now_s: float) -> int | None:
        window = _window(self.run, state, now_s)
        ready = ready_pods(state, now_s)
        if len(window) < 2 or ready == 0:
            return None
        first, last = window[0], window[-1]
        ttft_n, itl_n = last["ttft_count"] - first["ttft_count"], last["itl_count"] - first["itl_count"]
        if ttft_n <= 0:
            return None
        slo_ttft_ms, slo_itl_ms = self.targets.get(state.server, (0.0, 0.0))
        ratios = []
        if slo_ttft_ms > 0:
            ratios.append((last["ttft_sum"] - first["ttft_sum"]) / ttft_n * 1000.0 / slo_ttft_ms)
        if slo_itl_ms > 0 and itl_n > 0:
            ratios.append((last["itl_sum"] - first["itl_sum"]) / itl_n * 1000.0 / slo_itl_ms)
        if not ratios:
            return None
        x = max(ratios)
        self.ratio[state.name] = x
        low, high = self.band
        if x > high:
            raw = max(math.ceil(ready * x / high - 1e-9), ready)
            raw = raw if raw > state.replicas else state.replicas  # warming replicas: credited
        elif x < low:
            raw = max(math.ceil(ready * x / low - 1e-9), 1)
        else:
            raw = state.replicas
        return self._stabilised(state, now_s, raw)


class DynamoPlanner(HpaStyle):
    """A Dynamo-style forecast planner (module docstring); HPA's capping is reused, no window."""

    name = "dynamo-planner"

    def __init__(self, run: WhatIfRun, startup_s: float, fill_share: float = 1.0) -> None:
        if not 0 < fill_share <= 1:
            raise ValueError(f"fill_share must be in (0, 1], got {fill_share}")
        super().__init__(run, 1.0, 0.0)
        self.fill_share = fill_share
        self.horizon_s = run.scenario.period_s + startup_s
        self.policy = ForecastPolicy(season_s=0.0, min_history_s=3 * run.scenario.period_s)
        self.rates: dict[str, list[float]] = {}
        self.capacity_rpm: dict[str, float] = {}

    async def start(self, now_s: float) -> None:
        """Per-replica capacity at the start's GPU type and batch (the "profiling" of the planner)."""
        loads = {s.name: max(s.load.arrival_rate_rpm, 1.0) for s in self.run.system.servers.servers}
        system = system_with_loads(self.run, loads, now_s)
        pinned = [  # the start's GPU type and batch: the planner keeps them, so they are profiled
            s.model_copy(update={"keep_accelerator": True, "max_batch_size": s.current_alloc.max_batch})
            for s in system.servers.servers
        ]
        solution = optimize(
            system.model_copy(update={"servers": system.servers.model_copy(update={"servers": pinned})})
        )
        for d in solution.decisions:
            if d.allocation is not None:
                self.capacity_rpm[d.server] = d.allocation.max_rpm_per_replica

    def _recommend(self, state: DeploymentState, now_s: float) -> int | None:
        window = _window(self.run, state, now_s)
        ready = ready_pods(state, now_s)
        capacity = self.capacity_rpm.get(state.server, 0.0)
        if len(window) < 2 or capacity <= 0:
            return None
        span_s = self.run.scenario.period_s
        rate_rpm = (window[-1]["completions"] - window[0]["completions"]) / span_s * 60.0
        rates = self.rates.setdefault(state.name, [])
        rates.append(max(rate_rpm, 0.0))
        del rates[:-120]
        f = forecast(rates, None, self.horizon_s, 0.5, self.policy)
        predicted = f.point_rpm if f is not None else rate_rpm
        wanted = max(math.ceil(max(predicted, rate_rpm) / (capacity * self.fill_share) - 1e-9), 1)
        waiting = sum(v["waiting"] for v in window) / len(window)
        if ready > 0 and waiting > ready * state.max_batch:
            wanted = max(wanted, state.replicas + 1)
        return wanted
