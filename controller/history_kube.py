"""The load history kept as key ``load-history.json`` of a ConfigMap, where the next leader reads it.

Used by :mod:`controller.__main__` when ``load_history_configmap`` is set (the manifests ship an
empty ``inferno-load-history`` for it: not a key of the dynamic ConfigMap, which the collector
reads every cycle, as the history grows with the number of servers). A
:class:`controller.history.HistoryStore` over :class:`controller.configmap_key.ConfigMapKey`:
``load`` reads the key (None when the ConfigMap or the key does not exist), ``save`` patches it
alone (a missing ConfigMap is an error the cycle notes). Only the leader writes (the cycle runs
only there).
"""

from __future__ import annotations

from typing import Any

from controller.configmap_key import ConfigMapKey

HISTORY_KEY = "load-history.json"


class ConfigMapHistoryStore:
    def __init__(self, api_client: Any, name: str, namespace: str, timeout_s: float = 5.0) -> None:
        self.key = ConfigMapKey(api_client, namespace, name, HISTORY_KEY, timeout_s)

    async def load(self) -> str | None:
        return await self.key.read()

    async def save(self, text: str) -> None:
        await self.key.write(text)
