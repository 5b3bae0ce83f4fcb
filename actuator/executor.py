"""Carry out planned actions through a narrow ``KubePort``; record an Event per change.

Called by :class:`actuator.app.Actuator` after :func:`actuator.plan.plan_updates`. Each
Deployment gets one strategic merge patch carrying the resourceVersion it was planned from, so
a concurrent writer makes it fail with 409. The executor then re-reads the Deployment: if what
the plan was made from moved (its spec, labels or identity), the action becomes ``conflict`` and
the next cycle re-plans from fresh state; if only status or annotations moved (the Deployment
controller writes status at every pod readiness change of a rollout), the same patch is sent
again at the new resourceVersion, up to ``conflict_rechecks`` times. Patches run concurrently up to
``max_concurrent_patches``; one failure never stops the others. Dry run patches nothing.
Events go to an :class:`actuator.events.EventSink`: the service's broadcaster queues them and
posts them after the answer (off the critical path); without one they are posted inline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from actuator.deployment import planned_on_moved
from actuator.events import EventSink, InlineEvents, RepeatFilter
from actuator.settings import ActuatorSettings
from actuator.targets import write_of
from contract.targets import Shape, TargetRef
from contract.update import ActionKind, Outcome, ServerAction
from plumbing.client import ErrorKind, UpstreamError, classify_exception

REASON_SCALED = "InfernoScaled"
REASON_RECONFIGURED = "InfernoReconfigured"
REASON_FAILED = "InfernoUpdateFailed"
REASON_HELD = "InfernoMetricsIncomplete"


class KubePort(Protocol):
    """What the actuator needs from the API server. Errors are ``UpstreamError``."""

    async def list_deployments(
        self, namespaces: Collection[str]
    ) -> dict[tuple[str, str], dict[str, Any]]: ...

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None: ...


@runtime_checkable
class ObjectPort(Protocol):
    """Scale targets of other kinds (:mod:`contract.targets`). Errors are ``UpstreamError``."""

    async def target_problem(self, ref: TargetRef) -> str | None:
        """Why ``ref``'s kind cannot be used at all (CRD not installed, no /scale); None: usable."""
        ...

    async def list_objects(
        self, ref: TargetRef, namespaces: Collection[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Managed objects by (namespace, name); for a /scale-only kind, their ``scale`` objects."""
        ...

    async def read_object(
        self, ref: TargetRef, namespace: str, name: str, subresource: str = ""
    ) -> dict[str, Any]: ...

    async def patch_object(
        self,
        ref: TargetRef,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        content_type: str,
        subresource: str = "",
    ) -> None: ...


def rfc3339(now_s: float) -> str:
    return datetime.fromtimestamp(now_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_for(
    action: ServerAction,
    deployment: Mapping[str, Any] | None,
    now_s: float,
    cycle_id: str,
    settings: ActuatorSettings,
) -> dict[str, Any]:
    """A core/v1 Event on the Deployment: Normal for a change, Warning for a failure."""
    failed = action.outcome is Outcome.FAILED
    if failed:
        reason, kind = REASON_FAILED, "Warning"
        message = f"cycle {cycle_id}: update failed: {action.error}"
    else:
        changed = "; ".join(f"{c.field} {c.old or '-'}->{c.new}" for c in action.changes)
        why = action.reasons[0] if action.reasons else ""
        reason = REASON_SCALED if any(c.field == "replicas" for c in action.changes) else REASON_RECONFIGURED
        kind = "Normal"
        message = f"cycle {cycle_id}: {changed}. Why: {why}"
        extra = [r for r in action.reasons[1:] if "->" not in r or "held" in r or "limited" in r]
        if extra:
            message += " | " + "; ".join(extra[:4])
    return _event(action, deployment, now_s, settings, reason=reason, kind=kind, message=message)


def hold_event(
    action: ServerAction,
    deployment: Mapping[str, Any] | None,
    now_s: float,
    cycle_id: str,
    settings: ActuatorSettings,
) -> dict[str, Any] | None:
    """A Warning Event saying why the server is held this cycle; None when it is not held."""
    if action.hold is None:
        return None
    message = f"cycle {cycle_id}: {action.hold.text}"
    return _event(action, deployment, now_s, settings, reason=REASON_HELD, kind="Warning", message=message)


def _event(
    action: ServerAction,
    deployment: Mapping[str, Any] | None,
    now_s: float,
    settings: ActuatorSettings,
    *,
    reason: str,
    kind: str,
    message: str,
) -> dict[str, Any]:
    meta = dict((deployment or {}).get("metadata") or {})
    stamp = rfc3339(now_s)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{action.deployment}.", "namespace": action.namespace},
        "involvedObject": {
            "apiVersion": action.target.api_version,
            "kind": action.target.kind or action.target.name,
            "name": action.deployment,
            "namespace": action.namespace,
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message[:1024],
        "type": kind,
        "source": {"component": settings.event_component},
        "reportingComponent": settings.event_component,
        "reportingInstance": settings.event_component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def _conflict(action: ServerAction, exc: Exception, why: str) -> ServerAction:
    return action.model_copy(
        update={
            "outcome": Outcome.CONFLICT,
            "error_kind": ErrorKind.CONFLICT.value,
            "error": str(exc),
            "reasons": [*action.reasons, f"conflict (409): {why}; retry next cycle"],
        }
    )


def _error_kind(exc: Exception) -> ErrorKind:
    return exc.kind if isinstance(exc, UpstreamError) else classify_exception(exc)


async def _write(action: ServerAction, port: KubePort, patch: dict[str, Any]) -> None:
    ref = action.target
    if ref.shape is Shape.DEPLOYMENT:
        await port.patch_deployment(action.namespace, action.deployment, patch)
        return
    assert isinstance(port, ObjectPort)  # the plan skips other kinds without one
    content_type, subresource = write_of(ref)
    await port.patch_object(
        ref, action.namespace, action.deployment, patch, content_type=content_type, subresource=subresource
    )


async def _read(action: ServerAction, port: KubePort) -> dict[str, Any]:
    ref = action.target
    if ref.shape is Shape.DEPLOYMENT:
        return await port.read_deployment(action.namespace, action.deployment)
    assert isinstance(port, ObjectPort)
    return await port.read_object(ref, action.namespace, action.deployment, write_of(ref)[1])


async def _apply(
    action: ServerAction, port: KubePort, read: Mapping[str, Any] | None, rechecks: int
) -> ServerAction:
    """Patch; on a 409, re-read and patch again while only what no plan reads has moved."""
    assert action.patch is not None
    patch = action.patch
    notes: list[str] = []
    for attempt in range(rechecks + 1):
        try:
            await _write(action, port, patch)
            return action.model_copy(
                update={"outcome": Outcome.APPLIED, "patch": patch, "reasons": [*action.reasons, *notes]}
            )
        except Exception as exc:
            kind = _error_kind(exc)
            if kind is not ErrorKind.CONFLICT:
                return action.model_copy(
                    update={"outcome": Outcome.FAILED, "error_kind": kind.value, "error": str(exc)}
                )
            if attempt == rechecks:
                why = f"still changing after {rechecks} re-read(s)" if rechecks else "changed by someone else"
                return _conflict(action, exc, why)
            conflict = exc
        try:
            fresh = await _read(action, port)
        except Exception as exc:
            return _conflict(action, conflict, f"the re-read failed: {exc}")
        moved = planned_on_moved(read, fresh)
        if moved:
            return _conflict(action, conflict, f"{', '.join(moved)} changed by someone else since read")
        version = str((fresh.get("metadata") or {}).get("resourceVersion", ""))
        notes.append(
            f"409 at resourceVersion {patch['metadata']['resourceVersion']}: re-read, only status or "
            f"annotations moved; patched again at {version}"
        )
        patch = {**patch, "metadata": {**patch["metadata"], "resourceVersion": version}}
        read = fresh
    raise AssertionError("unreachable: the last attempt returns")


async def execute(
    actions: Sequence[ServerAction],
    port: KubePort,
    deployments: Mapping[tuple[str, str], Mapping[str, Any]],
    settings: ActuatorSettings,
    *,
    dry_run: bool,
    now_s: float,
    cycle_id: str,
    events: EventSink | None = None,
    hold_repeats: RepeatFilter | None = None,
) -> list[ServerAction]:
    """Apply each ``update`` action (or mark it ``dry-run``); others pass through unchanged.

    An Event per applied or failed patch goes to ``events`` (default: posted inline, in the slot),
    and one per held server (:func:`hold_event`), whatever its action, unless in a dry run; with
    ``hold_repeats``, a held server's Event only when that filter says it is due.
    """
    limit = asyncio.Semaphore(settings.max_concurrent_patches)
    sink: EventSink = events if events is not None else InlineEvents(port.create_event)

    async def one(action: ServerAction) -> ServerAction:
        done = await act(action)
        held = None if dry_run else hold_event(done, deployments.get(done.key), now_s, cycle_id, settings)
        text = done.hold.text if done.hold is not None else ""
        if held is not None and (hold_repeats is None or hold_repeats.due(done.key, text, now_s)):
            await sink.record(done.namespace, held)  # best effort: never raises
        return done

    async def act(action: ServerAction) -> ServerAction:
        if action.kind is not ActionKind.UPDATE or action.patch is None:
            return action
        if dry_run:
            return action.model_copy(update={"outcome": Outcome.DRY_RUN})
        async with limit:
            done = await _apply(action, port, deployments.get(action.key), settings.conflict_rechecks)
            if done.outcome in (Outcome.APPLIED, Outcome.FAILED):
                event = event_for(done, deployments.get(done.key), now_s, cycle_id, settings)
                await sink.record(done.namespace, event)  # best effort: never raises
            return done

    done = list(await asyncio.gather(*(one(a) for a in actions)))
    if hold_repeats is not None and not dry_run:
        hold_repeats.keep_only({a.key for a in done if a.hold is not None})
    return done
