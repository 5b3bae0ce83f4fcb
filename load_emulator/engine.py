"""The fleet engine: every managed Deployment's replicas emulated on one virtual clock.

Pure: no I/O and no clock reads. A driver owns time and calls, in any order,

- ``advance_to(t_s)``: run the fleet to virtual time ``t_s`` (seconds since the run started),
  re-reading the cluster view every ``sync_period_s`` of virtual time;
- ``sync()``: re-read the cluster view now (after the driver changed the cluster);
- ``stats(server)`` / ``window(server, t0_s, t1_s, ...)``: exact per-server statistics;
- ``replicas()``: per-pod state and vLLM counters for the Prometheus exporter;
- ``submit(server, in, out, pod)``: a client's request arriving now (the OpenAI API,
  :mod:`load_emulator.openai`), beside or instead of the pattern's arrivals.

Drivers: ``python -m load_emulator simulate`` (virtual time), ``serve`` (real time, paced by the
wall clock) and, in phase 2, the what-if loop that runs the real controller between steps.
Servers are independent between syncs, so ``advance_to`` runs them one after another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from contract.data.catalog import ModelPerfEntry
from contract.data.system import SystemData
from load_emulator.cluster import ClusterView, DeploymentState
from load_emulator.patterns import LoadPattern, stable_seed
from load_emulator.replica import ReplicaSim, Request
from load_emulator.routing import Routing
from load_emulator.sched_config import V1_MAX_NUM_BATCHED_TOKENS
from load_emulator.server import ServerSim
from load_emulator.stats import ServerStats, WindowStats
from load_emulator.timing import IterationCost, Scheduling

Catalog = Mapping[tuple[str, str], ModelPerfEntry]
"""Perf data by ``(model, accelerator unit name)``."""


@dataclass(frozen=True)
class EngineConfig:
    """Emulation settings; units in the names, defaults in the signature."""

    routing: Routing = "round-robin"
    """How arrivals pick a serving replica (:mod:`load_emulator.routing`): a Service's
    round-robin, or ``least-loaded`` as a queue-aware gateway does."""
    removal: Literal["drain", "drop"] = "drain"
    drain_grace_s: float = 30.0
    """Drain: how long a removed pod keeps serving its queue (Kubernetes' default grace period)."""
    startup_delay_s: float = 0.0
    """Extra time after a pod is Ready before it serves (0: the cluster view's readiness is final)."""
    scheduling: Scheduling = "chunked"
    """Iteration-schema scheduling; the other schemas have one faithful scheduling each."""
    max_num_batched_tokens: int = V1_MAX_NUM_BATCHED_TOKENS
    """Token budget per step (vLLM ``--max-num-batched-tokens``; ``vllm serve`` defaults to 2048
    on A100-class and smaller cards, 8192 on H100-class ones: see ``sched_config``). The same
    default as the optimizer's ``max_num_batched_tokens``, so model and emulator assume one engine."""
    long_prefill_token_threshold: int = 0
    """Chunked scheduling: most prompt tokens one request computes per step while others wait
    or run (vLLM ``--long-prefill-token-threshold``); 0 turns the cap off (vLLM's default)."""
    kv_limit: bool = True
    """Model each replica's KV cache (the model data's ``kv_capacity_blocks``: admission needs
    free blocks, a missing block preempts the newest request); False makes it unlimited."""
    sync_period_s: float = 5.0
    """Re-read the cluster view every this many virtual seconds; 0 turns it off (``sync()`` only)."""
    max_model_len: int = 32768
    """Upper end of the token-count histogram buckets."""


@dataclass
class ServerEntry:
    state: DeploymentState
    sim: ServerSim
    notes: list[str] = field(default_factory=list)


def catalog_of(system: SystemData) -> dict[tuple[str, str], ModelPerfEntry]:
    return {(m.name, m.acc): m for m in system.models.models}


class FleetEngine:
    def __init__(
        self,
        catalog: Catalog,
        cluster: ClusterView,
        workloads: Mapping[str, LoadPattern],
        config: EngineConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.catalog = catalog
        self.cluster = cluster
        self.workloads = workloads
        self.config = config or EngineConfig()
        self.seed = seed
        self.now_s = 0.0
        self.entries: dict[tuple[str, str], ServerEntry] = {}
        self._next_sync_s = self.config.sync_period_s
        self.sync()

    # --- driver API -------------------------------------------------------------------------------
    def advance_to(self, t_s: float) -> None:
        if t_s < self.now_s:
            raise ValueError(f"cannot go back in time: now {self.now_s} s, asked {t_s} s")
        period = self.config.sync_period_s
        while self.now_s < t_s:
            step_to = min(t_s, self._next_sync_s) if period > 0 else t_s
            for entry in self.entries.values():
                entry.sim.advance_to(step_to)
            self.now_s = step_to
            if period > 0 and self.now_s >= self._next_sync_s:
                self._next_sync_s += period
                self.sync()

    def sync(self) -> None:
        seen: set[tuple[str, str]] = set()
        for state in self.cluster.deployments(self.now_s):
            key = (state.namespace, state.name)
            seen.add(key)
            entry = self.entries.get(key)
            if entry is None:
                entry = self.entries[key] = ServerEntry(state, self._new_server(state))
            entry.state = state
            self._reconcile(entry)
        for key, entry in self.entries.items():
            if key not in seen:
                for pod in list(entry.sim.replicas):
                    entry.sim.remove_replica(pod)

    def submit(
        self,
        server: str,
        in_tokens: int,
        out_tokens: int,
        pod: str | None = None,
        finish_reason: str = "stop",
    ) -> tuple[Request, ReplicaSim] | None:
        """A client's request arriving at ``now_s`` at a server (routed) or one of its pods
        (:meth:`ServerSim.submit`); None when no replica serves it. ``advance_to`` the arrival first."""
        return self._entry(server).sim.submit(in_tokens, out_tokens, pod, finish_reason)

    def abort(self, server: str, request: Request, replica: ReplicaSim) -> None:
        """A client's request aborted at ``now_s`` (:meth:`ServerSim.abort`); ``advance_to`` it first."""
        self._entry(server).sim.abort(request, replica)

    def replica(self, server: str, pod: str) -> ReplicaSim:
        """One pod's replica (KeyError when the server has no such pod)."""
        return self._entry(server).sim.replicas[pod]

    def flush(self) -> None:
        """Book every decode iteration finished by ``now_s`` (counters and stats up to date)."""
        for entry in self.entries.values():
            entry.sim.flush()

    def stats(self, server: str) -> ServerStats:
        """The server's event log as of the last ``flush``."""
        return self._entry(server).sim.stats

    def window(
        self, server: str, t0_s: float, t1_s: float, ttft_target_ms: float = 0.0, itl_target_ms: float = 0.0
    ) -> WindowStats:
        entry = self._entry(server)
        entry.sim.flush()
        return entry.sim.stats.window(t0_s, t1_s, ttft_target_ms, itl_target_ms)

    def servers(self) -> list[str]:
        return [entry.state.server for entry in self.entries.values()]

    def gateways(self) -> Iterator[tuple[DeploymentState, int]]:
        """Each server and the requests that reached its front door so far, served or not (a
        server with no ready replica rejects them: a gateway would hold them for a replica)."""
        for entry in self.entries.values():
            yield entry.state, len(entry.sim.stats.arrival_t)

    def replicas(self) -> Iterator[tuple[DeploymentState, ReplicaSim]]:
        for entry in self.entries.values():
            for replica in entry.sim.replicas.values():
                yield entry.state, replica

    # --- internals -------------------------------------------------------------------------------
    def _entry(self, server: str) -> ServerEntry:
        for entry in self.entries.values():
            if server in (entry.state.server, entry.state.name):
                return entry
        raise KeyError(f"unknown server {server!r}; known: {self.servers()}")

    def _new_server(self, state: DeploymentState) -> ServerSim:
        pattern = self.workloads.get(state.server) or self.workloads.get(state.name)
        arrivals = pattern.arrivals(stable_seed(self.seed, state.server)) if pattern is not None else None
        return ServerSim(
            arrivals,
            routing=self.config.routing,
            removal=self.config.removal,
            drain_grace_s=self.config.drain_grace_s,
            start_s=self.now_s,
        )

    def _reconcile(self, entry: ServerEntry) -> None:
        sim, state = entry.sim, entry.state
        ready = {p.name: p for p in state.pods if p.ready_since_s is not None}
        for name in list(sim.replicas):
            if name not in ready:
                sim.remove_replica(name)
        for name, pod in ready.items():
            if name in sim.replicas:
                continue
            replica = self._new_replica(entry, pod.name, pod.accelerator or state.accelerator, pod.max_batch)
            if replica is not None:
                sim.add_replica(replica, (pod.ready_since_s or 0.0) + self.config.startup_delay_s)

    def _new_replica(
        self, entry: ServerEntry, pod: str, accelerator: str, max_batch: int
    ) -> ReplicaSim | None:
        perf = self.catalog.get((entry.state.model, accelerator))
        if perf is None:
            note = (
                f"no perf data for model {entry.state.model!r} on {accelerator!r}: pod {pod} serves nothing"
            )
            if note not in entry.notes:
                entry.notes.append(note)
            return None
        cfg = self.config
        return ReplicaSim(
            pod,
            IterationCost.from_perf(perf.perf),
            max_batch if max_batch > 0 else perf.max_batch_size,
            entry.sim.stats,
            chunked=cfg.scheduling == "chunked",
            token_budget=cfg.max_num_batched_tokens,
            kv_capacity_tokens=perf.kv_capacity_tokens if cfg.kv_limit else None,
            kv_block_tokens=perf.kv_block_tokens,
            long_prefill_token_threshold=cfg.long_prefill_token_threshold,
            accelerator=accelerator,
            max_model_len=cfg.max_model_len,
        )
