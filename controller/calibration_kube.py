"""Where the learned performance is kept: ``calibration-data.json`` of the dynamic ConfigMap.

Used by :mod:`controller.__main__` when ``INFERNO_CONTROLLER_CALIBRATION_CONFIGMAP`` names the
ConfigMap: :class:`KubeCalibrationStore` is the cycle's :class:`controller.cycle.CalibrationStore`.
One strategic-merge patch of the one key per save (the ConfigMap's other keys, such as
``capacity-data.json``, are left as they are); the collector reads it back every cycle. The
synchronous client runs in a thread with a timeout; a failure raises ``UpstreamError`` and the
cycle notes it (the learned values stay in memory and are written at the next change).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client

from contract.calibration import CalibrationData
from plumbing.kube import api_error

CALIBRATION_KEY = "calibration-data.json"


class KubeCalibrationStore:
    def __init__(self, api_client: Any, namespace: str, name: str, timeout_s: float) -> None:
        self._api = client.CoreV1Api(api_client)
        self.namespace, self.name, self.timeout_s = namespace, name, timeout_s

    async def save(self, data: CalibrationData) -> None:
        body = {"data": {CALIBRATION_KEY: data.model_dump_json(by_alias=True)}}
        try:
            await asyncio.to_thread(
                self._api.patch_namespaced_config_map,
                self.name,
                self.namespace,
                body,
                _preload_content=False,
                _request_timeout=self.timeout_s,
            )
        except Exception as exc:
            raise api_error(exc, f"patching ConfigMap {self.namespace}/{self.name}") from None
