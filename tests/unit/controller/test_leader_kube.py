"""The Lease adapter: JSON bodies (MicroTime, resourceVersion guard), API errors classified, settings."""

from __future__ import annotations

import json
import os
import socket
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from controller.leader import LeaseConflictError, LeaseRecord
from controller.leader_kube import KubeLeasePort, build_elector, lease_body, record_of
from controller.settings import ENV_PREFIX, ControllerSettings
from plumbing.client import ErrorKind, UpstreamError
from plumbing.settings import SettingsError, load_settings

WALL_S = 1_795_000_000.123456  # 2026-11-18T...


def test_body_round_trips_with_microtime_and_the_resource_version_guard() -> None:
    record = LeaseRecord("pod-a", 15.0, WALL_S - 60, WALL_S, transitions=2, resource_version="41")
    body = lease_body("inferno-autoscaler", "inferno", record)
    assert body["metadata"] == {"name": "inferno-autoscaler", "namespace": "inferno", "resourceVersion": "41"}
    assert body["spec"]["leaseDurationSeconds"] == 15 and body["spec"]["holderIdentity"] == "pod-a"
    assert body["spec"]["renewTime"].endswith("Z") and len(body["spec"]["renewTime"]) == 27  # .%f: 6 digits
    back = record_of(json.loads(json.dumps(body)))
    assert back.holder == "pod-a" and back.transitions == 2 and back.resource_version == "41"
    assert back.renew_time_s == pytest.approx(WALL_S, abs=1e-6)


def test_a_lease_without_spec_fields_reads_as_free() -> None:
    back = record_of({"metadata": {"resourceVersion": "3"}, "spec": {}})
    assert back == LeaseRecord("", 0.0, None, None, 0, "3")


class FakeCoordination:
    def __init__(self, fail: ApiException | None = None, answer: dict[str, Any] | None = None) -> None:
        self.fail, self.answer = fail, answer or {}
        self.bodies: list[dict[str, Any]] = []

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        assert kwargs["_preload_content"] is False and kwargs["_request_timeout"] == 2.0
        if isinstance(args[-1], dict):
            self.bodies.append(args[-1])
        if self.fail is not None:
            raise self.fail
        return SimpleNamespace(data=json.dumps(self.answer).encode())

    read_namespaced_lease = create_namespaced_lease = replace_namespaced_lease = _call


def port_with(api: FakeCoordination) -> KubeLeasePort:
    port = KubeLeasePort(object(), "inferno-autoscaler", "inferno", timeout_s=2.0)
    port._api = api  # type: ignore[assignment]  # the fake behind the adapter
    return port


async def test_missing_lease_is_none_and_409_is_a_conflict() -> None:
    assert await port_with(FakeCoordination(ApiException(status=404, reason="Not Found"))).get() is None
    conflict = port_with(FakeCoordination(ApiException(status=409, reason="Conflict")))
    with pytest.raises(LeaseConflictError):
        await conflict.replace(LeaseRecord("pod-a", 15.0, resource_version="4"))
    with pytest.raises(LeaseConflictError):
        await conflict.create(LeaseRecord("pod-a", 15.0))


@pytest.mark.parametrize(
    ("status", "kind"), [(500, ErrorKind.TRANSIENT), (403, ErrorKind.PERMANENT), (0, ErrorKind.TRANSIENT)]
)
async def test_other_api_errors_are_classified(status: int, kind: ErrorKind) -> None:
    port = port_with(FakeCoordination(ApiException(status=status, reason="boom")))
    with pytest.raises(UpstreamError) as err:
        await port.get()
    assert err.value.kind is kind and "get lease" in str(err.value)


async def test_create_never_sends_a_resource_version() -> None:
    api = FakeCoordination(answer={"metadata": {"resourceVersion": "1"}, "spec": {"holderIdentity": "pod-a"}})
    written = await port_with(api).create(LeaseRecord("pod-a", 15.0, resource_version="stale"))
    assert "resourceVersion" not in api.bodies[0]["metadata"]
    assert written.holder == "pod-a" and written.resource_version == "1"


def test_identity_defaults_to_host_and_pid_and_timings_come_from_settings() -> None:
    settings = ControllerSettings(leader_election=True, lease_duration_s=20, renew_deadline_s=12)
    elector = build_elector(settings, api_client=object())
    assert elector.identity == f"{socket.gethostname()}-{os.getpid()}"  # unique per process
    assert (elector.timings.lease_duration_s, elector.timings.renew_deadline_s) == (20, 12)
    named = build_elector(ControllerSettings(pod_name="inferno-autoscaler-7d9-x2"), api_client=object())
    assert named.identity == "inferno-autoscaler-7d9-x2"


def test_settings_refuse_a_renew_deadline_not_below_the_lease_duration() -> None:
    env = {"INFERNO_CONTROLLER_RENEW_DEADLINE_S": "15", "INFERNO_CONTROLLER_LEASE_DURATION_S": "15"}
    with pytest.raises(SettingsError, match="renew_deadline_s < lease_duration_s"):
        load_settings(ControllerSettings, ENV_PREFIX, env)
