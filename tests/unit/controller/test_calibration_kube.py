"""The ConfigMap writer of calibration (controller/calibration_kube.py): one merge patch of one key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from contract.calibration import CalibrationData, LearnedEntry
from controller.calibration_kube import KubeCalibrationStore
from plumbing.client import ErrorKind, UpstreamError


class FakeCoreApi:
    def __init__(self, fail: ApiException | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        self.fail = fail

    def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any], **kw: Any) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append((name, namespace, body, kw))


DATA = CalibrationData(
    entries=[LearnedEntry(model="granite_13b", acc="A100", fixed_factor=1.9, work_factor=0.6)]
)


def _store(api: FakeCoreApi) -> KubeCalibrationStore:
    store = KubeCalibrationStore(None, "inferno", "inferno-dynamic-data", timeout_s=3.0)
    store.key._api = api  # type: ignore[assignment]
    return store


async def test_save_patches_only_the_calibration_key() -> None:
    api = FakeCoreApi()
    await _store(api).save(DATA)
    [(name, namespace, body, kw)] = api.calls
    assert (name, namespace, list(body["data"])) == (
        "inferno-dynamic-data",
        "inferno",
        ["calibration-data.json"],
    )
    assert kw["_request_timeout"] == 3.0
    written = json.loads(body["data"]["calibration-data.json"])
    assert written["entries"][0]["fixedFactor"] == 1.9  # the collector reads this spelling back
    assert CalibrationData.model_validate(written) == DATA


@pytest.mark.parametrize(("status", "kind"), [(403, ErrorKind.PERMANENT), (503, ErrorKind.TRANSIENT)])
async def test_a_refused_patch_is_a_classified_error(status: int, kind: ErrorKind) -> None:
    with pytest.raises(UpstreamError) as caught:
        await _store(FakeCoreApi(ApiException(status=status, reason="nope"))).save(DATA)
    assert caught.value.kind is kind
    assert "patching ConfigMap inferno/inferno-dynamic-data" in str(caught.value)
