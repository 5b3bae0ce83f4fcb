"""Small builders for the load emulator's tests: perf entries, one-server fleets, fixed arrivals."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from contract.data.catalog import ModelPerfEntry
from load_emulator.emulated_cluster import EmulatedCluster
from load_emulator.engine import EngineConfig, FleetEngine
from load_emulator.patterns import Arrival, LoadPattern
from load_emulator.tokens import TokenSpec

NS = "ns"
DEP = "d"


def entry(acc: str = "A", max_batch: int = 8, at_tokens: int = 512, **perf: Any) -> ModelPerfEntry:
    """``entry(alpha=10, beta=1)`` decode-only; add ``gamma, delta`` via ``decodeParms``... see kinds."""
    body: dict[str, Any] = {"name": "m", "acc": acc, "maxBatchSize": max_batch, "atTokens": at_tokens}
    body.update(perf)
    return ModelPerfEntry.model_validate(body)


def decode_only(alpha: float, beta: float, **kw: Any) -> ModelPerfEntry:
    return entry(alpha=alpha, beta=beta, **kw)


def prefill_decode(alpha: float, beta: float, gamma: float, delta: float, **kw: Any) -> ModelPerfEntry:
    return entry(
        decodeParms={"alpha": alpha, "beta": beta}, prefillParms={"gamma": gamma, "delta": delta}, **kw
    )


def iteration(alpha: float, beta: float, gamma: float, **kw: Any) -> ModelPerfEntry:
    return entry(perfParms={"alpha": alpha, "beta": beta, "gamma": gamma}, **kw)


@dataclass
class FixedArrivals:
    """A pattern that replays the given arrivals (for hand-checked timelines)."""

    rows: Sequence[Arrival]
    tokens: TokenSpec = field(default_factory=lambda: TokenSpec(0, 1, "deterministic"))

    def rate_rpm(self, t_s: float) -> float:
        return 0.0

    def arrivals(self, seed: int) -> Iterator[Arrival]:
        return iter(self.rows)


def one_server(
    perf: ModelPerfEntry,
    pattern: LoadPattern | None,
    *,
    replicas: int = 1,
    max_batch: int = 0,
    startup_delay_s: float = 0.0,
    capacity: int | None = None,
    config: EngineConfig | None = None,
    seed: int = 0,
) -> tuple[FleetEngine, EmulatedCluster]:
    cluster = EmulatedCluster({"A": ("A", 1)}, None if capacity is None else {"A": capacity}, startup_delay_s)
    cluster.add_deployment(NS, DEP, model="m", accelerator="A", max_batch=max_batch or perf.max_batch_size,
                           replicas=replicas)  # fmt: skip
    workloads = {DEP: pattern} if pattern is not None else {}
    engine = FleetEngine(
        {("m", "A"): perf}, cluster, workloads, config or EngineConfig(sync_period_s=0), seed
    )
    return engine, cluster
