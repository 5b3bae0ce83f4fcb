"""Type-change controls of the sizing stage: the hold-down and the hysteresis, which decide which
accelerators a running server is offered, and the cards each server may count on (``cards_left``).

Caller: :func:`optimizer.candidates.build_problem_with_context`, after every option is sized and
before the solver sees the candidates. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

from contract.data.system import SystemData
from contract.data.workload import ServerSpec
from contract.steps import Step
from optimizer.options import ServerContext, SizedOption, replicas_for


def type_change_hold_down(  # noqa: PLR0917 - the pipeline's shared arguments
    servers: list[ServerSpec],
    contexts: list[ServerContext],
    sized_options: list[SizedOption],
    cards_left: Sequence[Mapping[str, int]] | None,
    hold_down_s: float,
    margin: float = 0.0,
) -> tuple[list[SizedOption], list[ServerContext]]:
    """Type-change hold-down: a server that changed accelerator less than ``hold_s`` seconds ago is
    offered only its current accelerator, unless that one cannot serve its load at all.

    Why: replica counts are integers, so the costs of two accelerators cross the switching
    threshold back and forth as the load steps (in what-if runs, G2 <-> 4xA100 on successive
    steps), and every move rolls every pod. "Cannot serve at all" means: no feasible sizing
    there, or the replicas serving the whole demand exceed ``maxNumReplicas``, or their cards
    exceed the cards left to it (``cards_left``, see :func:`cards_left`; None = unlimited). Then
    every accelerator stays on offer when one of them can serve the whole load; when none can,
    those that serve more than ``(1 + margin)`` x what the current one can with the cards left
    (:func:`_servable_rps`) stay on offer, and the reasons say why. E.g. moved to A100 200 s ago,
    hold 600 s, A100 feasible with 3 replicas of 64 cards: only A100 is offered.

    Why the second rule: without it, a partial server is held on the type it is pushed to, however
    little it serves there. Benchmark 4: a spike pushes Free off MI300X onto 8 H100 (~270
    req/min); its backlog makes the demand ~1,300 req/min, which no type can serve in full, so
    it would stay on H100 for the whole 30-minute hold, its queue growing, after the higher classes
    have shrunk and left it 5 MI300X (~410 req/min, at about half the cost). The margin (the
    hysteresis's) keeps a held server from rolling its pods for a few percent more.
    """
    if hold_down_s <= 0:
        return sized_options, contexts
    by_server = _by_server(sized_options)
    dropped: set[int] = set()
    contexts = list(contexts)
    for i, server in enumerate(servers):
        age_s, current = server.accelerator_age_s, server.current_alloc.accelerator
        if age_s is None or age_s >= hold_down_s or not current:
            continue
        mine = by_server.get(i, [])
        if all(p.option.entry.acc == current for p in mine):
            continue  # nothing else on offer: nothing to hold
        here = next((p for p in mine if p.option.entry.acc == current), None)
        left = None if cards_left is None else cards_left[i]
        why_not = _cannot_serve(server, here, left)
        others = [p for p in mine if p.option.entry.acc != current]
        head = f"type-change hold-down: accelerator changed {age_s:.0f}s ago (< {hold_down_s:g}s)"
        if why_not and any(not _cannot_serve(server, p, left) for p in others):
            note = f"{head}, but {current} cannot serve the load ({why_not}): other accelerators offered"
        else:
            kept = []
            if why_not:  # none serves it all: offer only the types that serve clearly more
                here_rps = 0.0 if here is None else _servable_rps(server, here, left)
                bar_rps = here_rps * (1.0 + margin)
                kept = [p for p in others if _servable_rps(server, p, left) > bar_rps + 1e-9]
            if kept:
                names = ", ".join(sorted({p.option.entry.acc for p in kept}))
                note = (
                    f"{head}, but {current} cannot serve the load ({why_not}) and no accelerator can: "
                    f"other accelerators offered that serve more than {bar_rps * 60:.4g} req/min with the "
                    f"cards left ({current}: {here_rps * 60:.4g} x (1 + {margin:g})): {names}"
                )
            else:
                if why_not:  # a move would not help: no other accelerator serves clearly more
                    head += (
                        f"; {current} cannot serve the load ({why_not}) but no other accelerator "
                        f"can, nor serves more than (1 + {margin:g}) x what it serves"
                    )
                note = f"{head}: stays on {current}; other accelerators not offered"
            dropped.update(id(p) for p in others if p not in kept)
        contexts[i] = replace(contexts[i], reasons=(*contexts[i].reasons, Step.note("size", note)))
    return [p for p in sized_options if id(p) not in dropped], contexts


def robust_type_changes(  # noqa: PLR0917 - the pipeline's shared arguments
    servers: list[ServerSpec],
    contexts: list[ServerContext],
    sized_options: list[SizedOption],
    cards_left: Sequence[Mapping[str, int]] | None,
    margin: float,
    headroom: float = 0.0,
) -> tuple[list[SizedOption], list[ServerContext]]:
    """Type-change hysteresis: another accelerator is offered only when it is no dearer than the
    current one across the demand band ``demand x (1 -/+ margin)``, not just at the measured point.

    Why: replica counts are integers, so near a boundary the cheapest type flips with the load's
    noise. In benchmark 4 (24 h), with the hold-down alone, Premium moves 1 MI300X <-> 4 G2 every
    time the hold-down runs out (38 moves a day): at 83 req/min 1 MI300X (65/h) beats 4 G2 (92/h),
    at 102 req/min 5 G2 (115/h) beats 2 MI300X (130/h). Every move rolls every pod, and while the
    new pods start Kubernetes keeps only the new replica count of old pods, so a move to fewer,
    larger replicas drops capacity for a start-up time. A move that pays off only at the measured
    point is not worth that. E.g. margin 0.25 at 83 req/min: MI300X is also compared at 62 and 104
    req/min, where 2 MI300X (130/h) cost more than 5 G2 (115/h): not offered. Cost at a demand =
    replicas serving it x cost per replica. Nor is a type whose cards left to this server
    (:func:`cards_left`) would not hold the band's top: otherwise Bronze moves MI300X -> G2 on the
    cards Premium leaves, and back a cycle later when Premium grows.
    Exempt, as for the hold-down: a server whose current accelerator cannot serve the load at all.
    """
    if margin <= 0:
        return sized_options, contexts
    by_server = _by_server(sized_options)
    dropped: set[int] = set()
    contexts = list(contexts)
    for i, server in enumerate(servers):
        current, mine = server.current_alloc.accelerator, by_server.get(i, [])
        here = next((p for p in mine if p.option.entry.acc == current), None)
        demand_rps = contexts[i].demand_rps * (1.0 + headroom)
        left = None if cards_left is None else cards_left[i]
        if here is None or demand_rps <= 0 or _cannot_serve(server, here, left):
            continue
        band = (demand_rps * (1.0 - margin), demand_rps * (1.0 + margin))
        staying = [_cost_at(server, here, d) for d in band]
        others = [p for p in mine if p is not here]
        dearer = [
            p
            for p in others
            if any(_cost_at(server, p, d) > c + 1e-9 for d, c in zip(band, staying, strict=True))
        ]
        cramped = [
            p
            for p in others
            if p not in dearer
            and left is not None
            and _cards_at(server, p, band[1]) > left.get(p.option.spec.type, 0)
        ]
        if not dearer and not cramped:
            continue
        dropped.update(id(p) for p in (*dearer, *cramped))
        rpm = f"{band[0] * 60:.4g}-{band[1] * 60:.4g} req/min"
        why = []
        if dearer:
            names = ", ".join(sorted({p.option.entry.acc for p in dearer}))
            why.append(f"{names} not offered: dearer than {current} somewhere in {rpm}")
        if cramped:
            names = ", ".join(sorted({p.option.entry.acc for p in cramped}))
            why.append(f"{names} not offered: too few cards left there for {band[1] * 60:.4g} req/min")
        note = "type-change hysteresis: " + "; ".join(why)
        contexts[i] = replace(contexts[i], reasons=(*contexts[i].reasons, Step.note("size", note)))
    return [p for p in sized_options if id(p) not in dropped], contexts


def _by_server(sized_options: list[SizedOption]) -> dict[int, list[SizedOption]]:
    by_server: dict[int, list[SizedOption]] = {}
    for sized_option in sized_options:
        by_server.setdefault(sized_option.option.server, []).append(sized_option)
    return by_server


def _cost_at(server: ServerSpec, sized_option: SizedOption, demand_rps: float) -> float:
    """Cost per hour of the replicas serving ``demand_rps`` with this plan's rate per replica."""
    return replicas_for(server, demand_rps, sized_option.result.max_rate_rps) * sized_option.cost_per_replica


def _cards_at(server: ServerSpec, sized_option: SizedOption, demand_rps: float) -> int:
    """Cards of the plan's type the replicas serving ``demand_rps`` take."""
    return replicas_for(server, demand_rps, sized_option.result.max_rate_rps) * sized_option.cards_per_replica


def running_cards(system: SystemData) -> dict[str, tuple[str, int]]:
    """(card type, cards per replica) of each running server's current accelerator, where the data
    knows them: ``accCount * multiplicity`` of the model's entry on it. E.g. 2 x ``4xA100`` of
    ``llama_70b`` (accCount 4, multiplicity 1): ``("A100", 4)`` per replica. The one derivation of
    the cards a running server holds, for :func:`cards_left` and the solver's reservations
    (``AllocationProblem.running_cards``): a server whose model has no entry on its accelerator
    holds no known cards in either."""
    accelerators = system.accelerator_by_name()
    entries = {(m.name, m.acc): m for m in system.models.models}
    out: dict[str, tuple[str, int]] = {}
    for server in system.servers.servers:
        current = server.current_alloc
        spec = accelerators.get(current.accelerator)
        entry = entries.get((server.model, current.accelerator))
        if current.num_replicas > 0 and spec is not None and entry is not None:
            out[server.name] = (spec.type, entry.acc_count * spec.multiplicity)
    return out


def cards_left(system: SystemData, contexts: Sequence[ServerContext]) -> list[dict[str, int]]:
    """Per server, the cards of each type not held by the *other* servers that come first or tie
    (priority number <= its own), as they run now (``currentAlloc``, cards per
    :func:`running_cards`): what a hold-down or the hysteresis may count on before solving. E.g. 8
    MI300X cards, Premium (priority 1) runs 2 and Bronze (2) runs 1: Premium may count on 8,
    Bronze on 6, Free (3) on 5.

    Why not the whole capacity: counted against it, a Free server held on MI300X while Premium and
    Bronze hold most of the cards gets a partial allocation there (benchmark 4: a backlog for an
    hour after a spike) although other types have cards for all of it. Sums per priority level, not
    per pair of servers: linear in the servers."""
    per_replica = running_cards(system)
    held: list[tuple[str, int]] = []  # (type, cards) per server, in input order
    by_level: dict[int, Counter[str]] = {}
    for server, context in zip(system.servers.servers, contexts, strict=True):
        kind, per = per_replica.get(server.name, ("", 0))
        cards = server.current_alloc.num_replicas * per
        held.append((kind, cards))
        by_level.setdefault(context.priority, Counter())[kind] += cards
    upto: dict[int, Counter[str]] = {}
    running: Counter[str] = Counter()
    for priority in sorted(by_level):
        running = running + by_level[priority]
        upto[priority] = running
    total = system.capacity.cards_by_type()
    out: list[dict[str, int]] = []
    for (kind, cards), context in zip(held, contexts, strict=True):
        taken = upto[context.priority]
        left = {t: n - taken[t] for t, n in total.items()}
        if kind in left:
            left[kind] += cards  # its own cards are not taken from it
        out.append(left)
    return out


def _servable_rps(
    server: ServerSpec, sized_option: SizedOption, cards_left: Mapping[str, int] | None
) -> float:
    """The rate (req/s) a plan serves within its targets with at most its own replicas, the
    server's ``maxNumReplicas`` and the cards left to it: ``replicas x max rate per replica``.
    E.g. 8 H100 cards left, 1 card and 0.55 req/s per replica, 23 replicas wanted: 4.4 req/s."""
    replicas = sized_option.replicas
    if server.max_num_replicas > 0:
        replicas = min(replicas, server.max_num_replicas)
    if cards_left is not None:
        have = max(cards_left.get(sized_option.option.spec.type, 0), 0)
        replicas = min(replicas, have // max(sized_option.cards_per_replica, 1))
    return replicas * sized_option.result.max_rate_rps


def _cannot_serve(
    server: ServerSpec, sized_option: SizedOption | None, cards_left: Mapping[str, int] | None
) -> str:
    """Why the current accelerator's plan cannot serve the load at all; empty when it can."""
    if sized_option is None:
        return "no feasible sizing there"
    if 0 < server.max_num_replicas < sized_option.replicas:
        return f"needs {sized_option.replicas} replicas > maxNumReplicas {server.max_num_replicas}"
    if cards_left is None:
        return ""
    kind = sized_option.option.spec.type
    cards = sized_option.replicas * sized_option.cards_per_replica
    have = max(cards_left.get(kind, 0), 0)
    if cards <= have:
        return ""
    return f"needs {cards} {kind} cards, {have} left by servers of equal or higher priority"
