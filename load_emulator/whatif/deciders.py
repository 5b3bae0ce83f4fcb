"""The what-if driver's decision seam: who decides, once per control period, what the fleet runs.

:class:`~load_emulator.whatif.driver.WhatIfRun` owns the world (the emulated cluster, the engine,
Prometheus, the virtual clock) and calls a :class:`Decider` every ``period_s`` of virtual time;
the decider changes the cluster (through the actuator or directly) and returns a
:class:`Decision` that the rows record. The default, :class:`LoopDecider`, is the real control
loop (the controller's ``CycleRunner`` over collect -> optimize -> act). Other policies, e.g. the
benchmark's static, HPA-style and oracle policies (``benchmarks/autoscaling_policies.py``), plug
in through ``WhatIfRun(scenario, decider=factory)`` and see the same world at the same instants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from contract.cycle import CycleReport

if TYPE_CHECKING:
    from load_emulator.whatif.driver import WhatIfRun


@dataclass(frozen=True)
class Decision:
    """One cycle's result: ``outcome`` of the cycle, ``actions`` per Deployment name (for the rows)."""

    outcome: str
    actions: Mapping[str, str] = field(default_factory=dict)
    report: CycleReport | None = None
    """The controller's cycle report, when the real loop decided."""


class Decider(Protocol):
    """A policy; ``start`` runs once at virtual time 0 (before the warm-up), ``decide`` every period."""

    name: str

    async def start(self, now_s: float) -> None: ...

    async def decide(self, now_s: float) -> Decision: ...


DeciderFactory = Callable[["WhatIfRun"], Decider]
"""Builds a decider for a run whose world is ready (the factory may read ``run.system``, ``run.fleet``...)."""


class LoopDecider:
    """The real loop: the controller's ``CycleRunner``, collector, optimizer and actuator in-process."""

    name = "loop"

    def __init__(self, run: WhatIfRun) -> None:
        self.run = run

    async def start(self, now_s: float) -> None:
        return None

    async def decide(self, now_s: float) -> Decision:
        report = await self.run.runner.run_cycle(now_s)
        return Decision(report.outcome, {a.deployment: a.outcome.value for a in report.actions}, report)
