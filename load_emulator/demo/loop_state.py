"""Settings and result of a demo run, the load patterns, and what counts as "the loop acted".

:class:`DemoSettings` (units in the names) is filled by :mod:`load_emulator.demo.cli`;
:class:`DemoResult` is what :func:`load_emulator.demo.run.run_demo` returns (tests assert on it).
The default load shape ``updown`` is the ``steps`` pattern with factors ``UPDOWN_FACTORS`` of
each server's base rate, spread evenly over the run: load rises, peaks, then falls, so one run
shows scale-up and, after the controller's scale-down window, scale-down. Any other name goes to
:func:`load_emulator.pattern_factory.make_pattern` with the ``--param`` values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from load_emulator.demo.table import Row
from load_emulator.demo.world import DEFAULT_SERVERS, DemoServer
from load_emulator.pattern_factory import make_pattern
from load_emulator.patterns import LoadPattern, stable_seed
from load_emulator.routing import Routing
from load_emulator.tokens import TokenSpec

UPDOWN_FACTORS = (1.0, 2.0, 3.0, 3.0, 1.5, 0.5, 0.5)
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "samples" / "small"
"""The repository's small sample, wherever the demo is started from."""


@dataclass(frozen=True)
class DemoSettings:
    data_dir: Path = DEFAULT_DATA
    servers: tuple[str, ...] = DEFAULT_SERVERS
    cards: Mapping[str, int] | None = None
    """Cards per type of the fake nodes and capacity-data; None: ``world.DEFAULT_CARDS``."""
    duration_s: float = 150.0
    """Wall-clock length of the load run, after the services are up."""
    cycle_s: float = 10.0
    """Seconds between control cycles (GET /invoke)."""
    first_cycle_s: float = 2.0
    """Seconds of load before the first cycle."""
    pattern: str = "updown"
    params: Mapping[str, str] = field(default_factory=dict)
    startup_delay_s: float = 5.0
    """Seconds from a pod's binding to Ready (built-in controller)."""
    scale_down_window_s: float = 30.0
    """Actuator scale-down stabilisation window; 0: off."""
    label_period_s: float = 2.0
    """Seconds between writes of the offered load into the load labels."""
    window_s: float = 20.0
    """Observed TTFT/ITL percentiles are over this many last seconds."""
    tick_s: float = 0.25
    solver: str = "greedy"
    """Optimizer solver (greedy | milp); empty: the data's choice."""
    routing: Routing = "least-loaded"
    """How each server's arrivals pick a ready pod (:mod:`load_emulator.routing`): least-loaded,
    as the queue-aware gateway (llm-d / Gateway API Inference Extension) in front of a real vLLM
    fleet does, so a scale-up's new pods take the new arrivals while the backlog of the first
    pods drains; ``round-robin`` shows a plain Service, whose first pods keep their share."""
    health_timeout_s: float = 60.0
    seed: int = 0
    workdir: Path | None = None
    """Where the kubeconfig and the service logs go; None: a temporary directory, removed at the end."""
    cluster: bool = False
    """Run on the local real cluster (``tests/e2e/cluster``) instead of the in-memory API server."""
    cluster_state: Path | None = None
    """With ``cluster``: the state file of a running local cluster; None: start one (and stop it)."""
    namespace: str = "inferno-demo"
    """With ``cluster``: namespace (and node pool) of the Deployments and the data ConfigMaps."""


@dataclass
class DemoResult:
    cycles: int = 0
    tables: int = 0
    startup_s: float = 0.0
    replica_changes: list[str] = field(default_factory=list)
    """``server: old->new`` for every replica change the actuator applied."""
    cycle_rows: list[list[Row]] = field(default_factory=list)
    """The rows of each cycle's table, in cycle order (tests assert on them)."""
    exit_codes: list[int | None] = field(default_factory=list)


def make_workloads(settings: DemoSettings, servers: Sequence[DemoServer]) -> dict[str, LoadPattern]:
    """One load pattern per server, around its base rate and token means."""
    out: dict[str, LoadPattern] = {}
    for s in servers:
        tokens = TokenSpec(s.in_tokens, s.out_tokens, "geometric")
        seed = stable_seed(settings.seed, s.name)
        if settings.pattern == "updown":
            params = {
                "factors": ",".join(f"{f:g}" for f in UPDOWN_FACTORS),
                "step_s": f"{settings.duration_s / len(UPDOWN_FACTORS):.3f}",
                **settings.params,
            }
            out[s.name] = make_pattern("steps", s.base_rpm, tokens, params, seed)
        else:
            out[s.name] = make_pattern(settings.pattern, s.base_rpm, tokens, settings.params, seed)
    return out


def replica_changes(report: Mapping[str, Any]) -> list[str]:
    """Replica changes the actuator applied in one cycle report."""
    found = []
    for action in report.get("actions") or []:
        if action.get("outcome") != "applied":
            continue
        for change in action.get("changes") or []:
            if change.get("field") == "replicas":
                found.append(f"{action.get('server')}: {change.get('old')}->{change.get('new')}")
    return found
