"""Where the learned performance is kept: ``calibration-data.json`` of the dynamic ConfigMap.

Used by :mod:`controller.__main__` when ``INFERNO_CONTROLLER_CALIBRATION_CONFIGMAP`` names the
ConfigMap: :class:`KubeCalibrationStore` is the cycle's :class:`controller.cycle.CalibrationStore`.
Each save patches that one key (:class:`controller.configmap_key.ConfigMapKey`); the collector
reads it back every cycle. A failure raises ``UpstreamError`` and the cycle notes it (the learned
values stay in memory and are written at the next change).
"""

from __future__ import annotations

from typing import Any

from contract.calibration import CalibrationData
from controller.configmap_key import ConfigMapKey

CALIBRATION_KEY = "calibration-data.json"


class KubeCalibrationStore:
    def __init__(self, api_client: Any, namespace: str, name: str, timeout_s: float) -> None:
        self.key = ConfigMapKey(api_client, namespace, name, CALIBRATION_KEY, timeout_s)

    async def save(self, data: CalibrationData) -> None:
        await self.key.write(data.model_dump_json(by_alias=True))
