"""Typed decision steps: one sentence of why, with the code other services react to.

Produced by the optimizer (every reason of a :class:`~contract.solution.ServerDecision` and every
note of its :class:`~contract.solution.SolverReport`); read by the actuator (which lists the capacity
steps of a decision first in its Event), the controller (which copies the rollout budget's note into
the cycle report and counts the servers waiting for it) and the benchmarks. Code reacts to
``code``; people read ``text``, which is the sentence ``/invoke``, the logs and the Events show.

Example: ``Step(stage="solve", code=StepCode.CAPACITY_FLOOR, text="capacity floor: runs on G2, so
it keeps at least 1 replica(s) there ...")``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

StepStage = Literal["collect", "size", "solve", "rollout", "decide"]
"""Which stage wrote the step: ``collect`` (the collector, about the server's data), and the
optimizer's ``size`` (sizing and the type-change controls), ``solve`` (the solver, its floors and
saturation policy), ``rollout`` (the rollout budget), ``decide`` (the decision per server built
from the solver's assignment)."""


class StepCode(StrEnum):
    """What a step says, for the code that reacts to it; ``note`` for everything else."""

    NOTE = "note"
    CAPACITY_FLOOR = "capacity_floor"
    """A running server the solvers could not serve keeps its capacity floor on its accelerator."""
    WINDOW_FLOOR = "window_floor"
    """The scale-down window's floor keeps replicas the load alone does not need."""
    KEPT_AS_IS = "kept_as_is"
    """No candidate on its current accelerator: the server is left as it runs, its cards reserved."""
    PARTIAL = "partial"
    """The allocation serves part of the demand."""
    CALIBRATED = "calibrated"
    """The server was sized with performance data learned online, not the static data's."""
    ROLLOUT_BUDGET = "rollout_budget"
    """The rollout budget: a server's pod-template change waits (decision), or its totals (note)."""
    MINUTE_PERCENTILE = "minute_percentile"
    """The class bounds a percentile of per-minute mean TTFT: the server is sized for that
    percentile of its per-minute arrival rate, above its mean rate."""
    UNREPORTED_PODS = "unreported_pods"
    """Fewer pods report metrics than are Ready: the load is scaled up to the Ready pods and the
    server is held (no scale-down, no GPU-type or batch change) until the counts agree."""


CAPACITY_CODES = frozenset(
    {StepCode.CAPACITY_FLOOR, StepCode.WINDOW_FLOOR, StepCode.KEPT_AS_IS, StepCode.PARTIAL}
)
"""The steps that explain a capacity decision: why a server was brought down to a floor, held, or
kept as it is."""


class Step(BaseModel):
    """One sentence of why, from one stage, with its code."""

    model_config = ConfigDict(frozen=True)

    stage: StepStage
    code: StepCode = StepCode.NOTE
    text: str

    @classmethod
    def note(cls, stage: StepStage, text: str) -> Step:
        """A step no code reacts to."""
        return cls(stage=stage, code=StepCode.NOTE, text=text)


def texts(steps: Iterable[Step]) -> list[str]:
    """The sentences of ``steps``, in order."""
    return [s.text for s in steps]
