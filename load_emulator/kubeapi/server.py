"""Start the emulated Kubernetes API server on loopback, and write a kubeconfig that points to it.

:func:`start_kubeapi` serves an :class:`.store.ObjectStore` over HTTP (no TLS) on 127.0.0.1 and
returns a :class:`KubeApiServer` handle: its ``url``, the ``store`` (Python API, fault injection),
the ``requests`` it served (method, path, content type: tests assert on them), an optional running
built-in controller (:mod:`.controller`), and :meth:`KubeApiServer.write_kubeconfig` so
subprocesses (the four services) reach it through ``KUBECONFIG``. With ``token`` set, every
request must carry ``Authorization: Bearer <token>`` (else 401), as with a static token file.
Called by the load emulator's embedded demo and by tests. :class:`ThreadedKubeApi` runs the same
server on a thread of its own for synchronous callers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .controller import BuiltinController
from .errors import ApiError
from .resources import SERVER_VERSION, api_group_list_doc, api_versions_doc
from .routes import CLOSING_KEY, STORE_KEY, handle, json_response
from .store import ObjectStore

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    content_type: str


REQUESTS_KEY: web.AppKey[deque[RequestRecord]] = web.AppKey("requests", deque)


def build_app(store: ObjectStore, token: str | None = None, max_records: int = 10_000) -> web.Application:
    """The aiohttp application: discovery, health, and every resource path of :mod:`.routes`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        ctype = request.headers.get("Content-Type", "")
        request.app[REQUESTS_KEY].append(
            RequestRecord(request.method, request.path, request.query_string, ctype)
        )
        try:
            if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
                raise ApiError(401, "Unauthorized")
            return await handler(request)
        except ApiError as exc:
            return json_response(exc.status(), exc.code)
        except web.HTTPException as exc:
            return json_response(ApiError(exc.status, exc.reason).status(), exc.status)
        except Exception as exc:  # a bug here must still answer like an apiserver would
            log.exception("emulated kube-apiserver: %s %s failed", request.method, request.path)
            return json_response(ApiError(500, f"{type(exc).__name__}: {exc}").status(), 500)

    def static(body: dict[str, Any]) -> Handler:
        async def answer(_request: web.Request) -> web.StreamResponse:
            return json_response(body)

        return answer

    async def probe(_request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    app = web.Application(middlewares=[middleware], client_max_size=16 * 1024 * 1024)
    app[STORE_KEY] = store
    app[CLOSING_KEY] = asyncio.Event()
    app[REQUESTS_KEY] = deque(maxlen=max_records)
    for path, body in (
        ("/version", SERVER_VERSION),
        ("/api", api_versions_doc()),
        ("/apis", api_group_list_doc()),
    ):
        app.router.add_get(path, static(body))
        app.router.add_get(f"{path}/", static(body))
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, probe)
    app.router.add_route("*", "/api/{tail:.*}", handle)
    app.router.add_route("*", "/apis/{tail:.*}", handle)
    return app


@dataclass
class KubeApiServer:
    """A running server; ``await close()`` (or ``async with``) stops it and its controller."""

    url: str
    port: int
    store: ObjectStore
    token: str | None
    runner: web.AppRunner
    controller: BuiltinController | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def requests(self) -> deque[RequestRecord]:
        return self.runner.app[REQUESTS_KEY]

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """A kubeconfig (JSON is valid YAML) with one cluster at ``url`` and a token user."""
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            "users": [{"name": "emulated-user", "user": user}],
            "contexts": [
                {
                    "name": "emulated",
                    "context": {"cluster": "emulated", "user": "emulated-user", "namespace": namespace},
                }
            ],
            "current-context": "emulated",
            "preferences": {},
        }
        target = Path(path)
        target.write_text(json.dumps(config, indent=2))
        return target

    async def close(self) -> None:
        if self.controller is not None:
            self.controller.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.runner.app[CLOSING_KEY].set()
        await self.runner.cleanup()

    async def __aenter__(self) -> KubeApiServer:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


async def start_kubeapi(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    store: ObjectStore | None = None,
    token: str | None = None,
    controller: BuiltinController | None = None,
) -> KubeApiServer:
    """Serve ``store`` (a new empty one by default) on ``host:port`` (0: any free port).

    ``controller``: a :class:`.controller.BuiltinController` over the same store, run in the
    background until :meth:`KubeApiServer.close`. Only loopback hosts are accepted.
    """
    if host not in LOOPBACK:
        raise ValueError(f"the emulated API server binds loopback only, not {host!r}")
    store = store if store is not None else (controller.store if controller is not None else ObjectStore())
    if controller is not None and controller.store is not store:
        raise ValueError("the controller must work on the served store")
    runner = web.AppRunner(build_app(store, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1])
    url = f"http://{'127.0.0.1' if host == 'localhost' else host}:{bound}"
    server = KubeApiServer(url, bound, store, token, runner, controller)
    if controller is not None:
        server._tasks.append(asyncio.create_task(controller.run(), name="kubeapi-controller"))
    return server


class ThreadedKubeApi:
    """The server on its own event loop in a daemon thread, for synchronous callers and scripts.

    ``with ThreadedKubeApi(controller=...) as api: ...`` or :meth:`start` / :meth:`stop`. The store
    may be used from the calling thread (its lock makes each call atomic).
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kubeapi", daemon=True)
        self.server: KubeApiServer | None = None

    def start(self, timeout_s: float = 10.0) -> KubeApiServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(start_kubeapi(**self._kwargs), self._loop)
        self.server = future.result(timeout_s)
        return self.server

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(timeout_s)
            self.server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
        self._loop.close()

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
