"""Decide, per managed server, what to change: ``plan_updates`` (pure; time and history are inputs).

Called by :class:`actuator.service.Actuator` on every ``POST /update``; the executor then applies
the actions. A server is kept exactly as it is (``kind=skip``) when it is absent from the solution,
its data is not trusted, the solution marks it unallocated, its Deployment is missing or malformed,
it must keep its accelerator but the solution moves it, or the new card type has no placement.
Otherwise the target goes through :mod:`actuator.safety` and :mod:`actuator.patch`, and a
pod-template change through :mod:`actuator.rollout` (deferred when its surge pod could never start).

Stabilisation window and the optimizer: when the allocation carries ``demand_replicas``, the
controller gave the optimizer this window's floor (``floorReplicas``, from the ``window_holds``
of the previous answer) and the optimizer kept the held replicas on spare cards only; the actuator
then records ``demand_replicas`` (not the held count, which would prolong the hold forever) and
holds nothing itself. Without it (first cycle, or a caller that gives no floor) the window is
applied here as before.

Capacity: a running server the optimizer cannot serve comes as ``partial`` at its capacity floor
(``max(min_replicas, 1)`` on its current accelerator, whose cards the optimizer reserved before
allocating) and is scaled down to it like any partial allocation; ``unallocated`` now means the
server has no candidate on its accelerator, and the optimizer reserved all it runs, so keeping it
as it is matches what was counted. The optimizer's capacity steps are listed first
(:data:`contract.steps.CAPACITY_CODES`), so the Event says why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from actuator.deployment import DeploymentShapeError, valid_label_value, view_of
from actuator.patch import Target, build_patch
from actuator.placement import ResolvedPlacement, resolve_placement
from actuator.rollout import free_cards, surge_pods
from actuator.safety import HistoryKey, ScaleHistory, bounded_replicas, safe_replicas
from actuator.settings import ActuatorSettings
from contract.collect import ManagedServer, Placement
from contract.labels import ACCELERATOR, format_timestamp
from contract.solution import DecisionStatus, ServerAllocation, ServerDecision, Solution
from contract.steps import CAPACITY_CODES, Step
from contract.update import ActionKind, Outcome, ServerAction, WindowHold

Deployments = Mapping[HistoryKey, Mapping[str, Any]]


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
        kind=ActionKind.SKIP,
        outcome=Outcome.SKIPPED,
        replicas_now=replicas_now,
        reasons=[*reasons, "kept as is"],
    )


def _plan_one(
    server: ManagedServer,
    *,
    decision: ServerDecision | None,
    place_of: Callable[[str], ResolvedPlacement | None],
    changed_at: str,
    deployment: Mapping[str, Any] | None,
    settings: ActuatorSettings,
    now_s: float,
    history: ScaleHistory,
    free: dict[str, int] | None = None,
) -> ServerAction:
    if not server.trusted:  # first: untrusted servers are never in the solution, and this is why
        return _skip(server, f"data not trusted (load source: {server.load_source})", *server.notes[:3])
    if decision is None:
        return _skip(server, "absent from the solution")
    alloc = decision.allocation
    if decision.status is DecisionStatus.UNALLOCATED or alloc is None:
        return _skip(server, f"solution: {decision.status.value}", *_capacity_first(decision.steps))
    if deployment is None:
        return _skip(server, f"Deployment {server.namespace}/{server.deployment} not found")
    try:
        view = view_of(deployment, settings.container_name)
    except DeploymentShapeError as exc:
        return _skip(server, f"Deployment not manageable: {exc}")
    current_acc = view.labels.get(ACCELERATOR, "")
    same_acc = current_acc == alloc.accelerator
    if server.keep_accelerator and current_acc and not same_acc:
        return _skip(
            server,
            f"keep-accelerator is set but the solution moves {current_acc} -> {alloc.accelerator}",
            replicas_now=view.replicas,
        )
    if server.max_replicas and server.min_replicas > server.max_replicas:
        return _skip(
            server,
            f"min_replicas {server.min_replicas} > max_replicas {server.max_replicas}",
            replicas_now=view.replicas,
        )
    if not valid_label_value(alloc.accelerator):
        return _skip(
            server,
            f"accelerator name {alloc.accelerator!r} is not a valid label value",
            replicas_now=view.replicas,
        )
    place = place_of(alloc.accelerator_type)
    notes: list[str] = []
    if place is None:
        if settings.manage_node_selector and not same_acc:
            return _skip(
                server,
                f"no placement for card type {alloc.accelerator_type!r}: cannot place {alloc.accelerator}",
                replicas_now=view.replicas,
            )
        notes.append(
            f"no placement for card type {alloc.accelerator_type!r}: node selector and GPU "
            "resources left as they are"
        )
    elif not valid_label_value(place.node_label_value):
        return _skip(
            server,
            f"placement label value {place.node_label_value!r} is not a valid label value",
            replicas_now=view.replicas,
        )

    key = (server.namespace, server.deployment)
    window_s = settings.window_s_for(server.service_class)
    bounded, bound_reasons = bounded_replicas(alloc.num_replicas, server, settings)
    recorded, window_max = bounded, None
    if alloc.demand_replicas is not None:
        recorded, _ = bounded_replicas(alloc.demand_replicas, server, settings)
        if alloc.demand_replicas != alloc.num_replicas:
            bound_reasons.append(
                f"stabilisation window applied by the optimizer: {alloc.num_replicas} kept, "
                f"the load needs {alloc.demand_replicas}"
            )
    elif window_s > 0:
        window_max = history.max_in_window(key, alloc.accelerator, now_s, window_s)
    replicas, safety_reasons = safe_replicas(
        bounded,
        view.replicas,
        same_accelerator=same_acc,
        window_max=window_max,
        window_s=window_s,
        server=server,
        settings=settings,
    )
    target = Target(
        replicas=replicas,
        accelerator=alloc.accelerator,
        max_batch=alloc.max_batch,
        gpus_per_replica=alloc.cards_per_replica,
        node_label_key=place.node_label_key if place else None,
        node_label_value=place.node_label_value if place else None,
        gpu_resource=place.resource if place else None,
        foreign_selector_keys=place.foreign_selector_keys if place else frozenset(),
        foreign_resources=place.foreign_resources if place else frozenset(),
        changed_at=changed_at,
    )
    patch, changes, patch_notes = build_patch(view, target, settings)
    if any(c.rolls_pods for c in changes) and free is not None:
        blocked = _surge_blocked(
            deployment,
            node_selector=view.node_selector,
            target=target,
            alloc=alloc,
            same_acc=same_acc,
            free=free,
        )
        if blocked:
            if not same_acc:
                return _skip(server, blocked, replicas_now=view.replicas)
            patch, changes, patch_notes = build_patch(
                view, target, settings.model_copy(update={"manage_batch": False})
            )
            if any(c.rolls_pods for c in changes):
                return _skip(server, blocked, replicas_now=view.replicas)
            patch_notes = [*patch_notes, f"{blocked}: batch {alloc.max_batch} deferred, replicas set"]
    reasons = [
        f"solution: {decision.status.value} {alloc.num_replicas} x {alloc.accelerator} "
        f"(batch {alloc.max_batch}, {alloc.cards_per_replica} card(s)/replica, cost {alloc.cost:g}/h)",
        *(f"optimizer: {r}" for r in _capacity_first(decision.steps)),
        *bound_reasons,
        *safety_reasons,
        *notes,
        *patch_notes,
    ]
    if patch is None:
        reasons.append("already in place")
    else:
        reasons.extend(f"{c.field}: {c.old or '-'} -> {c.new}" for c in changes)
    return ServerAction(
        server=server.server,
        namespace=server.namespace,
        deployment=server.deployment,
        kind=ActionKind.UPDATE if patch else ActionKind.NOOP,
        outcome=Outcome.PLANNED if patch else Outcome.UNCHANGED,
        replicas_now=view.replicas,
        replicas_recommended=alloc.num_replicas,
        replicas_bounded=bounded,
        replicas_target=replicas,
        accelerator_target=alloc.accelerator,
        max_batch_target=alloc.max_batch,
        window_replicas=recorded,
        window_s=window_s,
        window_holds=_holds(
            history, key, now_s=now_s, window_s=window_s, accelerator=alloc.accelerator, recorded=recorded
        ),
        changes=changes,
        rolls_pods=any(c.rolls_pods for c in changes),
        patch=patch,
        reasons=reasons,
    )


def _surge_blocked(
    deployment: Mapping[str, Any],
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
    surge = surge_pods(deployment, target.replicas)
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


def _holds(
    history: ScaleHistory, key: HistoryKey, *, now_s: float, window_s: float, accelerator: str, recorded: int
) -> list[WindowHold] | None:
    """The window's entries once this cycle's recommendation is recorded (what
    :func:`record_recommendations` will store), for the controller's next floor."""
    if window_s <= 0:
        return []  # known: nothing held (None would read as "unknown" to the controller)
    entries = [*history.holds(key, now_s, window_s), (now_s + window_s, accelerator, recorded)]
    return [WindowHold(accelerator=acc, replicas=n, until_s=until) for until, acc, n in entries]


def plan_updates(  # noqa: PLR0917 - the documented signature
    solution: Solution,
    servers: Sequence[ManagedServer],
    placement: Sequence[Placement],
    deployments_now: Deployments,
    settings: ActuatorSettings,
    now_s: float,
    history: ScaleHistory,
) -> list[ServerAction]:
    """One action per managed server (sorted by name), plus a skip for decisions with no server."""
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
        actions.append(
            _plan_one(
                server,
                decision=decisions.get(server.server),
                place_of=place_of,
                changed_at=changed_at,
                deployment=deployment,
                settings=settings,
                now_s=now_s,
                history=history,
                free=free,
            )
        )
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


def seed_history(
    history: ScaleHistory, servers: Sequence[ManagedServer], now_s: float, settings: ActuatorSettings
) -> None:
    """A server the window knows nothing of (first cycle after a start or a leader change, or data
    back after a gap) enters it at its current count: a scale-down then waits one window after the
    autoscaler first sees it. Why: the first rates after a start are the least reliable (a rate
    window reaching back before a new pod's first sample reads low), and a new leader must not undo
    what the window held under the old one."""
    for server in servers:
        key = (server.namespace, server.deployment)
        window_s = settings.window_s_for(server.service_class)
        if (
            window_s > 0
            and server.current_replicas > 0
            and server.current_accelerator
            and not history.holds(key, now_s, window_s)
        ):
            history.record(key, now_s, server.current_accelerator, server.current_replicas, window_s)


def record_recommendations(history: ScaleHistory, actions: Sequence[ServerAction], now_s: float) -> None:
    """Remember this cycle's bounded recommendations for the stabilisation window (each server's:
    ``window_s`` of its action, set with ``window_replicas`` by the plan)."""
    for action in actions:
        if action.window_s and action.window_replicas is not None and action.deployment:
            history.record(
                action.key, now_s, action.accelerator_target, action.window_replicas, action.window_s
            )
