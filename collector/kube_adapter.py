"""The Kubernetes adapter: :class:`KubePort` and :class:`ClusterPort` over the official client.

Built by :mod:`collector.__main__` at start-up from an ``ApiClient`` (in-cluster config, else the
kubeconfig). The client is synchronous, so each call runs in ``asyncio.to_thread`` here and only
here; every API call has ``_request_timeout``. Lists are paged (``limit``/``continue``).
Deployments are read as plain JSON (``_preload_content=False``): building the client's typed
models for 1,000 Deployments costs ~5 s of CPU per cycle, JSON ~0.4 s (benchmarks/cycle.md).

API calls (RBAC: deployments list, and list on every other configured kind of scale target, get on
their ``scale`` for /scale-only kinds; configmaps get in the config namespace; nodes list and pods
list cluster-wide when capacity is derived from Nodes):

- ``AppsV1Api.list_deployment_for_all_namespaces`` / ``list_namespaced_deployment`` with
  ``label_selector=inferno.server.managed=true``
- ``CustomObjectsApi.get_api_resources`` (discovery: is the kind served, has it /scale) and
  ``list_namespaced_custom_object`` / ``list_custom_object_for_all_namespaces`` per other kind
  (:mod:`collector.target_kinds` reads them)
- ``CoreV1Api.read_namespaced_config_map``
- ``CoreV1Api.list_node``; ``list_pod_for_all_namespaces`` / ``list_namespaced_pod`` with
  ``field_selector=status.phase!=Succeeded,status.phase!=Failed``

Errors become :class:`SourceError` naming the status (``403 Forbidden``) or the network problem.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kubernetes import client, utils

from collector.capacity import pod_requests
from collector.ports import DeploymentInfo, KindProblem, NodeInfo, PodInfo, SourceError
from collector.target_kinds import owning_target, to_target
from contract.labels import DEFAULT_MANAGED_SELECTOR
from contract.targets import DEPLOYMENT, Shape, TargetRef
from plumbing.kube import api_status, describe_api_error

PAGE_SIZE = 500
MAX_PAGES = 10_000  # 5 million objects: a bound on the paging loop, never reached in practice
ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
T = TypeVar("T")
_parse_quantity: Callable[[str], Any] = utils.parse_quantity  # untyped in the client


def _quantities(raw: dict[str, str] | None) -> dict[str, float]:
    """Extended resources only (``vendor/name``): GPUs and accelerators; garbage is left out."""
    out: dict[str, float] = {}
    for name, value in (raw or {}).items():
        if "/" not in name:
            continue
        try:
            out[name] = float(_parse_quantity(value))
        except (ValueError, TypeError, ArithmeticError):
            continue
    return out


def _container_requests(containers: Iterable[Any] | None) -> list[dict[str, float]]:
    result = []
    for container in containers or []:
        resources = container.resources
        limits = _quantities(resources.limits if resources else None)
        requests = _quantities(resources.requests if resources else None)
        result.append({**limits, **requests})  # a limit stands in for a missing request
    return result


def owning_deployment(pod: Any) -> str | None:
    """The Deployment of a pod: its controlling ReplicaSet's name without ``-<pod-template-hash>``."""
    labels = pod.metadata.labels or {}
    template_hash = labels.get("pod-template-hash")
    for ref in pod.metadata.owner_references or []:
        if ref.kind == "ReplicaSet" and ref.controller and template_hash:
            suffix = f"-{template_hash}"
            return ref.name[: -len(suffix)] if ref.name.endswith(suffix) else None
    return None


def to_deployment(obj: dict[str, Any]) -> DeploymentInfo:
    """A Deployment as the API server's JSON (``spec.replicas`` absent means 1, as the API defaults)."""
    meta, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
    return DeploymentInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        replicas=replicas,
        ready_replicas=int(status.get("readyReplicas") or 0),
        rolling_out=rolling_out(meta, status, replicas),
    )


def rolling_out(meta: dict[str, Any], status: dict[str, Any], replicas: int) -> bool:
    """Whether a Deployment's rollout has not finished, as ``kubectl rollout status`` reads it: the
    controller has not observed the latest generation, or not all replicas run the new template,
    or pods of an older one remain, or new pods are not available yet.

    The last clause counts a scale-up whose pods are still loading their model too; the status
    cannot tell the two apart once the old pods are gone. Without it a rollout under ``maxSurge:
    0`` (the samples' strategy: replace one pod at a time on full GPU nodes) would stop counting
    as soon as its last new pod exists, minutes before that pod serves, and the budget would
    bound rollouts started per cycle, not rollouts at a time."""
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        return True
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    return updated < replicas or int(status.get("replicas") or 0) > updated or available < updated


def to_node(obj: Any) -> NodeInfo:
    conditions = (obj.status.conditions or []) if obj.status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return NodeInfo(
        name=obj.metadata.name,
        labels=dict(obj.metadata.labels or {}),
        allocatable=_quantities(obj.status.allocatable if obj.status else None),
        ready=ready,
        unschedulable=bool(obj.spec and obj.spec.unschedulable),
    )


def ready_since_s(status: Any) -> float | None:
    """Unix time the pod last turned Ready, or a container last (re)started if that is later (a
    restart resets its counters); None when it is not Ready or its condition has no time."""
    conditions = (status.conditions or []) if status else []
    ready = next((c for c in conditions if c.type == "Ready" and c.status == "True"), None)
    if ready is None or ready.last_transition_time is None:
        return None
    times: list[float] = [ready.last_transition_time.timestamp()]
    for cs in (status.container_statuses or []) if status else []:
        running = cs.state.running if cs.state else None
        if running is not None and running.started_at is not None:
            times.append(running.started_at.timestamp())
    return max(times)


def to_pod(obj: Any) -> PodInfo:
    spec = obj.spec
    target, serves = owning_target(dict(obj.metadata.labels or {}), owning_deployment(obj))
    return PodInfo(
        serves=serves,
        ready_since_s=ready_since_s(obj.status),
        created_s=obj.metadata.creation_timestamp.timestamp() if obj.metadata.creation_timestamp else None,
        namespace=obj.metadata.namespace,
        name=obj.metadata.name,
        node_name=(spec.node_name or "") if spec else "",
        deployment=target,
        requests=pod_requests(
            _container_requests(spec.containers if spec else None),
            _container_requests(spec.init_containers if spec else None),
        ),
    )


class KubeAdapter:
    def __init__(
        self,
        api_client: Any,
        timeout_s: float,
        managed_selector: str = DEFAULT_MANAGED_SELECTOR,
        targets: tuple[TargetRef, ...] = (DEPLOYMENT,),
    ) -> None:
        self._selector = managed_selector
        self._targets = targets
        self._custom = client.CustomObjectsApi(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._timeout_s = timeout_s

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (API calls and the conversion of their answers) off the event loop."""
        try:
            return await asyncio.to_thread(fn)
        except Exception as exc:  # an API error, or urllib3/socket errors: the server is unreachable
            raise SourceError(f"Kubernetes API: {what}: {describe_api_error(exc)}") from None

    def _paged(self, call: Callable[..., Any], **kwargs: Any) -> list[Any]:
        items: list[Any] = []
        token = None
        while True:
            page = call(limit=PAGE_SIZE, _continue=token, _request_timeout=self._timeout_s, **kwargs)
            items.extend(page.items or [])
            token = page.metadata._continue if page.metadata else None
            if not token:
                return items

    def _paged_json(self, call: Callable[..., Any], **kwargs: Any) -> list[dict[str, Any]]:
        """Like ``_paged``, but the raw JSON items: no typed models are built."""
        items: list[dict[str, Any]] = []
        token = None
        for _ in range(MAX_PAGES):
            resp = call(
                limit=PAGE_SIZE,
                _continue=token,
                _request_timeout=self._timeout_s,
                _preload_content=False,
                **kwargs,
            )
            body = json.loads(resp.data)
            if callable(release := getattr(resp, "release_conn", None)):
                release()  # back to the pool: an unreleased answer costs a new TLS handshake
            items.extend(item for item in body.get("items") or [] if isinstance(item, dict))
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items
        raise SourceError(f"more than {MAX_PAGES} pages of {PAGE_SIZE}")

    def _list(
        self, all_ns: Callable[..., Any], one_ns: Callable[..., Any], namespaces: tuple[str, ...], **kw: Any
    ) -> list[Any]:
        if not namespaces:
            return self._paged(all_ns, **kw)
        return [item for ns in namespaces for item in self._paged(one_ns, namespace=ns, **kw)]

    async def list_managed_deployments(
        self, namespaces: tuple[str, ...]
    ) -> list[DeploymentInfo | KindProblem]:
        """Every configured kind; a kind that is not served (or lacks /scale) is a KindProblem."""
        out: list[DeploymentInfo | KindProblem] = []
        for configured in self._targets:
            if configured.shape is Shape.DEPLOYMENT:
                out.extend(await self._list_deployments(namespaces))
                continue
            ref, problem = await self._discover(configured)
            if problem:
                out.append(KindProblem(ref, problem))
            else:
                out.extend(await self._list_custom(ref, namespaces))
        return out

    async def _discover(self, ref: TargetRef) -> tuple[TargetRef, str | None]:
        """(ref with its kind named by discovery, why it cannot be used or None)."""

        def resources() -> list[Any] | None:
            try:
                found = self._custom.get_api_resources(
                    ref.group, ref.version, _request_timeout=self._timeout_s
                )
            except Exception as exc:
                if api_status(exc) == 404:
                    return None
                raise
            return list(found.resources or [])

        found = await self._call(f"discover {ref.api_version}", resources)
        by_name = {r.name: r for r in found or []}
        if ref.resource not in by_name:
            return ref, f"{ref.name}/{ref.version} is not served by the API server: is its CRD installed?"
        ref = ref.model_copy(update={"kind": ref.kind or str(by_name[ref.resource].kind)})
        if ref.shape is Shape.SCALE and f"{ref.resource}/scale" not in by_name:
            return ref, f"{ref.name} has no /scale subresource: it cannot be scaled; nothing is patched"
        return ref, None

    async def _list_custom(self, ref: TargetRef, namespaces: tuple[str, ...]) -> list[DeploymentInfo]:
        custom, selector = self._custom, self._selector
        group, version, plural = ref.group, ref.version, ref.resource

        def fetch() -> list[DeploymentInfo]:
            if not namespaces:
                raw = self._paged_json(
                    custom.list_custom_object_for_all_namespaces,
                    group=group,
                    version=version,
                    resource_plural=plural,
                    label_selector=selector,
                )
            else:
                raw = [
                    item
                    for ns in namespaces
                    for item in self._paged_json(
                        custom.list_namespaced_custom_object,
                        group=group,
                        version=version,
                        namespace=ns,
                        plural=plural,
                        label_selector=selector,
                    )
                ]
            if ref.shape is not Shape.SCALE:
                return [to_target(ref, obj) for obj in raw]
            out = []
            for obj in raw:
                meta = obj.get("metadata") or {}
                scale: Any = custom.get_namespaced_custom_object_scale(
                    group,
                    version,
                    meta.get("namespace", ""),
                    plural,
                    meta.get("name", ""),
                    _request_timeout=self._timeout_s,
                    _preload_content=False,
                )
                out.append(to_target(ref, obj, json.loads(scale.data)))
            return out  # fmt: skip

        return await self._call(f"list {ref.name}", fetch)

    async def _list_deployments(self, namespaces: tuple[str, ...]) -> list[DeploymentInfo]:
        apps, selector = self._apps, self._selector

        def fetch() -> list[DeploymentInfo]:
            if not namespaces:
                raw = self._paged_json(apps.list_deployment_for_all_namespaces, label_selector=selector)
            else:
                raw = [
                    item
                    for ns in namespaces
                    for item in self._paged_json(apps.list_namespaced_deployment, namespace=ns,
                                                 label_selector=selector)
                ]  # fmt: skip
            return [to_deployment(d) for d in raw]

        return await self._call("list deployments", fetch)

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        def read() -> dict[str, str] | None:
            try:
                cm = self._core.read_namespaced_config_map(name, namespace, _request_timeout=self._timeout_s)
            except Exception as exc:
                if api_status(exc) == 404:
                    return None
                raise
            return dict(cm.data or {})

        return await self._call(f"read configmap {namespace}/{name}", read)

    async def list_nodes(self) -> list[NodeInfo]:
        return await self._call("list nodes", lambda: [to_node(n) for n in self._paged(self._core.list_node)])

    async def list_pods(self, namespaces: tuple[str, ...]) -> list[PodInfo]:
        core = self._core
        return await self._call(
            "list pods",
            lambda: [
                to_pod(p)
                for p in self._list(
                    core.list_pod_for_all_namespaces,
                    core.list_namespaced_pod,
                    namespaces,
                    field_selector=ACTIVE_PODS,
                )
            ],
        )
