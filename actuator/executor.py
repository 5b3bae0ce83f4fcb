"""Carry out planned actions through a narrow ``KubePort``; record an Event per change.

Called by :class:`actuator.service.Actuator` after :func:`actuator.plan.plan_updates`. Each
Deployment gets at most one strategic merge patch carrying the resourceVersion it was planned
from, so a concurrent writer makes it fail with 409: the action becomes ``conflict`` and the
next cycle re-plans from fresh state. Patches run concurrently up to
``max_concurrent_patches``; one failure never stops the others. Dry run patches nothing.
Events go to an :class:`actuator.events.EventSink`: the service's broadcaster queues them and
posts them after the answer (off the critical path); without one they are posted inline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from actuator.events import EventSink, InlineEvents
from actuator.model import ActionKind, Outcome, ServerAction
from actuator.settings import ActuatorSettings
from controller.common.client import ErrorKind, UpstreamError, classify_exception

REASON_SCALED = "InfernoScaled"
REASON_RECONFIGURED = "InfernoReconfigured"
REASON_FAILED = "InfernoUpdateFailed"


class KubePort(Protocol):
    """What the actuator needs from the API server. Errors are ``UpstreamError``."""

    async def list_deployments(
        self, namespaces: Collection[str]
    ) -> dict[tuple[str, str], dict[str, Any]]: ...

    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None: ...


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
    meta = dict((deployment or {}).get("metadata") or {})
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
    stamp = rfc3339(now_s)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{action.deployment}.", "namespace": action.namespace},
        "involvedObject": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
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


async def _apply(action: ServerAction, port: KubePort) -> ServerAction:
    assert action.patch is not None
    try:
        await port.patch_deployment(action.namespace, action.deployment, action.patch)
    except Exception as exc:
        kind = exc.kind if isinstance(exc, UpstreamError) else classify_exception(exc)
        if kind is ErrorKind.CONFLICT:
            return action.model_copy(
                update={
                    "outcome": Outcome.CONFLICT,
                    "error_kind": kind.value,
                    "error": str(exc),
                    "reasons": [*action.reasons, "conflict (409): changed by someone else; retry next cycle"],
                }
            )
        return action.model_copy(
            update={"outcome": Outcome.FAILED, "error_kind": kind.value, "error": str(exc)}
        )
    return action.model_copy(update={"outcome": Outcome.APPLIED})


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
) -> list[ServerAction]:
    """Apply each ``update`` action (or mark it ``dry-run``); others pass through unchanged.

    An Event per applied or failed patch goes to ``events`` (default: posted inline, in the slot).
    """
    limit = asyncio.Semaphore(settings.max_concurrent_patches)
    sink: EventSink = events if events is not None else InlineEvents(port.create_event)

    async def one(action: ServerAction) -> ServerAction:
        if action.kind is not ActionKind.UPDATE or action.patch is None:
            return action
        if dry_run:
            return action.model_copy(update={"outcome": Outcome.DRY_RUN})
        async with limit:
            done = await _apply(action, port)
            if done.outcome in (Outcome.APPLIED, Outcome.FAILED):
                event = event_for(done, deployments.get(done.key), now_s, cycle_id, settings)
                await sink.record(done.namespace, event)  # best effort: never raises
            return done

    return list(await asyncio.gather(*(one(a) for a in actions)))
