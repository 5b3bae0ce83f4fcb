"""The ConfigMap history store: read (absent -> None), replace, create on first save, errors."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controller.history_kube import HISTORY_KEY, ConfigMapHistoryStore
from plumbing.client import ErrorKind, UpstreamError


class FakeCore:
    """ConfigMaps by name; calls recorded; ``fail`` raised by the next call of that verb."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail: dict[str, ApiException] = {}

    def _answer(self, verb: str, obj: dict[str, Any] | None) -> Any:
        self.calls.append(verb)
        if verb in self.fail:
            raise self.fail.pop(verb)
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        return SimpleNamespace(data=json.dumps(obj).encode())

    def read_namespaced_config_map(self, name: str, namespace: str, **_: Any) -> Any:
        return self._answer("read", self.maps.get(name))

    def replace_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        found = self.maps.get(name)
        if found is not None:
            self.maps[name] = body
        return self._answer("replace", found and body)

    def create_namespaced_config_map(self, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        self.maps[body["metadata"]["name"]] = body
        return self._answer("create", body)


def store_with(core: FakeCore) -> ConfigMapHistoryStore:
    store = ConfigMapHistoryStore(object(), "inferno-load-history", "inferno")
    store._api = core  # type: ignore[assignment]  # the fake behind the adapter
    return store


async def test_absent_then_created_then_replaced() -> None:
    core = FakeCore()
    store = store_with(core)
    assert await store.load() is None
    await store.save('{"a": 1}')
    assert core.calls == ["read", "replace", "create"]
    assert await store.load() == '{"a": 1}'
    await store.save('{"a": 2}')
    assert core.calls[-1] == "replace" and core.maps["inferno-load-history"]["data"] == {
        HISTORY_KEY: '{"a": 2}'
    }


async def test_a_configmap_without_the_key_reads_as_nothing_stored() -> None:
    core = FakeCore()
    core.maps["inferno-load-history"] = {"data": {"other": "x"}}
    assert await store_with(core).load() is None


@pytest.mark.parametrize(("status", "kind"), [(403, ErrorKind.PERMANENT), (503, ErrorKind.TRANSIENT)])
async def test_errors_are_classified(status: int, kind: ErrorKind) -> None:
    core = FakeCore()
    core.fail["read"] = ApiException(status=status, reason="no")
    with pytest.raises(UpstreamError) as caught:
        await store_with(core).load()
    assert caught.value.kind is kind and "inferno/inferno-load-history" in str(caught.value)
    core.fail["replace"] = ApiException(status=status, reason="no")
    with pytest.raises(UpstreamError):
        await store_with(core).save("{}")
    assert "create" not in core.calls
