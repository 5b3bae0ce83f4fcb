"""Executing plans against the fake API server: apply, 409 conflicts, Events, dry run, failures."""

from __future__ import annotations

from actuator.model import Outcome, UpdateRequest
from actuator.service import Actuator
from controller.common.client import ErrorKind, UpstreamError
from tests.unit.actuator.fakes import (
    NS,
    PLACEMENT,
    FakeKube,
    decision,
    deployment,
    server,
    settings,
    solution,
)

KEY = (NS, "llama")


def _kube() -> FakeKube:
    return FakeKube(deployment())


def _request(replicas: int = 3, dry_run: bool = False, **dec: object) -> UpdateRequest:
    return UpdateRequest(
        cycle_id="c1",
        solution=solution(decision(replicas=replicas, **dec)),  # type: ignore[arg-type]
        servers=[server()],
        placement=PLACEMENT,
        dry_run=dry_run,
    )


async def test_applies_one_patch_and_records_an_event() -> None:
    kube = _kube()
    result = await Actuator(kube, settings(), clock=lambda: 1_700_000_000.0).update(_request())
    (action,) = result.actions
    assert action.outcome is Outcome.APPLIED
    assert kube.objects[KEY]["spec"]["replicas"] == 3
    assert len(kube.patches) == 1
    (event,) = kube.events
    assert event["reason"] == "InfernoScaled" and event["type"] == "Normal"
    assert "replicas 2->3" in event["message"] and "cycle c1" in event["message"]
    assert event["involvedObject"]["uid"] == "uid-llama"
    assert event["firstTimestamp"] == "2023-11-14T22:13:20Z"
    assert result.counts == {"applied": 1}


async def test_second_update_is_a_noop() -> None:
    kube = _kube()
    actuator = Actuator(kube, settings())
    await actuator.update(_request(replicas=4, accelerator="L4", batch=16))
    again = await actuator.update(_request(replicas=4, accelerator="L4", batch=16))
    assert [a.outcome for a in again.actions] == [Outcome.UNCHANGED]
    assert len(kube.patches) == 1


async def test_reconfiguration_event_reason() -> None:
    kube = _kube()
    await Actuator(kube, settings()).update(_request(replicas=2, batch=32))
    assert kube.events[0]["reason"] == "InfernoReconfigured"


async def test_conflict_is_retried_next_cycle() -> None:
    kube = _kube()
    kube.fail_patch.append(UpstreamError(ErrorKind.CONFLICT, "the object has been modified", 409))
    actuator = Actuator(kube, settings())
    first = await actuator.update(_request())
    (action,) = first.actions
    assert action.outcome is Outcome.CONFLICT and action.error_kind == "conflict"
    assert "retry next cycle" in action.reasons[-1]
    assert kube.events == []
    second = await actuator.update(_request())
    assert second.actions[0].outcome is Outcome.APPLIED
    assert kube.objects[KEY]["spec"]["replicas"] == 3


async def test_stale_resource_version_yields_conflict() -> None:
    kube = _kube()
    actuator = Actuator(kube, settings())
    real_list = kube.list_deployments

    async def list_then_concurrent_write(namespaces: object) -> dict[tuple[str, str], dict[str, object]]:
        listed = await real_list(namespaces)  # type: ignore[arg-type]
        kube.bump(*KEY)
        return listed

    kube.list_deployments = list_then_concurrent_write  # type: ignore[method-assign]
    result = await actuator.update(_request())
    assert result.actions[0].outcome is Outcome.CONFLICT
    assert kube.objects[KEY]["spec"]["replicas"] == 2


async def test_failure_is_reported_with_a_warning_event() -> None:
    kube = _kube()
    kube.fail_patch.append(UpstreamError(ErrorKind.TRANSIENT, "etcd timeout", 500))
    result = await Actuator(kube, settings()).update(_request())
    assert result.actions[0].outcome is Outcome.FAILED and result.actions[0].error_kind == "transient"
    assert kube.events[0]["type"] == "Warning"


async def test_dry_run_by_request_and_by_setting() -> None:
    for opts, dry in (({}, True), ({"dry_run": True}, False)):
        kube = _kube()
        result = await Actuator(kube, settings(**opts)).update(_request(dry_run=dry))
        assert result.dry_run is True
        assert result.actions[0].outcome is Outcome.DRY_RUN
        assert result.actions[0].patch is not None
        assert kube.patches == [] and kube.events == []


async def test_event_failure_does_not_undo_the_change() -> None:
    kube = _kube()

    async def broken(namespace: str, event: object) -> None:
        raise UpstreamError(ErrorKind.PERMANENT, "forbidden", 403)

    kube.create_event = broken  # type: ignore[method-assign,assignment]
    result = await Actuator(kube, settings()).update(_request())
    assert result.actions[0].outcome is Outcome.APPLIED
