"""The real ``KubePort``: the kubernetes client, run in threads; every failure becomes an
``UpstreamError`` classified by :func:`plumbing.kube.api_error` (409 conflict, 5xx and no answer
transient, other 4xx permanent).

Of the actuator's modules, only this one and :mod:`actuator.__main__` (which loads the client with
:func:`plumbing.kube.load_api_client`) import ``kubernetes``. Deployments are read as plain JSON dicts
(``_preload_content=False``), one label-selected list per namespace, so a cycle over 1,000
Deployments costs a handful of calls. Patches are strategic merge patches; the resourceVersion in
the body makes the API server answer 409 if the object moved since it was read. Patches and
Events go through the ApiClient's ``call_api`` with the request the generated methods would build
(:meth:`KubernetesPort._write`), without their per-call argument validation and body walk.

Calls run on the port's own thread pool, sized for every patch and Event in flight
(:func:`kube_threads`), and the client's connection pool is as large: ``asyncio.to_thread``'s
default pool has ``cpu_count + 4`` threads (6 on 2 cores), fewer than ``max_concurrent_patches``,
and patches and Events would queue for the same threads.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from actuator.patch import PATCH_CONTENT_TYPE
from actuator.settings import ActuatorSettings
from contract.targets import Shape, TargetRef
from plumbing.kube import api_error, api_status

T = TypeVar("T")
LIST_THREADS = 2  # namespaces listed at once next to the patches and Events
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
EVENTS_PATH = "/api/v1/namespaces/{namespace}/events"


def kube_threads(settings: ActuatorSettings) -> int:
    """Threads and pooled connections the port needs: patches and Events in flight, plus lists."""
    return settings.max_concurrent_patches + settings.event_concurrency + LIST_THREADS


def _drain(resp: Any) -> bytes:
    """Read and release a raw (``_preload_content=False``) answer so its connection is reused.

    A raw answer left unread closes its connection: every patch and Event then paid a new TLS
    handshake (client certificate included) on both ends. benchmarks/bench_cycle.py measured
    ~11 CPU seconds in the actuator and ~19 in kube-apiserver for 769 patches at 1,000 Deployments.
    """
    if resp is None:
        return b""
    body: bytes = resp.data  # reads the whole body
    release = getattr(resp, "release_conn", None)
    if callable(release):
        release()
    return body


class KubernetesPort:
    patch_content_type = PATCH_CONTENT_TYPE
    """Strategic merge patch; benchmarks/cycle_acting.py compares JSON merge patches."""

    def __init__(self, api_client: client.ApiClient, settings: ActuatorSettings) -> None:
        self._api = api_client
        self._apps = client.AppsV1Api(api_client)
        self._settings = settings
        self._threads = ThreadPoolExecutor(kube_threads(settings), thread_name_prefix="kube")

    async def _in_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def _list_sync(self, namespace: str) -> list[dict[str, Any]]:
        resp: Any = self._apps.list_namespaced_deployment(
            namespace,
            label_selector=self._settings.managed_selector,
            _preload_content=False,
            _request_timeout=self._settings.kube_timeout_s,
        )
        items = json.loads(_drain(resp)).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    async def list_deployments(self, namespaces: Collection[str]) -> dict[tuple[str, str], dict[str, Any]]:
        async def one(namespace: str) -> list[dict[str, Any]]:
            try:
                return await self._in_thread(lambda: self._list_sync(namespace))
            except Exception as exc:
                raise api_error(exc, f"list Deployments in {namespace}") from None

        out: dict[tuple[str, str], dict[str, Any]] = {}
        for items in await asyncio.gather(*(one(ns) for ns in namespaces)):
            for item in items:
                meta = item.get("metadata") or {}
                out[(str(meta.get("namespace", "")), str(meta.get("name", "")))] = item
        return out

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            resp: Any = self._apps.read_namespaced_deployment(
                name, namespace, _preload_content=False, _request_timeout=self._settings.kube_timeout_s
            )
            found = json.loads(_drain(resp))
            if not isinstance(found, dict):
                raise ValueError(f"not an object: {type(found).__name__}")
            return found

        try:
            return await self._in_thread(read)
        except Exception as exc:
            raise api_error(exc, f"read Deployment {namespace}/{name}") from None

    def _get(self, path: str, query: str = "") -> Any:
        """One GET of a JSON document (raw ``call_api``, as :meth:`_write`); ``ApiException`` on non-2xx."""
        api: Any = self._api
        headers = {"Accept": "application/json", **api.default_headers}
        api.update_params_for_auth(headers, [], ["BearerToken"], path, "GET", None)
        url = api.configuration.host + path + (f"?{query}" if query else "")
        resp: Any = api.call_api(
            "GET", url, headers, None, None, _request_timeout=self._settings.kube_timeout_s
        )
        if not 200 <= resp.status <= 299:
            resp.read()
            raise ApiException.from_response(http_resp=resp, body=None, data=None)
        return json.loads(_drain(resp.response))

    async def target_problem(self, ref: TargetRef) -> str | None:
        """Discovery of ``ref``'s group/version: 404 means its CRD is not installed; a /scale-only
        kind needs ``<resource>/scale`` in the list."""
        prefix = f"/apis/{ref.group}/{ref.version}" if ref.group else f"/api/{ref.version}"
        try:
            found = await self._in_thread(lambda: self._get(prefix))
        except Exception as exc:
            if api_status(exc) == 404:
                return f"{ref.name}/{ref.version} is not served by the API server: is its CRD installed?"
            raise api_error(exc, f"discover {ref.api_version}") from None
        names = {str(r.get("name")) for r in found.get("resources") or [] if isinstance(r, dict)}
        if ref.resource not in names:
            return f"{ref.name}/{ref.version} is not served by the API server: is its CRD installed?"
        if ref.shape is Shape.SCALE and f"{ref.resource}/scale" not in names:
            return f"{ref.name} has no /scale subresource: it cannot be scaled; nothing is patched"
        return None

    async def list_objects(
        self, ref: TargetRef, namespaces: Collection[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        selector = quote(self._settings.managed_selector, safe="")

        def one(namespace: str) -> list[dict[str, Any]]:
            path = ref.collection_path(quote(namespace, safe=""))
            items = self._get(path, f"labelSelector={selector}").get("items") or []
            if ref.shape is Shape.SCALE:  # the plan reads and the patch writes the scale object
                return [self._get(self._scale_path(ref, item)) for item in items if isinstance(item, dict)]
            return [item for item in items if isinstance(item, dict)]

        out: dict[tuple[str, str], dict[str, Any]] = {}
        for namespace in namespaces:
            try:
                items = await self._in_thread(functools.partial(one, namespace))
            except Exception as exc:
                raise api_error(exc, f"list {ref.name} in {namespace}") from None
            for item in items:
                meta = item.get("metadata") or {}
                out[(str(meta.get("namespace", namespace)), str(meta.get("name", "")))] = item
        return out

    def _scale_path(self, ref: TargetRef, item: dict[str, Any]) -> str:
        meta = item.get("metadata") or {}
        return ref.object_path(str(meta.get("namespace", "")), str(meta.get("name", "")), "scale")

    async def read_object(
        self, ref: TargetRef, namespace: str, name: str, subresource: str = ""
    ) -> dict[str, Any]:
        path = ref.object_path(quote(namespace, safe=""), quote(name, safe=""), subresource)
        try:
            found = await self._in_thread(lambda: self._get(path))
        except Exception as exc:
            raise api_error(exc, f"read {ref.name} {namespace}/{name}") from None
        if not isinstance(found, dict):
            raise api_error(ValueError("not an object"), f"read {ref.name} {namespace}/{name}")
        return found

    async def patch_object(
        self,
        ref: TargetRef,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        content_type: str,
        subresource: str = "",
    ) -> None:
        path = ref.object_path(quote(namespace, safe=""), quote(name, safe=""), subresource)
        try:
            await self._in_thread(lambda: self._write("PATCH", path, patch, content_type))
        except Exception as exc:
            raise api_error(exc, f"patch {ref.name} {namespace}/{name}") from None

    def _write(self, method: str, path: str, body: dict[str, Any], content_type: str | None) -> None:
        """One PATCH or POST exactly as the generated method sends it (URL, headers, auth, body, a
        non-2xx answer raised as ``ApiException``) and drained, without its per-call layers:
        pydantic's ``validate_call`` on the arguments and ``param_serialize``, which walks the
        body. The first cycle at 1,000 Deployments writes ~650 times (patches, then their
        Events); against a loopback stub the client's CPU per write fell from 1.20 to 1.04 ms."""
        api: Any = self._api
        headers = {"Accept": "application/json", **api.default_headers}
        if content_type:  # the generated create_namespaced_event sends none (JSON is the default)
            headers = {"Accept": "application/json", "Content-Type": content_type, **api.default_headers}
        if api.cookie:
            headers["Cookie"] = api.cookie
        api.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        url, timeout_s = api.configuration.host + path, self._settings.kube_timeout_s
        resp: Any = api.call_api(method, url, headers, body, None, _request_timeout=timeout_s)
        if not 200 <= resp.status <= 299:
            resp.read()
            raise ApiException.from_response(http_resp=resp, body=None, data=None)
        _drain(resp.response)

    def _path(self, template: str, **params: str) -> str:
        safe = self._api.configuration.safe_chars_for_path_param
        return template.format(**{k: quote(v, safe=safe) for k, v in params.items()})

    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        path = self._path(DEPLOYMENT_PATH, namespace=namespace, name=name)
        try:
            await self._in_thread(lambda: self._write("PATCH", path, patch, self.patch_content_type))
        except Exception as exc:
            raise api_error(exc, f"patch Deployment {namespace}/{name}") from None

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        path = self._path(EVENTS_PATH, namespace=namespace)
        try:
            await self._in_thread(lambda: self._write("POST", path, event, None))
        except Exception as exc:
            raise api_error(exc, f"create Event in {namespace}") from None
