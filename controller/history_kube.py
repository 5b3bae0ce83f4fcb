"""The load history kept as key ``load-history.json`` of a ConfigMap, where the next leader reads it.

Used by :mod:`controller.__main__` when ``load_history_configmap`` is set (the manifests name the
collector's dynamic ConfigMap, ``inferno-dynamic-data``, which also holds ``capacity-data.json``
and ``calibration-data.json``). A :class:`controller.history.HistoryStore`: ``load`` reads the key
(None when the ConfigMap or the key does not exist), ``save`` patches that one key (the other keys
are left as they are; the ConfigMap must exist: the manifests create it, and a missing one is an
error the cycle notes). Only the leader writes (the cycle runs only there). The synchronous client
runs in a thread; every call has a timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from kubernetes import client

from plumbing.kube import api_error, api_status

HISTORY_KEY = "load-history.json"


class ConfigMapHistoryStore:
    def __init__(self, api_client: Any, name: str, namespace: str, timeout_s: float = 5.0) -> None:
        self._api = client.CoreV1Api(api_client)
        self.name, self.namespace, self.timeout_s = name, namespace, timeout_s

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
        try:
            resp = await asyncio.to_thread(fn, *args, _preload_content=False, _request_timeout=self.timeout_s)
        except Exception as exc:
            if api_status(exc) == 404 and what == "read":
                return None
            raise api_error(exc, f"{what} ConfigMap {self.namespace}/{self.name}") from None
        data = json.loads(resp.data)
        return data if isinstance(data, dict) else {}

    async def load(self) -> str | None:
        found = await self._call("read", self._api.read_namespaced_config_map, self.name, self.namespace)
        if found is None:
            return None
        text = (found.get("data") or {}).get(HISTORY_KEY)
        return text if isinstance(text, str) else None

    async def save(self, text: str) -> None:
        body = {"data": {HISTORY_KEY: text}}
        await self._call("patch", self._api.patch_namespaced_config_map, self.name, self.namespace, body)
