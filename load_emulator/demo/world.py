"""The demo's emulated cluster contents: GPU nodes, the two data ConfigMaps, one Deployment per server.

:func:`demo_servers` picks servers of an inferno data directory (``samples/small`` by default)
and gives each a starting allocation with the load emulator's own heuristic
(:func:`load_emulator.fleet.initial_allocation`, independent of the optimizer) capped at
``INITIAL_MAX_REPLICAS`` so that the default set fits the default cards (the first cycles correct
it). :func:`populate` writes into an
:class:`~load_emulator.kubeapi.ObjectStore`:

- per card type of ``placement-data.json``, nodes of up to ``CARDS_PER_NODE`` cards labelled
  ``nodeLabelKey=nodeLabelValue`` with the placement's extended resource allocatable, so the
  scheduler keeps extra replicas Pending once a type is full (limited capacity makes choices matter);
- ``inferno/inferno-static-data`` (the data files as they are) and ``inferno/inferno-dynamic-data``
  (``capacity-data.json`` = the demo's card counts, matching the nodes);
- one labelled vLLM-like Deployment per server (``--max-num-seqs`` in its args).

Called by :mod:`load_emulator.demo.run` and (for a real cluster) :mod:`.cluster_world`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.data.system import SystemData
from load_emulator.cluster import (
    BATCH_FLAG,
    LABEL_ACCELERATOR,
    LABEL_CLASS,
    LABEL_LOAD_IN_TOKENS,
    LABEL_LOAD_OUT_TOKENS,
    LABEL_LOAD_RPM,
    LABEL_MANAGED,
    LABEL_MAX_BATCH,
    LABEL_MODEL,
    LABEL_NAME,
    STATIC_FILES,
    label_value,
)
from load_emulator.fleet import deployment_name, initial_allocation
from load_emulator.kubeapi import ObjectStore
from load_emulator.kubeapi import builders as b

NAMESPACE = "inferno-demo"
CONFIG_NAMESPACE = "inferno"
CARDS_PER_NODE = 8
DEFAULT_SERVERS = ("Premium-llama_13b", "Premium-granite_13b", "Bronze-llama_13b",
                   "Bronze-granite_34b", "Free-granite_13b")  # fmt: skip
DEFAULT_CARDS = {"L4": 24, "A100": 16, "AIU2": 16, "G2": 16}
"""Cards per type: small enough that the low-priority class feels the limit at the peak."""
INITIAL_MAX_REPLICAS = 2
"""Start small (the heuristic may ask for more than fits): the first cycles show the scale-up."""


@dataclass(frozen=True)
class DemoServer:
    name: str
    deployment: str
    service_class: str
    model: str
    accelerator: str
    replicas: int
    max_batch: int
    cards_per_replica: int
    base_rpm: float
    in_tokens: float
    out_tokens: float
    ttft_target_ms: float
    itl_target_ms: float


def demo_servers(system: SystemData, names: Sequence[str]) -> list[DemoServer]:
    """The named servers of ``system`` with a starting allocation; unknown names fail with the list."""
    by_name = {s.name: s for s in system.servers.servers}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"unknown server(s) {missing}; known: {sorted(by_name)}")
    units = system.accelerator_by_name()
    perf = {(e.name, e.acc): e for e in system.models.models}
    classes = system.class_by_name()
    out = []
    for name in names:
        spec = by_name[name]
        alloc = initial_allocation(system, spec)
        target = classes[spec.service_class].target_for(spec.model) if spec.service_class in classes else None
        cards = units[alloc.accelerator].multiplicity * perf[(spec.model, alloc.accelerator)].acc_count
        out.append(DemoServer(
            name, deployment_name(name), spec.service_class, spec.model, alloc.accelerator,
            min(alloc.replicas, INITIAL_MAX_REPLICAS), alloc.max_batch, cards, spec.load.arrival_rate_rpm,
            spec.load.in_tokens, spec.load.out_tokens,
            target.slo_ttft_ms if target else 0.0, target.slo_itl_ms if target else 0.0,
        ))  # fmt: skip
    return out


def load_labels(rpm: float, in_tokens: float, out_tokens: float) -> dict[str, str]:
    """The three load labels the collector trusts when it has no Prometheus."""
    return {
        LABEL_LOAD_RPM: label_value(round(rpm, 1)),
        LABEL_LOAD_IN_TOKENS: label_value(round(in_tokens)),
        LABEL_LOAD_OUT_TOKENS: label_value(round(out_tokens)),
    }


@dataclass(frozen=True)
class NodePlan:
    """One fake GPU node: its name, its placement label, and its allocatable cards."""

    name: str
    label_key: str
    label_value: str
    resource: str
    cards: int


def placement_of(data_dir: Path) -> dict[str, dict[str, str]]:
    """``placement-data.json`` by card type."""
    doc = json.loads((data_dir / "placement-data.json").read_text())
    return {p["type"]: p for p in doc["placement"]}


def node_plans(
    placement: Mapping[str, Mapping[str, str]], cards: Mapping[str, int], prefix: str = ""
) -> list[NodePlan]:
    """Per card type, ``ceil(count / CARDS_PER_NODE)`` nodes of up to ``CARDS_PER_NODE`` cards.

    Example: ``{"L4": 20}`` -> ``l4-node-0`` (8), ``l4-node-1`` (8), ``l4-node-2`` (4).
    """
    plans = []
    for acc_type, count in cards.items():
        if acc_type not in placement:
            raise ValueError(f"card type {acc_type!r} has no placement; known: {sorted(placement)}")
        p = placement[acc_type]
        for i in range(math.ceil(count / CARDS_PER_NODE)):
            n = min(CARDS_PER_NODE, count - i * CARDS_PER_NODE)
            name = f"{prefix}{acc_type.lower()}-node-{i}"
            plans.append(NodePlan(name, p["nodeLabelKey"], p["nodeLabelValue"], p["resource"], n))
    return plans


def config_data(data_dir: Path, cards: Mapping[str, int]) -> tuple[dict[str, str], dict[str, str]]:
    """Contents of ``inferno-static-data`` (the data files as they are) and ``inferno-dynamic-data``."""
    static = {key: (data_dir / key).read_text() for key in STATIC_FILES}
    capacity = {"count": [{"type": t, "count": c} for t, c in cards.items()]}
    return static, {"capacity-data.json": json.dumps(capacity)}


def populate(
    store: ObjectStore,
    data_dir: Path,
    system: SystemData,
    servers: Sequence[DemoServer],
    cards: Mapping[str, int],
) -> None:
    """Nodes, ConfigMaps and Deployments for ``servers`` (see the module docstring)."""
    placement = placement_of(data_dir)
    for plan in node_plans(placement, cards):
        store.create(b.node(plan.name, {plan.label_key: plan.label_value}, {plan.resource: plan.cards}))
    static, dynamic = config_data(data_dir, cards)
    store.create(b.namespace(CONFIG_NAMESPACE))
    store.create(b.config_map("inferno-static-data", CONFIG_NAMESPACE, static))
    store.create(b.config_map("inferno-dynamic-data", CONFIG_NAMESPACE, dynamic))
    store.create(b.namespace(NAMESPACE))
    units = system.accelerator_by_name()
    for s in servers:
        store.create(deployment_of(s, placement[units[s.accelerator].type]))


def deployment_of(s: DemoServer, placement: Mapping[str, str]) -> dict[str, Any]:
    labels = {
        LABEL_MANAGED: "true",
        LABEL_NAME: s.name,
        LABEL_MODEL: s.model,
        LABEL_CLASS: s.service_class,
        LABEL_ACCELERATOR: s.accelerator,
        LABEL_MAX_BATCH: str(s.max_batch),
        **load_labels(s.base_rpm, s.in_tokens, s.out_tokens),
    }
    return b.deployment(
        s.deployment,
        NAMESPACE,
        replicas=s.replicas,
        labels=labels,
        node_selector={placement["nodeLabelKey"]: placement["nodeLabelValue"]},
        gpus=s.cards_per_replica,
        gpu_resource=placement["resource"],
        args=["--model", s.model, BATCH_FLAG, str(s.max_batch), "--port", "8000"],
    )
