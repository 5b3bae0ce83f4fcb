"""Cards available to the optimizer, per card type: derived from Nodes, and reserved for servers
the optimizer must not move.

Called by :mod:`collector.assemble`.

Node-derived capacity (``capacity_source=nodes``), per Ready and schedulable Node whose label
matches a placement entry (``nodeLabelKey=nodeLabelValue`` -> card ``type``)::

    free(node) = max(0, allocatable[resource] - sum of requests[resource] of pods on the node
                        that do not belong to a Deployment being optimized)

e.g. a node with 8 allocatable ``nvidia.com/gpu``, running a managed server's pods (4 GPUs) and a
training job (2 GPUs), offers 6 cards: the optimizer re-plans the managed server's 4.

Reservation: a server left out of the optimization (untrusted load) keeps what it runs on now,
``replicas * accCount * multiplicity`` cards of its accelerator's type, taken off the capacity
(with capacity from the ConfigMap; with node-derived capacity its pods already count as used).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from collector.metrics import Key
from collector.ports import NodeInfo, PodInfo
from contract.collect import Placement
from contract.data.system import SystemData


def pod_requests(
    containers: Iterable[Mapping[str, float]], init_containers: Iterable[Mapping[str, float]] = ()
) -> dict[str, float]:
    """A pod's effective request per resource: max(sum over containers, max over init containers).

    Each mapping is one container's requests, with limits standing in where a resource has only a
    limit (Kubernetes defaults the request to the limit).
    """
    total: dict[str, float] = {}
    for container in containers:
        for resource, amount in container.items():
            total[resource] = total.get(resource, 0.0) + amount
    for container in init_containers:
        for resource, amount in container.items():
            total[resource] = max(total.get(resource, 0.0), amount)
    return total


def _node_type(node: NodeInfo, placement: list[Placement]) -> Placement | None:
    matches = [p for p in placement if node.labels.get(p.node_label_key) == p.node_label_value]
    return matches[0] if matches else None


def node_capacity(
    nodes: Iterable[NodeInfo],
    pods: Iterable[PodInfo],
    placement: list[Placement],
    optimized: set[Key],
) -> tuple[dict[str, int], list[str]]:
    """Free cards per type and notes on nodes that were left out."""
    notes: list[str] = []
    used: dict[str, dict[str, float]] = {}
    for pod in pods:
        if not pod.node_name or (pod.deployment and (pod.namespace, pod.deployment) in optimized):
            continue
        on_node = used.setdefault(pod.node_name, {})
        for resource, amount in pod.requests.items():
            on_node[resource] = on_node.get(resource, 0.0) + amount
    cards: dict[str, int] = {p.type: 0 for p in placement}
    for node in nodes:
        spec = _node_type(node, placement)
        if spec is None:
            continue
        if not node.ready or node.unschedulable:
            state = "not Ready" if not node.ready else "unschedulable"
            notes.append(f"node {node.name}: {state}, its {spec.type} cards are not counted")
            continue
        allocatable = node.allocatable.get(spec.resource, 0.0)
        taken = used.get(node.name, {}).get(spec.resource, 0.0)
        cards[spec.type] += max(0, int(allocatable - taken))
    return cards, notes


def server_cards(system: SystemData, model: str, accelerator: str, replicas: int) -> tuple[str, int] | None:
    """(card type, cards) a server holds now; None when its accelerator or model entry is unknown."""
    spec = system.accelerator_by_name().get(accelerator)
    entry = next((m for m in system.models.models if m.name == model and m.acc == accelerator), None)
    if spec is None or entry is None:
        return None
    return spec.type, replicas * entry.acc_count * spec.multiplicity


def reserve(
    capacity: Mapping[str, int], held: Iterable[tuple[str, str, int]]
) -> tuple[dict[str, int], list[str]]:
    """Take ``(server, type, cards)`` off the capacity, noting each; a shortfall floors at 0."""
    left = dict(capacity)
    notes: list[str] = []
    for server, card_type, count in held:
        available = left.get(card_type, 0)
        shortfall = f" (only {available} were left)" if count > available else ""
        notes.append(f"reserved {count} {card_type} cards held by {server} (untrusted){shortfall}")
        left[card_type] = max(0, available - count)
    return left, notes
