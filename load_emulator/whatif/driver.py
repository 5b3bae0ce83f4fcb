"""The virtual-time what-if loop: the real collect -> optimize -> act code against the emulated fleet.

Called by the CLI (:mod:`load_emulator.whatif.__main__`) and by ``tests/sim``. Nothing is mocked
between the stages: :class:`InProcessStages` calls :func:`collector.core.collect` (with the ports of
:mod:`.kube` and :mod:`.prom`), :func:`optimizer.optimize.optimize` and
:meth:`actuator.app.Actuator.update` in-process (no HTTP), and the controller's own
:class:`controller.cycle.CycleRunner` runs the cycle. Time is virtual: the engine advances one
scrape interval at a time; every ``period_s`` a cycle runs at that instant, the actuator's patches
change the :class:`EmulatedCluster`, and the engine re-reads it at once.

Who decides is a seam (:mod:`.deciders`): by default :class:`~.deciders.LoopDecider`, the real
loop; ``WhatIfRun(scenario, decider=factory)`` runs another policy against the same world, and
``workloads`` replaces the load patterns built from ``scenario.pattern`` (one per server name).

Per cycle and server a :class:`~load_emulator.whatif.records.Row` is recorded: the load and
latencies the users saw over the last period (exact, from the engine), and the allocation in
place after the cycle acted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from actuator.app import Actuator
from actuator.settings import ActuatorSettings
from collector.core import Ports, collect
from collector.load import KnownLoad
from collector.metrics import Key
from collector.settings import CollectorSettings
from contract.collect import CollectResult
from contract.cycle import CycleReport
from contract.data.loader import load_system_dir
from contract.data.system import SystemData
from contract.solution import Solution
from contract.update import UpdateRequest, UpdateResponse
from controller.cycle import CycleRunner
from controller.settings import ControllerSettings
from load_emulator.engine import EngineConfig, FleetEngine, catalog_of
from load_emulator.fleet import build_fleet
from load_emulator.patterns import LoadPattern
from load_emulator.tokens import TokenDistribution
from load_emulator.whatif.deciders import Decider, DeciderFactory, LoopDecider
from load_emulator.whatif.kube import EmulatedKube, config_maps_from
from load_emulator.whatif.prom import EmulatedPrometheus
from load_emulator.whatif.records import Row, rows_of
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings


@dataclass(frozen=True)
class Scenario:
    """What to run. ``servers``: names from server-data to keep (empty: all)."""

    samples: Path
    pattern: str = "constant"
    params: dict[str, str] = field(default_factory=dict)
    tokens: TokenDistribution = "geometric"
    """Token counts per request around the data's means (``deterministic``: exactly the means)."""
    duration_s: float = 3600.0
    period_s: float = 60.0
    scrape_interval_s: float = 15.0
    startup_delay_s: float = 60.0
    warmup_s: float = -1.0
    """Virtual time the fleet runs before the first cycle (its first pods start, Prometheus fills
    a rate window); -1: ``startup_delay_s + rate_window_s``. Rows start after it."""
    servers: tuple[str, ...] = ()
    seed: int = 0
    namespace: str = "inferno-demo"
    keep_stats_s: float = 0.0
    """Forget per-request records older than this (long runs keep memory bounded); 0: keep all."""
    actuator: ActuatorSettings = field(default_factory=ActuatorSettings)
    controller: ControllerSettings = field(default_factory=ControllerSettings)
    """The loop's controller (its scale-down window); its control period is ``period_s``."""
    collector: CollectorSettings = field(
        default_factory=lambda: CollectorSettings(prometheus_url="http://emulated:9090")
    )


class VirtualClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class InProcessStages:
    """The controller's ``Stages`` port, calling the three services' cores directly."""

    def __init__(
        self, ports: Ports, settings: CollectorSettings, actuator: Actuator, clock: VirtualClock
    ) -> None:
        self.ports, self.settings, self.actuator, self.clock = ports, settings, actuator, clock
        self.last_known: dict[Key, KnownLoad] = {}
        self.optimizer_settings = OptimizerSettings()
        self.last_solution: Solution | None = None

    async def collect(self) -> CollectResult:
        assembled = await collect(self.clock(), self.ports, self.settings, self.last_known)
        self.last_known = assembled.last_known
        return assembled.result

    async def optimize(self, system: SystemData) -> Solution:
        solution = optimize(system, self.optimizer_settings)
        self.last_solution = solution
        return solution

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        return await self.actuator.update(request)


def load_scenario_system(scenario: Scenario) -> SystemData:
    system = load_system_dir(scenario.samples)
    if not scenario.servers:
        return system
    kept = [s for s in system.servers.servers if s.name in scenario.servers]
    missing = set(scenario.servers) - {s.name for s in kept}
    if missing:
        raise ValueError(
            f"unknown server(s) {sorted(missing)}; known: {[s.name for s in system.servers.servers]}"
        )
    return system.model_copy(update={"servers": system.servers.model_copy(update={"servers": kept})})


class WhatIfRun:
    """One scenario, built and ready to :meth:`run`; the results are in :attr:`rows` and :attr:`reports`."""

    def __init__(
        self,
        scenario: Scenario,
        decider: DeciderFactory | None = None,
        workloads: Mapping[str, LoadPattern] | None = None,
    ) -> None:
        self.scenario = s = scenario
        self.system = load_scenario_system(s)
        self.fleet = build_fleet(
            self.system, pattern=s.pattern, params=s.params, distribution=s.tokens, namespace=s.namespace,
            startup_delay_s=s.startup_delay_s, seed=s.seed,
        )  # fmt: skip
        if workloads is not None:
            missing = set(self.fleet.workloads) - set(workloads)
            if missing:
                raise ValueError(f"workloads lack server(s) {sorted(missing)}")
            self.fleet.workloads.update({k: v for k, v in workloads.items() if k in self.fleet.workloads})
        self.clock = VirtualClock()
        self.engine = FleetEngine(
            catalog_of(self.system), self.fleet.cluster, self.fleet.workloads, EngineConfig(), seed=s.seed
        )
        static, dynamic = config_maps_from(s.samples)
        cs = s.collector
        acc_counts = {
            (s.namespace, a.deployment): e.acc_count
            for a in self.fleet.allocations
            for e in self.system.models.models
            if e.acc == a.accelerator and e.name == _model_of(self.system, a.server)
        }
        self.kube = EmulatedKube(
            self.fleet.cluster,
            {
                (cs.config_namespace, cs.static_configmap): static,
                (cs.config_namespace, cs.dynamic_configmap): dynamic,
            },
            self.clock,
            acc_counts,
        )
        self.prometheus = EmulatedPrometheus(
            self.engine, self.clock, cs.rate_window_s, token_window_s=cs.token_window_s
        )
        self.actuator = Actuator(self.kube, s.actuator, clock=self.clock)
        self.stages = InProcessStages(
            Ports(kube=self.kube, cluster=self.kube, metrics=self.prometheus), cs, self.actuator, self.clock
        )
        self.runner = CycleRunner(
            self.stages, s.controller.model_copy(update={"control_period_s": s.period_s})
        )
        self.rows: list[Row] = []
        self.reports: list[CycleReport] = []
        self.decider: Decider = (decider or LoopDecider)(self)

    async def run(self) -> list[Row]:
        s = self.scenario
        steps_per_cycle = max(1, round(s.period_s / s.scrape_interval_s))
        step_s = s.period_s / steps_per_cycle
        warmup_s = self.warmup_s
        await self.decider.start(self.clock.now_s)
        self.engine.sync()
        for step in range(1, int(warmup_s // step_s + 1e-9) + 1):
            self._advance(step * step_s)
        self._advance(warmup_s)
        n_cycles = int(s.duration_s // s.period_s + 1e-9)
        for cycle in range(1, n_cycles + 1):
            for step in range(1, steps_per_cycle + 1):
                self._advance(warmup_s + (cycle - 1) * s.period_s + step * step_s)
            decision = await self.decider.decide(self.clock.now_s)
            if decision.report is not None:
                self.reports.append(decision.report)
            self.engine.sync()
            t0_s, t1_s = self.clock.now_s - s.period_s, self.clock.now_s
            self.rows.extend(
                rows_of(self.system, self.engine, self.fleet.cluster, decision, t0_s=t0_s, t1_s=t1_s)
            )
            self._trim(t1_s)
        return self.rows

    def _trim(self, now_s: float) -> None:
        keep_s = self.scenario.keep_stats_s
        if keep_s > 0 and now_s // 3600 != (now_s - self.scenario.period_s) // 3600:
            for server in self.engine.servers():
                self.engine.stats(server).trim_before(now_s - keep_s)

    @property
    def warmup_s(self) -> float:
        s = self.scenario
        return s.warmup_s if s.warmup_s >= 0 else s.startup_delay_s + s.collector.rate_window_s

    def _advance(self, t_s: float) -> None:
        if t_s <= self.clock.now_s:
            return
        self.engine.advance_to(t_s)
        self.clock.now_s = t_s
        self.prometheus.scrape(t_s)


def _model_of(system: SystemData, server: str) -> str:
    return next(s.model for s in system.servers.servers if s.name == server)
