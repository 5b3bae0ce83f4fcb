"""The ConfigMap history store: read (absent -> None), one key patched, other keys kept, errors."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controller.history_kube import HISTORY_KEY, ConfigMapHistoryStore
from plumbing.client import ErrorKind, UpstreamError

NAME = "inferno-dynamic-data"


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

    def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        found = self.maps.get(name)
        if found is not None and "patch" not in self.fail:
            found.setdefault("data", {}).update(body["data"])
        return self._answer("patch", found)


def store_with(core: FakeCore) -> ConfigMapHistoryStore:
    store = ConfigMapHistoryStore(object(), NAME, "inferno")
    store.key._api = core  # type: ignore[assignment]  # the fake behind the adapter
    return store


async def test_saves_patch_only_the_history_key() -> None:
    core = FakeCore()
    core.maps[NAME] = {"data": {"capacity-data.json": "{}"}}
    store = store_with(core)
    assert await store.load() is None
    await store.save('{"a": 1}')
    assert await store.load() == '{"a": 1}'
    await store.save('{"a": 2}')
    assert core.calls == ["read", "patch", "read", "patch"]
    assert core.maps[NAME]["data"] == {"capacity-data.json": "{}", HISTORY_KEY: '{"a": 2}'}


async def test_a_missing_configmap_reads_as_nothing_and_fails_to_save() -> None:
    core = FakeCore()
    store = store_with(core)
    assert await store.load() is None
    with pytest.raises(UpstreamError) as caught:
        await store.save("{}")
    assert "patching ConfigMap inferno/inferno-dynamic-data" in str(caught.value)
    assert NAME not in core.maps


@pytest.mark.parametrize(("status", "kind"), [(403, ErrorKind.PERMANENT), (503, ErrorKind.TRANSIENT)])
async def test_errors_are_classified(status: int, kind: ErrorKind) -> None:
    core = FakeCore()
    core.maps[NAME] = {"data": {}}
    core.fail["read"] = ApiException(status=status, reason="no")
    with pytest.raises(UpstreamError) as caught:
        await store_with(core).load()
    assert caught.value.kind is kind and "inferno/inferno-dynamic-data" in str(caught.value)
    core.fail["patch"] = ApiException(status=status, reason="no")
    with pytest.raises(UpstreamError):
        await store_with(core).save("{}")
    assert core.maps[NAME]["data"] == {}
