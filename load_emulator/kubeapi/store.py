"""The object store: every object of the emulated cluster, as plain JSON dicts, in memory.

Keyed by (:class:`.resources.ResourceType`, namespace, name). One global counter gives each write
its ``resourceVersion``; lists carry its current value. The HTTP routes (:mod:`.routes`) call the
verbs here; drivers (the load emulator's cluster model, the built-in controller in
:mod:`.controller`, tests) use the same Python API directly: :meth:`ObjectStore.get`,
:meth:`~ObjectStore.list`, :meth:`~ObjectStore.create`, :meth:`~ObjectStore.update` (mutate with a
function, no precondition), :meth:`~ObjectStore.set_status`, :meth:`~ObjectStore.delete`.
Every write notifies :meth:`~ObjectStore.subscribe` callbacks and wakes
:meth:`~ObjectStore.wait_for_change`. Reads return deep copies, so callers may mutate them.
Writes happen under one re-entrant lock, so a driver thread and the server's event loop can share
a store; callbacks run inside the write, on the writer's thread.
"""

from __future__ import annotations

import asyncio
import copy
import random
import string
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import objects
from .errors import already_exists, bad_request, conflict, not_found
from .faults import FaultInjector
from .patches import apply_patch
from .resources import ALL_TYPES, NAMESPACES, ResourceType, by_api_version_kind
from .selectors import fields_match, labels_match, parse_field_selector, parse_label_selector

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds


@dataclass(frozen=True)
class Change:
    """One write: ``ADDED``, ``MODIFIED`` or ``DELETED``, with a copy of the object after it."""

    type: str
    resource: ResourceType
    object: Obj
    resource_version: int


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ObjectStore:
    def __init__(self, *, auto_namespaces: bool = True, wall_clock: Callable[[], float] = time.time) -> None:
        """``auto_namespaces``: create a Namespace on first use instead of answering 404 for it."""
        self._objects: dict[ResourceType, dict[Key, Obj]] = {rt: {} for rt in ALL_TYPES}
        self._rv = 0
        self._lock = threading.RLock()
        self._listeners: list[Callable[[Change], None]] = []
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._auto_namespaces = auto_namespaces
        self._wall_clock = wall_clock
        self._rand = random.Random(0)
        self.faults = FaultInjector()

    @property
    def resource_version(self) -> int:
        """The counter of the latest write (0 before any)."""
        return self._rv

    def wall_time(self) -> float:
        """The injected wall clock (seconds since the epoch) stamping creationTimestamp."""
        return self._wall_clock()

    def locked(self) -> AbstractContextManager[bool]:
        """Hold the store's lock across several calls (a read-check-write made atomic)."""
        return self._lock

    # -- reads ------------------------------------------------------------------------------------

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self._objects[rt].get(self._key(rt, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        """The object, or 404 NotFound."""
        obj = self.find(rt, namespace, name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[Obj]:
        """Objects of a type (one namespace or all), filtered by selector strings, by (namespace, name)."""
        labels, fields = parse_label_selector(label_selector), parse_field_selector(field_selector)
        with self._lock:
            items = sorted(self._objects[rt].items())
            return [
                copy.deepcopy(obj)
                for (ns, _), obj in items
                if (namespace is None or ns == namespace)
                and labels_match(labels, (obj.get("metadata") or {}).get("labels"))
                and fields_match(fields, obj)
            ]

    # -- writes -----------------------------------------------------------------------------------

    def create(self, obj: Obj, rt: ResourceType | None = None, namespace: str | None = None) -> Obj:
        """Create from a dict (type from its apiVersion/kind unless given); 409 if the name is taken."""
        rt = rt or self._type_of(obj)
        m = obj.get("metadata") or {}
        ns = (
            (namespace if namespace is not None else str(m.get("namespace") or "default"))
            if rt.namespaced
            else ""
        )
        objects.check_identity(rt, obj, ns, None)
        with self._lock:
            now = datetime.fromtimestamp(self._wall_clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            new = objects.prepare_create(rt, obj, uid=str(uuid.uuid4()), now=now)
            new_m = objects.meta(new)
            if not new_m.get("name") and new_m.get("generateName"):
                suffix = "".join(self._rand.choices(string.ascii_lowercase + string.digits, k=5))
                new_m["name"] = f"{new_m['generateName']}{suffix}"
            if rt.namespaced:
                new_m["namespace"] = ns
                self._ensure_namespace(ns)
            else:
                new_m.pop("namespace", None)
            objects.validate(rt, new)
            key = self._key(rt, ns, str(new_m["name"]))
            if key in self._objects[rt]:
                raise already_exists(rt.plural, rt.group, key[1])
            return self._write(rt, key, new, "ADDED")

    def replace(self, rt: ResourceType, namespace: str, name: str, obj: Obj, *, subresource: str = "") -> Obj:
        """PUT: 409 if the body's resourceVersion is set and stale; a no-op update writes nothing."""
        objects.check_identity(rt, obj, namespace, name)
        with self._lock:
            old = self.get(rt, namespace, name)
            self._check_version(rt, old, obj)
            return self._commit(rt, old, objects.prepare_update(rt, old, obj, subresource))

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        subresource: str = "",
    ) -> Obj:
        """PATCH by media type (see :mod:`.patches`); 409 if the patched resourceVersion is stale."""
        with self._lock:
            old = self.get(rt, namespace, name)
            patched = apply_patch(content_type, old, body)
            self._check_version(rt, old, patched)
            return self._commit(rt, old, objects.prepare_update(rt, old, patched, subresource))

    def update(self, rt: ResourceType, namespace: str, name: str, mutate: Callable[[Obj], None]) -> Obj:
        """Driver hook: ``mutate`` edits a copy in place (spec, status, anything); then it is stored."""
        with self._lock:
            old = self.get(rt, namespace, name)
            new = copy.deepcopy(old)
            mutate(new)
            m, old_m = objects.meta(new), old.get("metadata") or {}
            if rt.has_spec and new.get("spec") != old.get("spec"):
                m["generation"] = int(old_m.get("generation") or 0) + 1
            return self._commit(rt, old, new)

    def set_status(
        self, rt: ResourceType, namespace: str, name: str, status: Obj, *, merge: bool = True
    ) -> Obj:
        """Driver hook: merge ``status`` into the object's status (or replace it with ``merge=False``)."""

        def mutate(obj: Obj) -> None:
            obj["status"] = {**(obj.get("status") or {}), **status} if merge else copy.deepcopy(status)

        return self.update(rt, namespace, name, mutate)

    def delete(self, rt: ResourceType, namespace: str, name: str, *, orphan: bool = False) -> Obj:
        """Delete and return the object; its dependents (by ownerReferences) go too unless ``orphan``."""
        with self._lock:
            obj = self.get(rt, namespace, name)
            key = self._key(rt, namespace, name)
            del self._objects[rt][key]
            self._rv += 1
            objects.meta(obj)["resourceVersion"] = str(self._rv)
            self._notify(Change("DELETED", rt, copy.deepcopy(obj), self._rv))
            if not orphan:
                self._collect_dependents(str(objects.meta(obj).get("uid")))
            return obj

    def apply(self, obj: Obj) -> Obj:
        """Driver convenience: create, or replace the existing object of that name unconditionally."""
        rt = self._type_of(obj)
        m = obj.get("metadata") or {}
        ns = str(m.get("namespace") or "default") if rt.namespaced else ""
        if self.find(rt, ns, str(m.get("name"))) is None:
            return self.create(obj, rt, ns)
        body = copy.deepcopy(obj)
        objects.meta(body).pop("resourceVersion", None)
        return self.replace(rt, ns, str(m.get("name")), body)

    # -- notifications ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback`` after every write; returns the function that unsubscribes it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    async def wait_for_change(self, since: int, timeout_s: float | None = None) -> int:
        """Wait until a write newer than ``since`` (or the timeout); returns the current version."""
        with self._lock:
            if self._rv > since:
                return self._rv
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters = [(lp, f) for lp, f in self._waiters if f is not fut]
        return self._rv

    # -- internals --------------------------------------------------------------------------------

    @staticmethod
    def _key(rt: ResourceType, namespace: str, name: str) -> Key:
        return (namespace if rt.namespaced else "", name)

    @staticmethod
    def _type_of(obj: Obj) -> ResourceType:
        rt = by_api_version_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
        if rt is None:
            raise bad_request(
                f"no kind {obj.get('kind')!r} is registered for version {obj.get('apiVersion')!r}"
            )
        return rt

    def _ensure_namespace(self, namespace: str) -> None:
        if self._key(NAMESPACES, "", namespace) in self._objects[NAMESPACES]:
            return
        if not self._auto_namespaces:
            raise not_found("namespaces", "", namespace)
        self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    def _check_version(self, rt: ResourceType, old: Obj, new: Obj) -> None:
        wanted = str((new.get("metadata") or {}).get("resourceVersion") or "")
        if wanted and wanted != str((old.get("metadata") or {}).get("resourceVersion")):
            raise conflict(rt.plural, rt.group, str((old.get("metadata") or {}).get("name")))

    def _commit(self, rt: ResourceType, old: Obj, new: Obj) -> Obj:
        objects.validate(rt, new)
        objects.meta(new)["resourceVersion"] = (old.get("metadata") or {}).get("resourceVersion")
        if objects.same_content(old, new):
            return old
        m = new["metadata"]
        return self._write(rt, self._key(rt, str(m.get("namespace") or ""), str(m["name"])), new, "MODIFIED")

    def _write(self, rt: ResourceType, key: Key, obj: Obj, kind: str) -> Obj:
        self._rv += 1
        objects.meta(obj)["resourceVersion"] = str(self._rv)
        self._objects[rt][key] = obj
        self._notify(Change(kind, rt, copy.deepcopy(obj), self._rv))
        return copy.deepcopy(obj)

    def _notify(self, change: Change) -> None:
        for callback in list(self._listeners):
            callback(change)
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_wake, fut)

    def _collect_dependents(self, uid: str) -> None:
        for rt in ALL_TYPES:
            for (ns, name), obj in list(self._objects[rt].items()):
                refs = (obj.get("metadata") or {}).get("ownerReferences") or []
                if any(ref.get("uid") == uid for ref in refs) and (ns, name) in self._objects[rt]:
                    self.delete(rt, ns, name)
