"""Small builders of the objects a driver or a test puts into the emulated cluster.

:func:`node` makes a Ready node with labels (e.g. ``nvidia.com/gpu.product``) and allocatable
resources (e.g. ``{"nvidia.com/gpu": 8}``); :func:`deployment` a vLLM-like Deployment with one
container, a nodeSelector and GPU requests; :func:`config_map` and :func:`namespace` the obvious.
They return plain dicts for :meth:`.store.ObjectStore.create` or for the client's ``create_*``
calls (a dict body serialises as is). Used by the load emulator's cluster setup and by tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]


def namespace(name: str, labels: Mapping[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}


def node(
    name: str,
    labels: Mapping[str, str] | None = None,
    allocatable: Mapping[str, int | str] | None = None,
    *,
    ready: bool = True,
    unschedulable: bool = False,
    taints: list[dict[str, str]] | None = None,
) -> Obj:
    """A node; ``allocatable`` values are quantities (``8``, ``"64"``, ``"512Gi"``)."""
    resources = {
        "cpu": "64",
        "memory": "512Gi",
        "pods": "110",
        **{k: str(v) for k, v in (allocatable or {}).items()},
    }
    spec: Obj = {"unschedulable": True} if unschedulable else {}
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **dict(labels or {})}},
        "spec": spec,
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"}
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
        },
    }


def deployment(
    name: str,
    ns: str = "default",
    *,
    replicas: int = 1,
    labels: Mapping[str, str] | None = None,
    node_selector: Mapping[str, str] | None = None,
    gpus: int = 0,
    gpu_resource: str = "nvidia.com/gpu",
    args: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    container: str = "vllm",
) -> Obj:
    """A Deployment selecting ``app.kubernetes.io/name=<name>``, one container ``container``."""
    selector = {"app.kubernetes.io/name": name}
    resources: Obj = (
        {"requests": {gpu_resource: str(gpus)}, "limits": {gpu_resource: str(gpus)}} if gpus else {}
    )
    box: Obj = {
        "name": container,
        "image": "vllm/vllm-openai:v0.6.3",
        "args": list(args or []),
        "resources": resources,
    }
    if env:
        box["env"] = [{"name": k, "value": v} for k, v in env.items()]
    pod_spec: Obj = {"containers": [box]}
    if node_selector:
        pod_spec["nodeSelector"] = dict(node_selector)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {**selector, **dict(labels or {})}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": dict(selector)}, "spec": pod_spec},
        },
    }


def config_map(name: str, ns: str, data: Mapping[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": dict(data),
    }
