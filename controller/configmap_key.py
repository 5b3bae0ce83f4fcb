"""One key of a ConfigMap the controller keeps state in: read it whole, write it by a merge patch.

Used by :mod:`controller.calibration_kube` (``calibration-data.json``) and
:mod:`controller.history_kube` (``load-history.json``); each write patches its one key and
leaves the ConfigMap's other keys (the collector's ``capacity-data.json`` beside calibration's)
as they are. The ConfigMap must exist (the manifests create it; a write to a missing one is
an error, never a create). The synchronous client runs in a thread with a timeout; a failure
raises ``UpstreamError`` with the API's status classified.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes import client

from plumbing.kube import api_error, api_status


class ConfigMapKey:
    def __init__(self, api_client: Any, namespace: str, name: str, key: str, timeout_s: float) -> None:
        self._api = client.CoreV1Api(api_client)
        self.namespace, self.name, self.key, self.timeout_s = namespace, name, key, timeout_s

    async def read(self) -> str | None:
        """The key's text; None when the ConfigMap or the key does not exist."""
        try:
            resp: Any = await asyncio.to_thread(  # raw: _preload_content=False
                self._api.read_namespaced_config_map,
                self.name,
                self.namespace,
                _preload_content=False,
                _request_timeout=self.timeout_s,
            )
        except Exception as exc:
            if api_status(exc) == 404:
                return None
            raise api_error(exc, f"reading ConfigMap {self.namespace}/{self.name}") from None
        found = json.loads(resp.data)
        data = found.get("data") if isinstance(found, dict) else None
        text = data.get(self.key) if isinstance(data, dict) else None
        return text if isinstance(text, str) else None

    async def write(self, text: str) -> None:
        """One merge patch of this key alone."""
        try:
            await asyncio.to_thread(
                self._api.patch_namespaced_config_map,
                self.name,
                self.namespace,
                {"data": {self.key: text}},
                _preload_content=False,
                _request_timeout=self.timeout_s,
            )
        except Exception as exc:
            raise api_error(exc, f"patching ConfigMap {self.namespace}/{self.name}") from None
