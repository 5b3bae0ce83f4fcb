"""``?watch=true``: a chunked stream of ``{"type": ..., "object": ...}`` lines, one per change.

Without ``resourceVersion`` (or with ``"0"``) the stream starts with an ``ADDED`` event for every
existing object, as the apiserver does; with a version, only changes after the watch started are
sent (no history is kept, so nothing between that version and now is replayed). Selectors filter
events by the object after the change. The stream ends after ``timeoutSeconds`` (default 300),
when the client goes away, or when the server closes. Used by :mod:`.routes`; it is what
``kubectl get -w`` and the client's ``watch.Watch().stream`` need.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from .resources import ResourceType
from .selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from .store import Change, Obj, ObjectStore
from .tables import to_table, wants_table

DEFAULT_TIMEOUT_S = 300.0
CHECK_PERIOD_S = 0.2


async def stream_watch(
    store: ObjectStore, rt: ResourceType, namespace: str | None, request: web.Request, closing: asyncio.Event
) -> web.StreamResponse:
    """Stream until the timeout, the client leaving (checked every second) or ``closing`` is set."""
    query = request.query
    labels = parse_label_selector(query.get("labelSelector"))
    fields = parse_field_selector(query.get("fieldSelector"))
    timeout_s = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT_S)
    as_table = wants_table(request.headers.get("Accept", ""))
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Change] = asyncio.Queue()

    def on_change(change: Change) -> None:
        if change.resource is rt:
            loop.call_soon_threadsafe(queue.put_nowait, change)

    with store.locked():
        unsubscribe = store.subscribe(on_change)
        initial = store.list(rt, namespace) if query.get("resourceVersion") in (None, "", "0") else []
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        for obj in initial:
            if labels_match(labels, obj["metadata"].get("labels")) and fields_match(fields, obj):
                await response.write(_line("ADDED", _shape(store, rt, obj, as_table)))
        deadline = loop.time() + timeout_s
        while (remaining := deadline - loop.time()) > 0 and not closing.is_set():
            if request.transport is None or request.transport.is_closing():
                break
            try:
                change = await asyncio.wait_for(queue.get(), min(remaining, CHECK_PERIOD_S))
            except TimeoutError:
                continue
            obj = change.object
            if namespace not in (None, "") and obj["metadata"].get("namespace") != namespace:
                continue
            if labels_match(labels, obj["metadata"].get("labels")) and fields_match(fields, obj):
                await response.write(_line(change.type, _shape(store, rt, obj, as_table)))
        await response.write_eof()
    except ConnectionResetError:  # the client went away
        pass
    finally:
        unsubscribe()
    return response


def _shape(store: ObjectStore, rt: ResourceType, obj: Obj, as_table: bool) -> Obj:
    return to_table(rt, [obj], store.wall_time(), obj["metadata"]["resourceVersion"]) if as_table else obj


def _line(kind: str, obj: Obj) -> bytes:
    return (json.dumps({"type": kind, "object": obj}) + "\n").encode()
