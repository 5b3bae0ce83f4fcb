"""Decide, per managed server, what to change: ``plan_updates`` (pure; time is an input).

Called by :class:`actuator.app.Actuator` on every ``POST /update``; the executor then applies
the actions. A server is kept exactly as it is (``kind=skip``) when it is absent from the solution,
its data is not trusted, the solution marks it unallocated, its Deployment is missing or malformed,
it must keep its accelerator but the solution moves it, it is held (``ManagedServer.hold``) but the
solution changes its GPU type or batch, or the new card type has no placement (:func:`_refusal`).
Otherwise its replica count goes through :mod:`actuator.safety` (:func:`_replicas`), its patch
through :mod:`actuator.patch`, and a pod-template change through :mod:`actuator.rollout`, deferred
when its surge pod could never start (:func:`_patch`).

Stabilisation window: the controller keeps it and gave the optimizer its floor, so the allocation
already holds what the window holds, on cards no other server needs; ``demand_replicas`` says what
the load alone needs. Each action reports that count within the server's bounds
(``replicas_needed``), which the controller's window records; the actuator holds nothing itself.

Capacity: a running server the optimizer cannot serve comes as ``partial`` at its capacity floor
(``max(min_replicas, 1)`` on its current accelerator, whose cards the optimizer reserved before
allocating) and is scaled down to it like any partial allocation; ``unallocated`` means the server
has no candidate on its accelerator, and the optimizer reserved all it runs, so keeping it as it
is matches what was counted. The optimizer's capacity steps are listed first
(:data:`contract.steps.CAPACITY_CODES`), so the Event says why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actuator.deployment import DeploymentShapeError, DeploymentView, valid_label_value
from actuator.patch import Target, build_patch
from actuator.placement import ResolvedPlacement, resolve_placement
from actuator.rollout import free_cards
from actuator.safety import bounded_replicas, safe_replicas
from actuator.settings import ActuatorSettings
from actuator.targets import SCALE_ONLY_NOTE, gpus_per_pod, patch_for, surge_replicas, view_of_target
from contract.collect import ManagedServer, Placement
from contract.labels import ACCELERATOR, format_timestamp
from contract.solution import DecisionStatus, ServerAllocation, ServerDecision, Solution
from contract.steps import CAPACITY_CODES, Step
from contract.targets import Shape, TargetRef
from contract.update import ActionKind, FieldChange, Outcome, ServerAction

Deployments = Mapping[tuple[str, str], Mapping[str, Any]]
"""The scale targets read this cycle (Deployments and other kinds), by (namespace, name)."""


def _capacity_first(steps: Sequence[Step]) -> list[str]:
    """The texts of a decision's steps, those that explain a capacity decision first, so the Event
    (which carries the first few reasons) says why a server was brought down to its floor or kept
    as it is."""
    key = [s.text for s in steps if s.code in CAPACITY_CODES]
    return key + [s.text for s in steps if s.code not in CAPACITY_CODES]


def _skip(server: ManagedServer, *reasons: str, replicas_now: int | None = None) -> ServerAction:
    return ServerAction(
        server=server.server,
        namespace=server.namespace,
        deployment=server.deployment,
        target=server.target,
        kind=ActionKind.SKIP,
        outcome=Outcome.SKIPPED,
        replicas_now=replicas_now,
        reasons=[*reasons, "kept as is"],
    )


@dataclass(frozen=True)
class _Accepted:
    """A server the plan may change: its allocation, its Deployment as read, where the cards are."""

    decision: ServerDecision
    alloc: ServerAllocation
    deployment: Mapping[str, Any]
    view: DeploymentView
    same_acc: bool
    place: ResolvedPlacement | None
    notes: tuple[str, ...]


def _refusal(
    server: ManagedServer,
    decision: ServerDecision | None,
    deployment: Mapping[str, Any] | None,
    place_of: Callable[[str], ResolvedPlacement | None],
    settings: ActuatorSettings,
    *,
    target_problem: str | None = None,
) -> ServerAction | _Accepted:
    """The skip that keeps the server as it is, or what the plan works with."""
    if not server.trusted:  # first: untrusted servers are never in the solution, and this is why
        return _skip(server, f"data not trusted (load source: {server.load_source})", *server.notes[:3])
    if decision is None:
        return _skip(server, "absent from the solution")
    alloc = decision.allocation
    if decision.status is DecisionStatus.UNALLOCATED or alloc is None:
        return _skip(server, f"solution: {decision.status.value}", *_capacity_first(decision.steps))
    kind = server.target.kind or server.target.name
    if target_problem:
        return _skip(server, target_problem)
    if deployment is None:
        return _skip(server, f"{kind} {server.namespace}/{server.deployment} not found")
    try:
        view = view_of_target(server.target, deployment, settings.container_name)
    except DeploymentShapeError as exc:
        return _skip(server, f"{kind} not manageable: {exc}")
    current_acc = view.labels.get(ACCELERATOR, "")
    same_acc = current_acc == alloc.accelerator
    problem = ""
    if server.target.shape is Shape.SCALE:  # no pod template here: the label is on the object
        current_acc = server.current_accelerator
        same_acc = current_acc == alloc.accelerator
    if server.target.shape is Shape.SCALE and not same_acc:
        problem = (
            f"the solution moves {current_acc or 'an unknown GPU type'} -> {alloc.accelerator}, but "
            f"{kind} is scaled through /scale only: its GPU type cannot be changed"
        )
    elif server.keep_accelerator and current_acc and not same_acc:
        problem = f"keep-accelerator is set but the solution moves {current_acc} -> {alloc.accelerator}"
    elif server.hold is not None and (not same_acc or alloc.max_batch != server.current_max_batch):
        problem = (
            f"held, but the solution changes {current_acc} batch {server.current_max_batch} -> "
            f"{alloc.accelerator} batch {alloc.max_batch}"
        )
    elif server.max_replicas and server.min_replicas > server.max_replicas:
        problem = f"min_replicas {server.min_replicas} > max_replicas {server.max_replicas}"
    elif not valid_label_value(alloc.accelerator):
        problem = f"accelerator name {alloc.accelerator!r} is not a valid label value"
    if problem:
        return _skip(server, problem, replicas_now=view.replicas)
    if server.target.shape is Shape.SCALE:
        note = SCALE_ONLY_NOTE.format(kind=kind)
        return _Accepted(decision, alloc, deployment, view, same_acc, None, (note,))
    place = place_of(alloc.accelerator_type)
    notes: tuple[str, ...] = ()
    if place is None:
        if settings.manage_node_selector and not same_acc:
            return _skip(
                server,
                f"no placement for card type {alloc.accelerator_type!r}: cannot place {alloc.accelerator}",
                replicas_now=view.replicas,
            )
        notes = (
            f"no placement for card type {alloc.accelerator_type!r}: node selector and GPU "
            "resources left as they are",
        )
    elif not valid_label_value(place.node_label_value):
        return _skip(
            server,
            f"placement label value {place.node_label_value!r} is not a valid label value",
            replicas_now=view.replicas,
        )
    return _Accepted(decision, alloc, deployment, view, same_acc, place, notes)


def _replicas(
    server: ManagedServer, accepted: _Accepted, settings: ActuatorSettings
) -> tuple[int, int, int, list[str]]:
    """``(bounded, needed, target, reasons)``: the solution's count within the bounds, what the
    load needs within them (for the controller's window), and the count after the safety rules."""
    alloc = accepted.alloc
    bounded, reasons = bounded_replicas(alloc.num_replicas, server, settings)
    needed = bounded
    if alloc.demand_replicas is not None:
        needed, _ = bounded_replicas(alloc.demand_replicas, server, settings)
        if alloc.demand_replicas != alloc.num_replicas:
            reasons.append(
                f"stabilisation window applied by the optimizer: {alloc.num_replicas} kept, "
                f"the load needs {alloc.demand_replicas}"
            )
    target, safety_reasons = safe_replicas(
        bounded, accepted.view.replicas, same_accelerator=accepted.same_acc, server=server, settings=settings
    )
    return bounded, needed, target, reasons + safety_reasons


def _patch(
    accepted: _Accepted,
    target: Target,
    settings: ActuatorSettings,
    free: dict[str, int] | None,
    ref: TargetRef,
) -> tuple[dict[str, Any] | None, list[FieldChange], list[str]] | str:
    """The patch, its changes and notes; or, when its pod-template change would deadlock and cannot
    be narrowed to replicas alone, the reason to skip."""
    view, alloc = accepted.view, accepted.alloc
    if ref.shape is Shape.SCALE:
        return _scale_patch(view, target.replicas)
    patch, changes, notes = build_patch(view, target, settings)
    if not any(c.rolls_pods for c in changes) or free is None:
        return patch, changes, notes
    blocked = _surge_blocked(
        accepted.deployment,
        ref,
        node_selector=view.node_selector,
        target=target,
        alloc=alloc,
        same_acc=accepted.same_acc,
        free=free,
    )
    if not blocked:
        return patch, changes, notes
    if not accepted.same_acc:
        return blocked
    patch, changes, notes = build_patch(view, target, settings.model_copy(update={"manage_batch": False}))
    if any(c.rolls_pods for c in changes):
        return blocked
    return patch, changes, [*notes, f"{blocked}: batch {alloc.max_batch} deferred, replicas set"]


def _scale_patch(
    view: DeploymentView, replicas: int
) -> tuple[dict[str, Any] | None, list[FieldChange], list[str]]:
    """Replicas alone, for a kind scaled through /scale (the patch's shape is a Deployment's)."""
    if view.replicas == replicas:
        return None, [], []
    change = FieldChange(field="replicas", old=str(view.replicas), new=str(replicas), rolls_pods=False)
    patch = {"metadata": {"resourceVersion": view.resource_version}, "spec": {"replicas": replicas}}
    return patch, [change], []


def _plan_one(
    server: ManagedServer,
    *,
    decision: ServerDecision | None,
    place_of: Callable[[str], ResolvedPlacement | None],
    changed_at: str,
    deployment: Mapping[str, Any] | None,
    settings: ActuatorSettings,
    free: dict[str, int] | None = None,
    target_problem: str | None = None,
) -> ServerAction:
    accepted = _refusal(server, decision, deployment, place_of, settings, target_problem=target_problem)
    if isinstance(accepted, ServerAction):
        return accepted
    alloc, view, place, ref = accepted.alloc, accepted.view, accepted.place, server.target
    bounded, needed, replicas, replica_reasons = _replicas(server, accepted, settings)
    written = replicas
    if settings.actuation_mode == "hpa":  # one writer: the HPA scales to what the controller publishes
        written = view.replicas
        replica_reasons = [
            *replica_reasons,
            f"one-writer mode: replicas are the HPA's; desired {replicas} published as "
            f"inferno_desired_replicas, {view.replicas} left as they are",
        ]
    try:
        per_pod = gpus_per_pod(ref, alloc.cards_per_replica, view.pods_per_replica)
    except DeploymentShapeError as exc:
        return _skip(server, f"{ref.kind} not manageable: {exc}", replicas_now=view.replicas)
    target = Target(
        replicas=written,
        accelerator=alloc.accelerator,
        max_batch=alloc.max_batch,
        gpus_per_replica=per_pod,
        node_label_key=place.node_label_key if place else None,
        node_label_value=place.node_label_value if place else None,
        gpu_resource=place.resource if place else None,
        foreign_selector_keys=place.foreign_selector_keys if place else frozenset(),
        foreign_resources=place.foreign_resources if place else frozenset(),
        changed_at=changed_at,
    )
    patched = _patch(accepted, target, settings, free, ref)
    if isinstance(patched, str):
        return _skip(server, patched, replicas_now=view.replicas)
    patch, changes, patch_notes = patched
    if (
        patch is not None
        and settings.actuation_mode == "hpa"
        and settings.one_writer_template_changes == "advisory"
    ):
        patch_notes = [
            *patch_notes,
            *(f"advisory, not patched: {c.field} {c.old or '-'} -> {c.new}" for c in changes),
        ]
        patch, changes = None, []
    if patch is not None:
        patch = patch_for(ref, accepted.deployment, patch).body
    reasons = [
        f"solution: {accepted.decision.status.value} {alloc.num_replicas} x {alloc.accelerator} "
        f"(batch {alloc.max_batch}, {alloc.cards_per_replica} card(s)/replica, cost {alloc.cost:g}/h)",
        *(f"optimizer: {r}" for r in _capacity_first(accepted.decision.steps)),
        *replica_reasons,
        *accepted.notes,
        *patch_notes,
    ]
    if patch is None and not any(n.startswith("advisory, not patched") for n in patch_notes):
        reasons.append("already in place")
    elif patch is not None:
        reasons.extend(f"{c.field}: {c.old or '-'} -> {c.new}" for c in changes)
    return ServerAction(
        server=server.server,
        namespace=server.namespace,
        deployment=server.deployment,
        target=ref,
        kind=ActionKind.UPDATE if patch else ActionKind.NOOP,
        outcome=Outcome.PLANNED if patch else Outcome.UNCHANGED,
        replicas_now=view.replicas,
        replicas_recommended=alloc.num_replicas,
        replicas_bounded=bounded,
        replicas_target=replicas,
        replicas_needed=needed,
        accelerator_target=alloc.accelerator,
        max_batch_target=alloc.max_batch,
        changes=changes,
        rolls_pods=any(c.rolls_pods for c in changes),
        patch=patch,
        reasons=reasons,
    )


def _surge_blocked(
    deployment: Mapping[str, Any],
    ref: TargetRef,
    *,
    node_selector: Mapping[str, str],
    target: Target,
    alloc: ServerAllocation,
    same_acc: bool,
    free: dict[str, int],
) -> str:
    """Why this pod-template change would deadlock (empty: it can roll); takes its surge cards
    from ``free`` when it can. Old and new pods share a card type when the accelerator stays or
    the card-type node selector stays (e.g. A100 -> 2xA100)."""
    same_type = same_acc or (
        target.node_label_key is not None
        and node_selector.get(target.node_label_key) == target.node_label_value
    )
    kind = alloc.accelerator_type
    surge = surge_replicas(ref, deployment, target.replicas)
    if not same_type or surge <= 0 or kind not in free:
        return ""
    held_above = max(0, target.replicas - alloc.num_replicas) * alloc.cards_per_replica
    need = surge * alloc.cards_per_replica
    left = free[kind] - held_above
    if need <= left:
        free[kind] -= need
        return ""
    return (
        f"rollout would deadlock: maxSurge {surge} pod(s) need {need} free {kind} card(s), {max(left, 0)} "
        "free; pod-template change deferred (set strategy.rollingUpdate maxSurge 0, maxUnavailable 1 "
        "to roll in place)"
    )


def plan_updates(  # noqa: PLR0917 - the documented signature
    solution: Solution,
    servers: Sequence[ManagedServer],
    placement: Sequence[Placement],
    deployments_now: Deployments,
    settings: ActuatorSettings,
    now_s: float,
    target_problems: Mapping[TargetRef, str] | None = None,
) -> list[ServerAction]:
    """One action per managed server (sorted by name), plus a skip for decisions with no server.
    ``target_problems``: why a kind cannot be read or patched at all (CRD not installed, no /scale
    subresource); its servers are kept as they are with that reason."""
    decisions = solution.by_server()
    free = free_cards(solution)
    places: dict[str, ResolvedPlacement | None] = {}  # per card type: the same for every server

    def place_of(card_type: str) -> ResolvedPlacement | None:
        if card_type not in places:
            places[card_type] = resolve_placement(card_type, placement, settings)
        return places[card_type]

    changed_at = format_timestamp(now_s)
    names = Counter(s.server for s in servers)
    actions: list[ServerAction] = []
    for server in sorted(servers, key=lambda s: (s.server, s.namespace, s.deployment)):
        if names[server.server] > 1:
            actions.append(
                _skip(
                    server,
                    f"server name {server.server!r} is used by {names[server.server]} "
                    "Deployments; set distinct inferno.server.name labels",
                )
            )
            continue
        deployment = deployments_now.get((server.namespace, server.deployment))
        action = _plan_one(
            server,
            decision=decisions.get(server.server),
            place_of=place_of,
            changed_at=changed_at,
            deployment=deployment,
            settings=settings,
            free=free,
            target_problem=(target_problems or {}).get(server.target),
        )
        if server.hold is not None:  # the hold shaped the plan: it comes first, and its Event follows
            update = {"hold": server.hold, "reasons": [server.hold.text, *action.reasons]}
            action = action.model_copy(update=update)
        actions.append(action)
    for name in sorted(decisions.keys() - names.keys()):
        actions.append(
            ServerAction(
                server=name,
                kind=ActionKind.SKIP,
                outcome=Outcome.SKIPPED,
                reasons=["in the solution but no managed Deployment was collected"],
            )
        )
    return actions
