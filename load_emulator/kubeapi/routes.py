"""The HTTP face of the store: Kubernetes REST paths and JSON shapes, served by aiohttp.

Paths: ``/api/v1/...`` (core) and ``/apis/<group>/<version>/...`` (named groups), for every kind of
:mod:`.resources`: ``<plural>`` (list, create; cluster-wide list for namespaced kinds),
``namespaces/<ns>/<plural>`` (list, create), ``.../<name>`` (get, replace, patch, delete) and
``.../<name>/<sub>`` for ``status`` and ``scale`` (get, replace, patch). Lists honour
``labelSelector``, ``fieldSelector``, ``limit`` and ``continue``; ``watch=true`` streams events
(:mod:`.watch`). Errors are ``Status`` bodies with their code. Every request first consults the
store's fault injector (:mod:`.faults`). Built by :func:`.server.build_app`; nothing else calls this.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import objects
from .errors import ApiError, bad_request, conflict
from .patches import apply_patch
from .resources import ResourceType, api_resource_list_doc, by_group_plural
from .store import Obj, ObjectStore
from .tables import to_table, wants_table
from .watch import stream_watch

STORE_KEY: web.AppKey[ObjectStore] = web.AppKey("store", ObjectStore)
CLOSING_KEY: web.AppKey[asyncio.Event] = web.AppKey("closing", asyncio.Event)  # set: end open watches


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (lists) or a cluster-scoped kind
    name: str
    subresource: str


def parse_target(group: str, version: str, rest: list[str]) -> Target | None:
    """Resolve the path segments after the group version; ``None`` if no such resource."""
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rt = by_group_plural(group, version, rest[2])
        if rt is not None and rt.namespaced:
            namespace, rest = rest[1], rest[2:]
    rt = by_group_plural(group, version, rest[0])
    if rt is None or len(rest) > 3:
        return None
    if not rt.namespaced:
        namespace = ""
    sub = rest[2] if len(rest) == 3 else ""
    if sub and sub not in rt.subresources:
        return None
    return Target(rt, namespace, rest[1] if len(rest) > 1 else "", sub)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


async def _body(request: web.Request) -> Any:
    text = await request.text()
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


def _verb(method: str, target: Target, watch: bool) -> str:
    if method == "GET":
        return "watch" if watch else ("get" if target.name else "list")
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method not in verbs or (method == "POST") == bool(target.name):
        raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")
    return verbs[method]


def _page(items: list[Obj], limit: str | None, token: str | None) -> tuple[list[Obj], str]:
    def key(obj: Obj) -> list[str]:
        m = obj.get("metadata") or {}
        return [str(m.get("namespace") or ""), str(m.get("name") or "")]

    if token:
        try:
            after = json.loads(base64.urlsafe_b64decode(token.encode()))
        except ValueError:
            raise ApiError(410, "the provided continue parameter is too old or invalid", "Expired") from None
        items = [obj for obj in items if key(obj) > after]
    size = int(limit) if limit and limit.isdigit() and int(limit) > 0 else 0
    if not size or len(items) <= size:
        return items, ""
    page = items[:size]
    return page, base64.urlsafe_b64encode(json.dumps(key(page[-1])).encode()).decode()


def _list(store: ObjectStore, target: Target, request: web.Request) -> web.Response:
    query = request.query
    items = store.list(
        target.rt, target.namespace, query.get("labelSelector", ""), query.get("fieldSelector", "")
    )
    rv = store.resource_version
    page, token = _page(items, query.get("limit"), query.get("continue"))
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if token:
        meta["continue"], meta["remainingItemCount"] = token, len(items) - len(page)
    if wants_table(request.headers.get("Accept", "")):
        table = to_table(target.rt, page, store.wall_time(), str(rv))
        table["metadata"].update(meta)
        return json_response(table)
    return json_response({"kind": target.rt.list_kind, "apiVersion": target.rt.api_version, "metadata": meta,
                          "items": page})  # fmt: skip


def _write(store: ObjectStore, target: Target, verb: str, request: web.Request, body: Any) -> web.Response:
    rt, ns, name, sub = target.rt, target.namespace or "", target.name, target.subresource
    if request.query.get("dryRun"):
        raise bad_request("dryRun is not supported by the emulated API server")
    if verb == "create":
        obj = objects.check_identity(rt, body, ns, None)
        return json_response(store.create(obj, rt, ns if rt.namespaced else None), 201)
    if verb == "delete":
        orphan = isinstance(body, dict) and body.get("propagationPolicy") == "Orphan"
        gone = store.delete(rt, ns, name, orphan=orphan)
        details = {"name": name, "group": rt.group, "kind": rt.plural, "uid": gone["metadata"].get("uid")}
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "details": details})  # fmt: skip
    if sub == "scale":
        return json_response(_write_scale(store, target, verb, body, request.headers.get("Content-Type", "")))
    if verb == "update":
        return json_response(
            store.replace(rt, ns, name, objects.check_identity(rt, body, ns, name), subresource=sub)
        )
    ctype = request.headers.get("Content-Type", "")
    return json_response(store.patch(rt, ns, name, ctype, body, subresource=sub))


def _write_scale(store: ObjectStore, target: Target, verb: str, body: Any, content_type: str) -> Obj:
    """PUT or PATCH ``/scale``: apply to the Scale view, 409 on a stale version, set spec.replicas."""
    rt, ns, name = target.rt, target.namespace or "", target.name
    with store.locked():
        current = objects.to_scale(store.get(rt, ns, name))
        if verb == "update":
            scale = objects.check_identity(rt, body, ns, name)
        else:
            scale = apply_patch(content_type, current, body)
        wanted = str((scale.get("metadata") or {}).get("resourceVersion") or "")
        replicas = objects.scale_replicas(scale)
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        updated = store.update(rt, ns, name, lambda obj: obj.setdefault("spec", {}).update(replicas=replicas))
    return objects.to_scale(updated)


async def handle(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    segments = [s for s in request.match_info["tail"].split("/") if s]
    named = request.path.startswith("/apis/")
    if len(segments) < (2 if named else 1):
        raise ApiError(404, "the server could not find the requested resource")
    group, version, rest = (
        (segments[0], segments[1], segments[2:]) if named else ("", segments[0], segments[1:])
    )
    if not rest and request.method == "GET":
        doc = api_resource_list_doc(group, version)
        if doc is not None:
            return json_response(doc)
    target = parse_target(group, version, rest) if rest else None
    if target is None:
        raise ApiError(404, "the server could not find the requested resource")
    watch = request.query.get("watch") in ("true", "1")
    verb = _verb(request.method, target, watch)
    body = await _body(request) if request.method != "GET" else None  # read before a fault's delay
    fault = store.faults.take(verb, target.rt.plural, target.namespace or "", target.name, target.subresource)
    if fault is not None:
        await asyncio.sleep(fault.delay_s)
        error = fault.error(target.rt.plural, target.rt.group, target.name)
        if error is not None:
            raise error
    if verb == "watch":
        return await stream_watch(store, target.rt, target.namespace, request, request.app[CLOSING_KEY])
    if verb == "list":
        return _list(store, target, request)
    if verb == "get":
        obj = store.get(target.rt, target.namespace or "", target.name)
        if target.subresource == "scale":
            return json_response(objects.to_scale(obj))
        if wants_table(request.headers.get("Accept", "")):
            return json_response(
                to_table(target.rt, [obj], store.wall_time(), obj["metadata"]["resourceVersion"])
            )
        return json_response(obj)
    return _write(store, target, verb, request, body)
