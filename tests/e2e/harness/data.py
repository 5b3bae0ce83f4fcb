"""Inferno data and Kubernetes objects for the e2e scenarios, built from manifests/data.

Role: the scenarios run on KWOK nodes with A100 and L4 products only, so `static_documents`
keeps those accelerator types (single-card units) and their model entries; `configmaps` wraps the
documents as the collector reads them; `server_deployment` builds a labelled vLLM Deployment
pinned to a node pool. Callers: tests/e2e/test_autoscaling*.py, test_faults*.py, test_rbac*.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from ..cluster.nodes import POOL_LABEL

REPO = Path(__file__).resolve().parents[3]
DATA_DIR = REPO / "manifests" / "data"
STATIC_CONFIGMAP = "inferno-static-data"
DYNAMIC_CONFIGMAP = "inferno-dynamic-data"
# inferno accelerator name -> KWOK GPU product (tests/e2e/cluster/nodes.py)
PRODUCTS = {"A100": "NVIDIA-A100-SXM4-80GB", "L4": "NVIDIA-L4"}
GPU_LABEL = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"


def _load(name: str) -> Any:
    return json.loads((DATA_DIR / name).read_text())


def static_documents(*, unlimited: bool = False, milp: bool = True) -> dict[str, Any]:
    """accelerator/model/serviceclass/optimizer/placement documents, restricted to PRODUCTS."""
    accelerators = [a for a in _load("accelerator-data.json")["accelerators"] if a["name"] in PRODUCTS]
    models = [m for m in _load("model-data.json")["models"] if m["acc"] in PRODUCTS]
    optimizer = _load("optimizer-data.json")
    optimizer["optimizer"]["unlimited"] = unlimited
    optimizer["optimizer"]["milpSolver"] = milp
    placement = {
        "placement": [
            {"type": t, "nodeLabelKey": GPU_LABEL, "nodeLabelValue": v, "resource": GPU_RESOURCE}
            for t, v in PRODUCTS.items()
        ]
    }
    return {
        "accelerator-data.json": {"accelerators": accelerators},
        "model-data.json": {"models": models},
        "serviceclass-data.json": _load("serviceclass-data.json"),
        "optimizer-data.json": optimizer,
        "placement-data.json": placement,
    }


def capacity_document(cards: Mapping[str, int]) -> dict[str, Any]:
    return {"count": [{"type": t, "count": n} for t, n in cards.items()]}


def configmap(name: str, namespace: str, documents: Mapping[str, Any | str]) -> client.V1ConfigMap:
    data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in documents.items()}
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, namespace=namespace), data=data)


@dataclass(frozen=True)
class ServerSpec:
    """One managed server: its Deployment and the load the emulator drives it with."""

    name: str  # Deployment name and inferno.server.name
    model: str
    service_class: str
    accelerator: str  # key of PRODUCTS
    replicas: int
    cards_per_replica: int
    max_batch: int
    rpm: float
    in_tokens: int = 128
    out_tokens: int = 256
    min_replicas: int = 1
    max_replicas: int = 8
    keep_accelerator: bool = False


def server_deployment(spec: ServerSpec, pool: str) -> client.V1Deployment:
    labels = {
        "inferno.server.managed": "true",
        "inferno.server.name": spec.name,
        "inferno.server.model": spec.model,
        "inferno.server.class": spec.service_class,
        "inferno.server.allocation.accelerator": spec.accelerator,
        "inferno.server.allocation.maxbatchsize": str(spec.max_batch),
    }
    gpus = {GPU_RESOURCE: str(spec.cards_per_replica)}
    container = client.V1Container(
        name="vllm",
        image="registry.invalid/vllm:fake",
        args=["--model", spec.model, "--max-num-seqs", str(spec.max_batch)],
        resources=client.V1ResourceRequirements(requests=dict(gpus), limits=dict(gpus)),
    )
    return client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=client.V1ObjectMeta(
            name=spec.name,
            labels=labels,
            annotations={
                "inferno.server/min-replicas": str(spec.min_replicas),
                "inferno.server/max-replicas": str(spec.max_replicas),
                "inferno.server/keep-accelerator": str(spec.keep_accelerator).lower(),
            },
        ),
        spec=client.V1DeploymentSpec(
            replicas=spec.replicas,
            # GPU clusters run full: a surge pod would wait for a card that only its own
            # rollout frees, so roll by replacing one pod at a time instead.
            strategy=client.V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=client.V1RollingUpdateDeployment(max_surge=0, max_unavailable=1),
            ),
            selector=client.V1LabelSelector(match_labels={"app": spec.name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": spec.name}),
                spec=client.V1PodSpec(
                    node_selector={GPU_LABEL: PRODUCTS[spec.accelerator], POOL_LABEL: pool},
                    containers=[container],
                    termination_grace_period_seconds=0,
                ),
            ),
        ),
    )


def emulator_samples(directory: Path, servers: list[ServerSpec], cards: Mapping[str, int]) -> Path:
    """A samples dir for `python -m load_emulator serve --kube`: the static data plus server-data."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, doc in static_documents().items():
        (directory / name).write_text(json.dumps(doc))
    (directory / "capacity-data.json").write_text(json.dumps(capacity_document(cards)))
    server_data = {
        "servers": [
            {
                "name": s.name,
                "class": s.service_class,
                "model": s.model,
                "currentAlloc": {
                    "load": {"arrivalRate": s.rpm, "AvgInTokens": s.in_tokens, "AvgOutTokens": s.out_tokens}
                },
            }
            for s in servers
        ]
    }
    (directory / "server-data.json").write_text(json.dumps(server_data))
    return directory
