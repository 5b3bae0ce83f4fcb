"""The world of one cycle-benchmark case: N labelled vLLM Deployments on KWOK GPU nodes.

Role: helper of `bench_cycle`. `server_specs(n)` spreads N servers over the e2e catalog (the 5
models x 3 service classes x {A100, L4} of tests/e2e/harness/data.py) with distinct names and a
spread of loads, each replica requesting the cards its model needs there (model-data's accCount:
llama_70b takes 4 A100 or 8 L4); `build_world` creates the namespace, enough fake GPU nodes (at
most 100 cards per node, so at most 100 pods: KWOK nodes allow 110), the two data ConfigMaps and
the Deployments (created by a small thread pool), and `teardown_world` removes them again.

Every Deployment starts at batch 16 on its accelerator, which leaves the optimizer real work in
the first cycle (a third of the L4 servers cannot meet their ITL target at batch 16 and must
change; others save by changing). Until 2026-11-23 every Deployment requested one card whatever
its model, so the first cycle also had to fix the GPU request of ~400 Deployments that could not
have run as created (a pod-template change each, outside any rollout budget).
Every wait is bounded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from benchmarks.cycle_exporter import ServerLoad
from tests.e2e.cluster.local_cluster import LocalCluster
from tests.e2e.harness.data import (
    DYNAMIC_CONFIGMAP,
    PRODUCTS,
    STATIC_CONFIGMAP,
    ServerSpec,
    capacity_document,
    configmap,
    server_deployment,
    static_documents,
)

ACCELERATORS = ("A100", "L4")
RPMS = (4.0, 8.0, 16.0, 32.0)
TOKENS = ((128, 256), (512, 128), (256, 512))
CARDS_PER_NODE = 100  # <= the 110 pods a KWOK node allows, even with one-card pods
CREATE_THREADS = 8


def server_specs(n_servers: int) -> list[ServerSpec]:
    """N servers `srv-0000`...: model, class, accelerator, load and tokens cycle independently."""
    docs = static_documents()
    models = sorted({m["name"] for m in docs["model-data.json"]["models"]})
    cards = _cards_per_replica(docs)
    classes = [c["name"] for c in docs["serviceclass-data.json"]["serviceClasses"]]
    specs = []
    for i in range(n_servers):
        in_tokens, out_tokens = TOKENS[i % len(TOKENS)]
        model, accelerator = models[i % len(models)], ACCELERATORS[i % len(ACCELERATORS)]
        specs.append(
            ServerSpec(
                name=f"srv-{i:04d}",
                model=model,
                service_class=classes[(i // len(models)) % len(classes)],
                accelerator=accelerator,
                replicas=1,
                cards_per_replica=cards.get((model, accelerator), 1),
                max_batch=16,
                rpm=RPMS[(i // 2) % len(RPMS)],
                in_tokens=in_tokens,
                out_tokens=out_tokens,
                max_replicas=8,
            )
        )
    return specs


def _cards_per_replica(docs: dict[str, Any]) -> dict[tuple[str, str], int]:
    """(model, accelerator) -> accCount x multiplicity, as the model data says a replica needs."""
    multiplicity = {
        a["name"]: int(a.get("multiplicity", 1)) for a in docs["accelerator-data.json"]["accelerators"]
    }
    return {
        (m["name"], m["acc"]): int(m.get("accCount", 1)) * multiplicity.get(m["acc"], 1)
        for m in docs["model-data.json"]["models"]
    }


def _cards_per_type(specs: list[ServerSpec]) -> dict[str, int]:
    """Room for every server to double on either type: twice the cards all would take there."""
    cards = _cards_per_replica(static_documents())
    return {acc: max(8, 2 * sum(cards.get((s.model, acc), 1) for s in specs)) for acc in ACCELERATORS}


def loads_of(specs: list[ServerSpec], namespace: str) -> list[ServerLoad]:
    return [ServerLoad(namespace, s.name, s.model, s.rpm, s.in_tokens, s.out_tokens) for s in specs]


@dataclass
class World:
    namespace: str
    specs: list[ServerSpec]
    cards: dict[str, int]
    setup_s: dict[str, float] = field(default_factory=dict)


def _timed(setup_s: dict[str, float], what: str, fn: Callable[[], object]) -> None:
    started = time.perf_counter()
    fn()
    setup_s[what] = round(time.perf_counter() - started, 3)


def build_world(cluster: LocalCluster, namespace: str, n_servers: int) -> World:
    """Namespace (= node pool = config namespace), nodes, ConfigMaps, N Deployments (not waited on)."""
    specs = server_specs(n_servers)
    world = World(namespace, specs, _cards_per_type(specs))
    apps, core = client.AppsV1Api(cluster.api_client), client.CoreV1Api(cluster.api_client)

    def nodes() -> None:
        for acc in ACCELERATORS:
            count = math.ceil(world.cards[acc] / CARDS_PER_NODE)
            per_node = math.ceil(world.cards[acc] / count)
            world.cards[acc] = count * per_node
            cluster.add_gpu_nodes(PRODUCTS[acc], count, per_node, pool=namespace, timeout_s=120)

    def config() -> None:
        core.create_namespaced_config_map(
            namespace, configmap(STATIC_CONFIGMAP, namespace, static_documents())
        )
        dynamic = {"capacity-data.json": capacity_document(world.cards)}
        core.create_namespaced_config_map(namespace, configmap(DYNAMIC_CONFIGMAP, namespace, dynamic))

    def deployments() -> None:
        def create(spec: ServerSpec) -> None:
            apps.create_namespaced_deployment(namespace, server_deployment(spec, namespace))

        with ThreadPoolExecutor(CREATE_THREADS) as pool:
            list(pool.map(create, specs))

    _timed(world.setup_s, "namespace", lambda: cluster.create_namespace(namespace))
    _timed(world.setup_s, "nodes", nodes)
    _timed(world.setup_s, "configmaps", config)
    _timed(world.setup_s, "deployments", deployments)
    return world


def ready_count(cluster: LocalCluster, namespace: str) -> int:
    """Deployments whose wanted replicas are all ready (what a settled cluster looks like)."""
    apps = client.AppsV1Api(cluster.api_client)
    items = apps.list_namespaced_deployment(namespace, _request_timeout=30).items
    ready = 0
    for d in items:
        if d.spec is None or d.status is None or d.metadata is None:
            continue
        observed = (d.status.observed_generation or 0) >= (d.metadata.generation or 0)
        ready += int(observed and (d.status.ready_replicas or 0) == (d.spec.replicas or 0))
    return ready


def wait_settled(cluster: LocalCluster, world: World, timeout_s: float, what: str) -> bool:
    """Until every Deployment has its pods ready; False (not an error) when `timeout_s` ran out."""
    started = time.perf_counter()
    try:
        cluster.wait_for(
            lambda: ready_count(cluster, world.namespace) == len(world.specs),
            what=f"{len(world.specs)} Deployments ready",
            timeout_s=timeout_s,
            interval_s=1.0,
        )
        settled = True
    except TimeoutError:
        settled = False
    world.setup_s[what] = round(time.perf_counter() - started, 3)
    return settled


def teardown_world(cluster: LocalCluster, namespace: str) -> None:
    """Delete the pool's nodes and the namespace; the namespace controller removes the rest later.

    Deleting 1,000 Deployments one call at a time took minutes on a loaded machine, so this
    returns at once and lets the cluster catch up in the background.
    """
    client.CoreV1Api(cluster.api_client).delete_namespace(namespace, propagation_policy="Background")
    cluster.delete_gpu_nodes(pool=namespace)
