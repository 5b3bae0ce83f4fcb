"""The autoscaling benchmark's baseline policies, as what-if deciders (:mod:`load_emulator.whatif.deciders`).

Used by :mod:`benchmarks.bench_autoscaling`. "Ours" is the real loop
(:class:`~load_emulator.whatif.deciders.LoopDecider`); the three baselines here see the same
world at the same instants and change the emulated cluster directly (no actuator, so none of its
hold-downs), each through :func:`apply`:

- :class:`StaticForPeak`: the optimizer, once at t = 0, on every server's highest one-minute mean
  rate of the whole run (known in advance); never changed.
- :class:`Oracle`: every cycle, the optimizer on the TRUE load ahead: each server's highest
  one-minute mean rate over ``[now, now + period + startup)`` (a pod asked for now serves from
  ``now + startup``, the longest start-up in the world's model data; scale-downs act at once, so
  the window starts now). No hold-downs.
- :class:`HpaStyle`: ``desired = ceil(current * utilisation / target)``, as Kubernetes' HPA
  computes it, with ``current`` the ready pods and ``utilisation`` = mean over the last period's
  scrapes of ``vllm:num_requests_running`` summed over the pods, divided by ``ready * max batch``
  (batch-slot occupancy, the per-pod metric HPA users scale vLLM on), so
  ``desired = ceil(mean running / (target * max batch))``. Scale-up is immediate; scale-down
  takes the highest recommendation of the last ``window_s`` (HPA's stabilisation window). The
  GPU type and batch stay those of the start; desired is capped by the free cards of that type
  (it never asks for Pending pods). Missing data (no ready pod, no scrape): no change.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from benchmarks.autoscaling_world import peak_by_server
from contract.data.system import SystemData
from contract.solution import Solution
from load_emulator.cluster import DeploymentState
from load_emulator.patterns import LoadPattern
from load_emulator.whatif.deciders import Decision
from load_emulator.whatif.driver import WhatIfRun
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings


def apply(
    run: WhatIfRun, state: DeploymentState, now_s: float, *, accelerator: str, replicas: int, max_batch: int
) -> str:
    """Make one Deployment run ``replicas`` x ``accelerator`` at ``max_batch``; ``applied`` or ``noop``."""
    cluster = run.fleet.cluster
    acc_count = next(
        (m.acc_count for m in run.system.models.models if m.name == state.model and m.acc == accelerator), 1
    )
    changed = False
    if (accelerator, max_batch) != (
        state.accelerator,
        state.max_batch,
    ) or acc_count != run.kube.acc_counts().get((state.namespace, state.name), acc_count):
        cluster.set_template(
            state.namespace,
            state.name,
            now_s,
            accelerator=accelerator,
            max_batch=max_batch,
            acc_count=acc_count,
        )
        changed = True
    if replicas != state.replicas:
        cluster.scale(state.namespace, state.name, replicas, now_s)
        changed = True
    return "applied" if changed else "noop"


def system_with_loads(run: WhatIfRun, loads_rpm: Mapping[str, float], now_s: float) -> SystemData:
    """The run's system data with each server's load replaced and its current allocation as it is now."""
    states = {s.server: s for s in run.fleet.cluster.deployments(now_s)}
    servers = []
    for server in run.system.servers.servers:
        state = states[server.name]
        load = server.load.model_copy(update={"arrival_rate_rpm": loads_rpm[server.name]})
        current = server.current_alloc.model_copy(
            update={
                "accelerator": state.accelerator,
                "num_replicas": state.replicas,
                "max_batch": state.max_batch,
                "load": load,
            }
        )
        servers.append(server.model_copy(update={"current_alloc": current}))
    return run.system.model_copy(
        update={"servers": run.system.servers.model_copy(update={"servers": servers})}
    )


def apply_solution(run: WhatIfRun, solution: Solution, now_s: float) -> dict[str, str]:
    """Apply every decision that has an allocation; a server without one keeps what it has."""
    decisions = solution.by_server()
    actions: dict[str, str] = {}
    for state in run.fleet.cluster.deployments(now_s):
        decision = decisions.get(state.server)
        if decision is None or decision.allocation is None:
            actions[state.name] = "kept"
            continue
        a = decision.allocation
        actions[state.name] = apply(
            run,
            state,
            now_s,
            accelerator=a.accelerator,
            replicas=max(a.num_replicas, 1),
            max_batch=a.max_batch,
        )
    return actions


class StaticForPeak:
    name = "static-peak"

    def __init__(self, run: WhatIfRun, loads: Mapping[str, LoadPattern]) -> None:
        self.run, self.loads = run, loads
        self.settings = OptimizerSettings()

    async def start(self, now_s: float) -> None:
        end_s = self.run.warmup_s + self.run.scenario.duration_s
        peaks = peak_by_server(self.loads, 0.0, end_s)
        apply_solution(self.run, optimize(system_with_loads(self.run, peaks, now_s), self.settings), now_s)

    async def decide(self, now_s: float) -> Decision:
        return Decision("static")


class Oracle:
    name = "oracle"

    def __init__(self, run: WhatIfRun, loads: Mapping[str, LoadPattern]) -> None:
        self.run, self.loads = run, loads
        self.settings = OptimizerSettings()
        s = run.scenario
        startups = [e.startup_s for e in run.system.models.models if e.startup_s is not None]
        self.lookahead_s = s.period_s + max(startups, default=s.startup_delay_s)

    async def start(self, now_s: float) -> None:
        await self.decide(now_s)

    async def decide(self, now_s: float) -> Decision:
        peaks = peak_by_server(self.loads, now_s, now_s + self.lookahead_s)
        solution = optimize(system_with_loads(self.run, peaks, now_s), self.settings)
        return Decision("ok", apply_solution(self.run, solution, now_s))


class HpaStyle:
    name = "hpa"

    def __init__(self, run: WhatIfRun, target_utilization: float = 0.7, window_s: float = 300.0) -> None:
        if not 0 < target_utilization <= 1:
            raise ValueError(f"target_utilization must be in (0, 1], got {target_utilization}")
        self.run, self.target, self.window_s = run, target_utilization, window_s
        self.history: dict[str, deque[tuple[float, int]]] = {}
        self.utilization: dict[str, float] = {}
        """Last measured utilisation per Deployment (for tests and the report)."""

    async def start(self, now_s: float) -> None:
        return None

    async def decide(self, now_s: float) -> Decision:
        cluster = self.run.fleet.cluster
        free = dict(cluster.capacity) if cluster.capacity is not None else None
        if free is not None:
            for card_type, used in cluster.used_cards().items():
                free[card_type] = free.get(card_type, 0) - used
        actions: dict[str, str] = {}
        for state in cluster.deployments(now_s):
            wanted = self._recommend(state, now_s)
            if wanted is None:
                actions[state.name] = "no-data"
                continue
            card_type, per_unit = cluster.accelerators[state.accelerator]
            cards = per_unit * self.run.kube.acc_counts().get((state.namespace, state.name), 1)
            if free is not None and wanted > state.replicas:
                bound = sum(1 for p in state.pods if p.ready_since_s is not None)
                wanted = min(wanted, max(bound + max(free.get(card_type, 0), 0) // cards, 1))
                free[card_type] = free.get(card_type, 0) - max(wanted - bound, 0) * cards
            actions[state.name] = apply(
                self.run,
                state,
                now_s,
                accelerator=state.accelerator,
                replicas=wanted,
                max_batch=state.max_batch,
            )
        return Decision("ok", actions)

    def _recommend(self, state: DeploymentState, now_s: float) -> int | None:
        """HPA's stabilised recommendation for one Deployment, or None without data."""
        period_s = self.run.scenario.period_s
        samples = [
            s.values["running"]
            for s in self.run.prometheus.series.get((state.namespace, state.name), ())
            if now_s - period_s < s.t_s <= now_s
        ]
        ready = ready_pods(state, now_s)
        if not samples or ready == 0 or state.max_batch <= 0:
            return None
        mean_running = sum(samples) / len(samples)
        self.utilization[state.name] = mean_running / (ready * state.max_batch)
        raw = max(math.ceil(ready * self.utilization[state.name] / self.target - 1e-9), 1)
        return self._stabilised(state, now_s, raw)

    def _stabilised(self, state: DeploymentState, now_s: float, raw: int) -> int:
        """HPA's scale-down stabilisation: a rise at once, a fall only to the highest raw
        recommendation within the window."""
        history = self.history.setdefault(state.name, deque())
        history.append((now_s, raw))
        while history and history[0][0] <= now_s - self.window_s:
            history.popleft()
        if raw >= state.replicas:
            return raw
        return min(state.replicas, max(r for _, r in history))


def ready_pods(state: DeploymentState, now_s: float) -> int:
    """Pods of the Deployment Ready at ``now_s``."""
    return sum(1 for p in state.pods if p.ready_since_s is not None and p.ready_since_s <= now_s)
