"""Executing plans against the fake API server: apply, 409 conflicts, Events, dry run, failures."""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from typing import Any

import pytest

from actuator.app import Actuator
from contract.update import Outcome, UpdateRequest
from plumbing.client import ErrorKind, UpstreamError
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


def _write_between_list_and_patch(
    kube: FakeKube, change: Callable[[dict[str, Any]], None]
) -> list[dict[str, Any]]:
    """A concurrent writer: after the actuator's list, ``change`` the stored object and bump its
    resourceVersion, as the API server does on any write. Returns where the written object goes."""
    real_list = kube.list_deployments
    written: list[dict[str, Any]] = []

    async def list_then_write(namespaces: Collection[str]) -> dict[tuple[str, str], dict[str, Any]]:
        listed = await real_list(namespaces)
        change(kube.objects[KEY])
        kube.bump(*KEY)
        written.append(copy.deepcopy(kube.objects[KEY]))
        return listed

    kube.list_deployments = list_then_write  # type: ignore[method-assign]
    return written


def _status_write(obj: dict[str, Any]) -> None:  # the Deployment controller during a rollout
    obj["status"] = {"readyReplicas": 1, "observedGeneration": 7}
    obj["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "3"


async def test_a_status_write_between_read_and_patch_is_patched_again_in_the_same_cycle() -> None:
    kube = _kube()
    _write_between_list_and_patch(kube, _status_write)
    result = await Actuator(kube, settings(), clock=lambda: 1_700_000_000.0).update(_request())
    (action,) = result.actions
    assert action.outcome is Outcome.APPLIED, action.reasons
    assert [p[2]["metadata"]["resourceVersion"] for p in kube.patches] == ["10", "11"]
    assert kube.reads == [KEY]
    assert action.patch is not None and action.patch["metadata"]["resourceVersion"] == "11"
    assert "409 at resourceVersion 10: re-read" in action.reasons[-1] and "again at 11" in action.reasons[-1]
    stored = kube.objects[KEY]
    assert stored["spec"]["replicas"] == 3 and stored["status"]["readyReplicas"] == 1
    assert stored["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert [e["reason"] for e in kube.events] == ["InfernoScaled"]
    assert result.counts == {"applied": 1}


@pytest.mark.parametrize(
    ("change", "moved"),
    [
        (lambda obj: obj["spec"].update(replicas=5), "spec"),  # an HPA or a person scaled it
        (lambda obj: obj["metadata"]["labels"].update(team="b"), "labels"),
        (lambda obj: obj["metadata"].update(uid="uid-recreated"), "uid"),
    ],
)
async def test_a_write_to_what_the_plan_read_stays_a_conflict(
    change: Callable[[dict[str, Any]], None], moved: str
) -> None:
    kube = _kube()
    written = _write_between_list_and_patch(kube, change)
    result = await Actuator(kube, settings()).update(_request())
    (action,) = result.actions
    assert action.outcome is Outcome.CONFLICT and action.error_kind == "conflict"
    why = f"{moved} changed by someone else since read"
    assert action.reasons[-1] == f"conflict (409): {why}; retry next cycle"
    assert len(kube.patches) == 1 and kube.reads == [KEY]
    assert [kube.objects[KEY]] == written, "the writer's change was clobbered"
    assert kube.events == []


async def test_the_next_cycle_plans_from_the_writers_state() -> None:
    kube = _kube()
    _write_between_list_and_patch(kube, lambda obj: obj["spec"].update(replicas=5))
    actuator = Actuator(kube, settings())
    assert (await actuator.update(_request())).actions[0].outcome is Outcome.CONFLICT
    kube.list_deployments = FakeKube.list_deployments.__get__(kube)  # type: ignore[method-assign]
    second = await actuator.update(_request())
    assert second.actions[0].outcome is Outcome.APPLIED and second.actions[0].replicas_now == 5
    assert kube.objects[KEY]["spec"]["replicas"] == 3


@pytest.mark.parametrize("rechecks", [0, 2])
async def test_rechecks_are_bounded_and_zero_turns_them_off(rechecks: int) -> None:
    kube = _kube()
    real_patch = kube.patch_deployment

    async def status_write_then_patch(namespace: str, name: str, patch: dict[str, Any]) -> None:
        _status_write(kube.objects[KEY])
        kube.bump(*KEY)
        await real_patch(namespace, name, patch)

    kube.patch_deployment = status_write_then_patch  # type: ignore[method-assign]
    result = await Actuator(kube, settings(conflict_rechecks=rechecks)).update(_request())
    (action,) = result.actions
    assert action.outcome is Outcome.CONFLICT
    assert len(kube.patches) == rechecks + 1 and len(kube.reads) == rechecks
    assert kube.objects[KEY]["spec"]["replicas"] == 2
    why = "changed by someone else" if rechecks == 0 else "still changing after 2 re-read(s)"
    assert action.reasons[-1] == f"conflict (409): {why}; retry next cycle"


async def test_a_failed_re_read_leaves_the_conflict_for_the_next_cycle() -> None:
    kube = _kube()
    _write_between_list_and_patch(kube, _status_write)
    real_read = kube.read_deployment

    async def deleted(namespace: str, name: str) -> dict[str, Any]:
        del kube.objects[KEY]
        return await real_read(namespace, name)

    kube.read_deployment = deleted  # type: ignore[method-assign]
    (action,) = (await Actuator(kube, settings()).update(_request())).actions
    assert action.outcome is Outcome.CONFLICT and len(kube.patches) == 1
    assert "the re-read failed: permanent (HTTP 404): deployments 'llama' not found;" in action.reasons[-1]


async def test_failure_is_reported_with_a_warning_event() -> None:
    kube = _kube()
    kube.fail_patch.append(UpstreamError(ErrorKind.TRANSIENT, "etcd timeout", 500))
    result = await Actuator(kube, settings()).update(_request())
    assert result.actions[0].outcome is Outcome.FAILED and result.actions[0].error_kind == "transient"
    assert kube.events[0]["type"] == "Warning"
    assert kube.reads == [], "only a 409 is re-read"


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
