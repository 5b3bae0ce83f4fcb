"""Build an emulated fleet from inferno data files: an EmulatedCluster plus one load pattern per server.

Called by the CLI (``simulate``, ``serve``) and by tests. Each server of ``server-data`` becomes a
Deployment named after it in DNS-1123 form (``Premium-llama_13b`` -> ``premium-llama-13b``), with
label ``inferno.server.name`` keeping the original. Its load pattern is a shape (see
:func:`make_pattern`) scaled to the server's ``arrivalRate`` and token means.

Initial allocation (the control loop takes over in phase 2): the server's ``currentAlloc`` when it
names an accelerator and replicas; otherwise this module's own heuristic, independent of the
optimizer: batch ``floor(maxBatchSize * atTokens / out)``; keep accelerators whose decode
iteration at that batch meets the ITL target; take the cheapest per unit of full-batch
throughput (:func:`load_emulator.timing.full_batch_throughput_rps`); replicas so that
utilisation is at most ``target_utilization``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from contract.data.catalog import ModelPerfEntry
from contract.data.system import SystemData
from contract.data.workload import ServerSpec
from load_emulator.emulated_cluster import EmulatedCluster
from load_emulator.pattern_factory import make_pattern
from load_emulator.patterns import LoadPattern, stable_seed
from load_emulator.timing import IterationCost, full_batch_throughput_rps
from load_emulator.tokens import TokenDistribution, TokenSpec


@dataclass(frozen=True)
class Allocation:
    server: str
    deployment: str
    accelerator: str
    replicas: int
    max_batch: int
    cost_per_hour: float


@dataclass(frozen=True)
class Fleet:
    cluster: EmulatedCluster
    workloads: dict[str, LoadPattern]
    allocations: list[Allocation]
    namespace: str


def deployment_name(server: str) -> str:
    """A valid Kubernetes name for a server: lower case, ``[a-z0-9-]``, at most 63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", server.lower()).strip("-")
    return (name or "server")[:63].rstrip("-")


def batch_for(entry: ModelPerfEntry, server: ServerSpec) -> int:
    if server.max_batch_size > 0:
        return server.max_batch_size
    out = max(server.load.out_tokens, 1.0)
    at_tokens = entry.at_tokens or out
    return max(1, min(math.floor(entry.max_batch_size * at_tokens / out), 4096))


def initial_allocation(system: SystemData, server: ServerSpec, target_utilization: float = 0.6) -> Allocation:
    accelerators = system.accelerator_by_name()
    entries = {e.acc: e for e in system.perf_by_model().get(server.model, [])}
    current = server.current_alloc
    name = deployment_name(server.name)
    if current.accelerator in entries and current.num_replicas > 0:
        entry = entries[current.accelerator]
        batch = current.max_batch or batch_for(entry, server)
        cost = accelerators[entry.acc].cost * entry.acc_count * current.num_replicas
        return Allocation(server.name, name, entry.acc, current.num_replicas, batch, cost)
    service_class = system.class_by_name().get(server.service_class)
    target = service_class.target_for(server.model) if service_class else None
    itl_target_ms = target.slo_itl_ms if target else 0.0
    load = server.load
    demand_rps = load.arrival_rate_rpm / 60.0
    best: tuple[float, Allocation] | None = None
    fastest: tuple[float, Allocation] | None = None
    for entry in entries.values():
        batch = batch_for(entry, server)
        timing = IterationCost.from_perf(entry.perf)
        itl_ms = timing.decode_s(batch, batch * (load.in_tokens + load.out_tokens)) * 1000
        per_replica_rps = full_batch_throughput_rps(timing, batch, load.in_tokens, load.out_tokens)
        replicas = max(1, math.ceil(demand_rps / (target_utilization * per_replica_rps)))
        unit_cost = accelerators[entry.acc].cost * entry.acc_count
        candidate = Allocation(server.name, name, entry.acc, replicas, batch, unit_cost * replicas)
        if fastest is None or itl_ms < fastest[0]:
            fastest = (itl_ms, candidate)
        if itl_target_ms and itl_ms > itl_target_ms:
            continue
        if best is None or candidate.cost_per_hour < best[0]:
            best = (candidate.cost_per_hour, candidate)
    chosen = best or fastest
    if chosen is None:
        raise ValueError(
            f"server {server.name!r}: model {server.model!r} has no perf data on any accelerator"
        )
    return chosen[1]


def build_fleet(
    system: SystemData,
    *,
    pattern: str = "constant",
    params: Mapping[str, str] | None = None,
    distribution: TokenDistribution = "geometric",
    namespace: str = "inferno-demo",
    startup_delay_s: float = 60.0,
    limited: bool | None = None,
    target_utilization: float = 0.6,
    seed: int = 0,
) -> Fleet:
    """``limited`` None: follow the data's ``optimizer.unlimited`` flag."""
    accelerators = {a.name: (a.type, a.multiplicity) for a in system.accelerators.accelerators}
    unlimited = system.optimizer.optimizer.unlimited if limited is None else not limited
    capacity = None if unlimited else system.capacity.cards_by_type()
    startups = {(e.name, e.acc): e.startup_s for e in system.models.models if e.startup_s is not None}
    cluster = EmulatedCluster(
        accelerators, capacity, startup_delay_s=startup_delay_s, startup_by_model_s=startups
    )
    perf = {(e.name, e.acc): e for e in system.models.models}
    workloads: dict[str, LoadPattern] = {}
    allocations: list[Allocation] = []
    for server in system.servers.servers:
        alloc = initial_allocation(system, server, target_utilization)
        allocations.append(alloc)
        cluster.add_deployment(
            namespace,
            alloc.deployment,
            model=server.model,
            accelerator=alloc.accelerator,
            max_batch=alloc.max_batch,
            replicas=alloc.replicas,
            acc_count=perf[(server.model, alloc.accelerator)].acc_count,
            server_name=server.name,
            service_class=server.service_class,
        )
        cluster.set_labels(namespace, alloc.deployment, {"inferno.server.name": _label_safe(server.name)})
        tokens = TokenSpec(server.load.in_tokens, server.load.out_tokens, distribution)
        workloads[server.name] = make_pattern(
            pattern, server.load.arrival_rate_rpm, tokens, params or {}, stable_seed(seed, server.name)
        )
    return Fleet(cluster, workloads, allocations, namespace)


def _label_safe(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value)[:63]
