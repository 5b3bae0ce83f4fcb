"""Sizing stage: turn a :class:`SystemData` into the solver's :class:`AllocationProblem`.

Caller: ``optimizer.optimize`` (then a solver picks one candidate per server). Entry points:
``build_problem(system, settings) -> AllocationProblem`` and ``build_problem_with_context(system,
settings) -> (AllocationProblem, {server name: ServerContext})``, whose contexts add the targets,
the demand and tokens used, and server-level and per-candidate notes for the decision report.

Per server (one class+model pair):
- Class: looked up by ``service_class``; a class missing from serviceclass-data gets priority 100
  and no targets, and a class without targets for the model is sized without targets (both say so
  in the reasons). Without targets the replica runs up to ``throughput_rate_cap`` of saturation.
- Demand (req/s) = ``arrivalRate / 60``; with an ``slo-tps`` target, at least ``tps / out``.
- Tokens: ``avgOutTokens`` (or the older ``avgLength``); when the load has none, the largest
  ``atTokens`` of the model's entries is assumed (reason given); with neither, nothing is offered.
- Candidates: every accelerator with perf data for the model (only the current one when
  ``keepAccelerator``). Batch N from :mod:`optimizer.model.batch`; a server's ``maxBatchSize``
  fixes N under both batch policies. ``cost_per_replica = unit cost * accCount``,
  ``cards_per_replica = accCount * multiplicity``.
- Replicas = ``max(ceil(demand / max rate), minNumReplicas)``; zero demand gives
  ``minNumReplicas`` (0 is allowed). ITL, TTFT and utilisation are predicted at the actual load
  ``demand / replicas``, not at the max rate.
- ``maxNumReplicas`` (> 0) is left to the solver, as the solver contract wants: a candidate always
  carries the replicas that serve the *whole* demand (its predictions are for that allocation), and
  one needing more than the bound gets a note; the solver offers it at most ``max_replicas``, as a
  partial allocation under the saturation policy (``optimizer.solver.options``).
- Sorted cheapest first (then unit cost, name); each rejected accelerator is in
  ``ServerProblem.infeasible`` as ``"<accelerator>: <reason>"``. ``max_replicas`` 0 means no bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from optimizer.data.catalog import AcceleratorSpec, ModelPerfEntry
from optimizer.data.system import SystemData
from optimizer.data.workload import LOWEST_PRIORITY, ServerSpec, ServiceClassSpec
from optimizer.model.batch import batch_search_requests, default_batch, pick_optimal
from optimizer.model.predict import predict_requests
from optimizer.model.service_time import ServiceModel, service_model
from optimizer.model.sizing import SizingRequest, SizingResult, Targets, size_rates
from optimizer.settings import OptimizerSettings
from optimizer.solver.problem import AllocationProblem, Candidate, ServerProblem


@dataclass(frozen=True, slots=True)
class ServerContext:
    """What the decision report needs beyond the solver's :class:`ServerProblem`."""

    name: str
    service_class: str
    model: str
    priority: int
    demand_rps: float
    in_tokens: float
    out_tokens: float
    targets: Targets
    reasons: tuple[str, ...] = ()
    """Server-level notes: missing class or targets, assumed tokens, throughput demand."""
    candidate_notes: Mapping[str, str] = field(default_factory=dict)
    """Per offered accelerator: batch, what limits its rate, and whether it is capped."""


@dataclass(frozen=True, slots=True)
class _Option:
    """One (server, accelerator) pair being sized."""

    server: int
    entry: ModelPerfEntry
    spec: AcceleratorSpec
    service: ServiceModel
    requests: tuple[SizingRequest, ...]
    """One request (the batch) or, for the optimal policy, one per N = 1..ceiling."""
    batch_note: str = ""
    """Set when ``max_batch_cap`` clamped the batch."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """A feasible (server, accelerator) pair with its batch, sizing and replica count."""

    option: _Option
    request: SizingRequest
    result: SizingResult
    replicas: int

    @property
    def cost_per_replica(self) -> float:
        return self.option.spec.cost * self.option.entry.acc_count

    @property
    def cards_per_replica(self) -> int:
        return self.option.entry.acc_count * self.option.spec.multiplicity


def build_problem(system: SystemData, settings: OptimizerSettings) -> AllocationProblem:
    """Size every server on every accelerator it may use; see the module docstring for the rules."""
    return build_problem_with_context(system, settings)[0]


def build_problem_with_context(
    system: SystemData, settings: OptimizerSettings
) -> tuple[AllocationProblem, dict[str, ServerContext]]:
    """:func:`build_problem`, plus one :class:`ServerContext` per server (by name)."""
    classes = system.class_by_name()
    perf = system.perf_by_model()
    accelerators = system.accelerator_by_name()
    servers = system.servers.servers
    contexts: list[ServerContext] = []
    options: list[_Option] = []
    rejected: list[list[str]] = [[] for _ in servers]
    models: dict[tuple[object, float, float], ServiceModel | str] = {}
    perf_of = {id(e): e.perf for e in system.models.models}  # .perf builds a new object per call
    requests_of: dict[tuple[object, ...], tuple[SizingRequest, ...]] = {}
    for i, server in enumerate(servers):
        context = _context(server, classes.get(server.service_class), perf.get(server.model, []))
        contexts.append(context)
        for entry in _entries(server, perf.get(server.model, []), rejected[i]):
            key = (perf_of[id(entry)], context.in_tokens, context.out_tokens)
            if key not in models:
                try:
                    models[key] = service_model(perf_of[id(entry)], context.in_tokens, context.out_tokens)
                except ValueError as exc:  # no output tokens, or a zero service time
                    models[key] = str(exc)
            model = models[key]
            if isinstance(model, str):
                rejected[i].append(f"{entry.acc}: {model}")
                continue
            batch, batch_note = _batch(server, entry, context, settings)
            asked = (id(entry), key, context.targets, batch, server.max_batch_size > 0)
            if asked not in requests_of:  # equal requests share objects: cheap to dedupe later
                requests_of[asked] = _requests(server, model, batch, context, settings)
            requests = requests_of[asked]
            options.append(_Option(i, entry, accelerators[entry.acc], model, requests, batch_note))
    results = iter(size_rates([r for o in options for r in o.requests]))
    sized = [_pick([next(results) for _ in o.requests], o.requests) for o in options]
    plans = _plans(servers, contexts, options, sized, rejected, headroom=settings.load_headroom)
    spec = system.optimizer.optimizer
    left = None if spec.unlimited else cards_left(system, contexts)
    plans, contexts = hold_type_changes(
        servers, contexts, plans, left, settings.type_change_hold_s, settings.type_change_margin
    )
    plans, contexts = robust_type_changes(
        servers, contexts, plans, left, settings.type_change_margin, settings.load_headroom
    )
    problems, contexts = _server_problems(servers, contexts, plans, rejected)
    problem = AllocationProblem(
        servers=problems,
        capacity_cards=system.capacity.cards_by_type(),
        unlimited=spec.unlimited,
        saturation_policy=spec.saturation_policy,
        switching_threshold=spec.switching_threshold,
        time_limit_s=settings.time_limit_s,
        seed=settings.seed,
    )
    return problem, {c.name: c for c in contexts}


def _context(
    server: ServerSpec, spec: ServiceClassSpec | None, entries: list[ModelPerfEntry]
) -> ServerContext:
    reasons: list[str] = []
    priority = LOWEST_PRIORITY
    targets = Targets()
    if spec is None:
        reasons.append(f"class {server.service_class!r} not in serviceclass-data: priority 100, no targets")
    else:
        priority = spec.priority
        targets = Targets.of(spec.target_for(server.model))
        if not targets.has_latency and targets.tps <= 0:
            reasons.append(f"class {spec.name!r} sets no targets for model {server.model!r}")
    if not (targets.has_latency or targets.tps > 0):
        reasons.append("no targets: replicas run up to the throughput cap of saturation")
    load = server.load
    out_tokens = load.out_tokens
    if out_tokens <= 0:
        out_tokens = float(max((e.at_tokens for e in entries), default=0))
        note = f"assumed atTokens = {out_tokens:g}" if out_tokens > 0 else "no atTokens either: nothing sized"
        reasons.append(f"load gives no output tokens: {note}")
    demand = load.arrival_rate_rpm / 60.0
    if targets.tps > 0 and out_tokens > 0 and targets.tps / out_tokens > demand:
        demand = targets.tps / out_tokens
        reasons.append(f"slo-tps {targets.tps:g} tokens/s sets the demand to {demand:.4g} req/s")
    if demand == 0:
        reasons.append(f"zero demand: minNumReplicas = {server.min_num_replicas}")
    return ServerContext(
        name=server.name,
        service_class=server.service_class,
        model=server.model,
        priority=priority,
        demand_rps=demand,
        in_tokens=load.in_tokens,
        out_tokens=out_tokens,
        targets=targets,
        reasons=tuple(reasons),
    )


def _entries(server: ServerSpec, entries: list[ModelPerfEntry], rejected: list[str]) -> list[ModelPerfEntry]:
    current = server.current_alloc.accelerator
    if not server.keep_accelerator or not current:
        return entries
    kept = [e for e in entries if e.acc == current]
    if not kept:
        rejected.append(f"{current}: keepAccelerator, but model {server.model!r} has no perf data on it")
    return kept


def _batch(
    server: ServerSpec, entry: ModelPerfEntry, context: ServerContext, settings: OptimizerSettings
) -> tuple[int, str]:
    """The batch to size (the ceiling under the optimal policy) and a note when the cap clamped it.

    Default rule, then the running batch if close (:func:`_sticky_batch`), then at most
    ``max_batch_cap``: ``floor(maxBatchSize * atTokens / out)`` is a KV-cache budget, not what
    vLLM runs (``--max-num-seqs`` defaults to 256), and short outputs make it huge. E.g. A100
    maxBatchSize 64 at 512 tokens, out 10 tokens: 3276 -> 256. A server's own ``maxBatchSize``
    is the user's choice and is not capped.
    """
    batch = default_batch(entry.max_batch_size, entry.at_tokens, context.out_tokens, server.max_batch_size)
    batch = _sticky_batch(server, entry, batch, settings.batch_tolerance)
    cap = settings.max_batch_cap
    if cap <= 0 or server.max_batch_size > 0 or batch <= cap:
        return batch, ""
    return cap, f"batch {batch} capped at {cap} (max_batch_cap, vLLM --max-num-seqs)"


def _requests(
    server: ServerSpec,
    model: ServiceModel,
    batch: int,
    context: ServerContext,
    settings: OptimizerSettings,
) -> tuple[SizingRequest, ...]:
    factor, cap = settings.max_queue_factor, settings.throughput_rate_cap
    if settings.batch_policy == "optimal" and server.max_batch_size <= 0:
        return tuple(batch_search_requests(model, batch, factor, context.targets, cap))
    return (SizingRequest(model, batch, factor * batch, context.targets, cap),)


def _sticky_batch(server: ServerSpec, entry: ModelPerfEntry, batch: int, tolerance: float) -> int:
    """Keep the batch the server runs when it is within ``tolerance`` of the computed one.

    A batch change rolls every pod of the Deployment, while the computed batch follows the
    measured mean output length, which is noisy from cycle to cycle (what-if runs showed 14 -> 17
    -> 20 -> 17 under steady load). Sizing with the batch actually running keeps the prediction
    true to the server and the template still. Applies only on the current accelerator and when
    no ``maxBatchSize`` override fixes the batch. E.g. computed 20, running 17, tolerance 0.25:
    |17 - 20| <= 5, so 17 is kept and the replicas are sized for 17.
    """
    current = server.current_alloc.max_batch
    if tolerance <= 0 or current <= 0 or server.max_batch_size > 0:
        return batch
    if entry.acc != server.current_alloc.accelerator:
        return batch
    return current if abs(current - batch) <= tolerance * batch else batch


def _pick(
    results: list[SizingResult], requests: tuple[SizingRequest, ...]
) -> tuple[SizingRequest, SizingResult]:
    index = pick_optimal(results) if len(results) > 1 else 0
    return requests[index], results[index]


def _replicas(server: ServerSpec, demand: float, rate: float) -> int:
    """Replicas serving the whole demand: ``max(ceil(demand/rate), minNumReplicas)``, at least one
    when there is demand; ``maxNumReplicas`` is the solver's to apply."""
    if demand <= 0:
        return server.min_num_replicas
    return max(math.ceil(demand / rate - 1e-9), server.min_num_replicas, 1)


def _plans(
    servers: list[ServerSpec],
    contexts: list[ServerContext],
    options: list[_Option],
    sized: list[tuple[SizingRequest, SizingResult]],
    rejected: list[list[str]],
    *,
    headroom: float = 0.0,
) -> list[_Plan]:
    """Feasible options with their replica counts, sized for ``demand * (1 + headroom)``;
    infeasible ones go to ``rejected``."""
    plans: list[_Plan] = []
    for option, (request, result) in zip(options, sized, strict=True):
        if not result.feasible:
            rejected[option.server].append(f"{option.entry.acc}: batch {request.batch}: {result.reason}")
            continue
        demand_rps = contexts[option.server].demand_rps * (1.0 + headroom)
        replicas = _replicas(servers[option.server], demand_rps, result.max_rate_rps)
        plans.append(_Plan(option, request, result, replicas))
    return plans


def _floor(server: ServerSpec, accelerator: str) -> int:
    """The stabilisation floor on the server's current accelerator (0 elsewhere or when not given),
    never above ``maxNumReplicas``: the window cannot hold more than the bound allows."""
    floor = server.floor_replicas or 0
    if accelerator != server.current_alloc.accelerator:
        return 0
    return min(floor, server.max_num_replicas) if server.max_num_replicas > 0 else floor


def hold_type_changes(  # noqa: PLR0917 - the pipeline's shared arguments
    servers: list[ServerSpec],
    contexts: list[ServerContext],
    plans: list[_Plan],
    cards_left: Sequence[Mapping[str, int]] | None,
    hold_s: float,
    margin: float = 0.0,
) -> tuple[list[_Plan], list[ServerContext]]:
    """Type-change hold-down: a server that changed accelerator less than ``hold_s`` seconds ago is
    offered only its current accelerator, unless that one cannot serve its load at all.

    Why: replica counts are integers, so the costs of two accelerators cross the switching
    threshold back and forth as the load steps (what-if runs showed G2 <-> 4xA100 on successive
    steps), and every move rolls every pod. "Cannot serve at all" means: no feasible sizing
    there, or the replicas serving the whole demand exceed ``maxNumReplicas``, or their cards
    exceed the cards left to it (``cards_left``, see :func:`cards_left`; None = unlimited). Then
    every accelerator stays on offer when one of them can serve the whole load; when none can,
    those that serve more than ``(1 + margin)`` x what the current one can with the cards left
    (:func:`_servable_rps`) stay on offer, and the reasons say why. E.g. moved to A100 200 s ago,
    hold 600 s, A100 feasible with 3 replicas of 64 cards: only A100 is offered.

    Why the second rule: a partial server was held on the type it had been pushed to, however
    little it served there. Benchmark 4: a spike pushed Free off MI300X onto 8 H100 (~270
    req/min); its backlog made the demand ~1,300 req/min, which no type could serve in full, so
    it stayed on H100 for the whole 30-minute hold, its queue growing, after the higher classes
    had shrunk and left it 5 MI300X (~410 req/min, at about half the cost). The margin (the
    hysteresis's) keeps a held server from rolling its pods for a few percent more.
    """
    if hold_s <= 0:
        return plans, contexts
    by_server = _plans_by_server(plans)
    dropped: set[int] = set()
    contexts = list(contexts)
    for i, server in enumerate(servers):
        age_s, current = server.accelerator_age_s, server.current_alloc.accelerator
        if age_s is None or age_s >= hold_s or not current:
            continue
        mine = by_server.get(i, [])
        if all(p.option.entry.acc == current for p in mine):
            continue  # nothing else on offer: nothing to hold
        here = next((p for p in mine if p.option.entry.acc == current), None)
        left = None if cards_left is None else cards_left[i]
        why_not = _cannot_serve(server, here, left)
        others = [p for p in mine if p.option.entry.acc != current]
        head = f"type-change hold-down: accelerator changed {age_s:.0f}s ago (< {hold_s:g}s)"
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
        contexts[i] = replace(contexts[i], reasons=(*contexts[i].reasons, note))
    return [p for p in plans if id(p) not in dropped], contexts


def robust_type_changes(  # noqa: PLR0917 - the pipeline's shared arguments
    servers: list[ServerSpec],
    contexts: list[ServerContext],
    plans: list[_Plan],
    cards_left: Sequence[Mapping[str, int]] | None,
    margin: float,
    headroom: float = 0.0,
) -> tuple[list[_Plan], list[ServerContext]]:
    """Type-change hysteresis: another accelerator is offered only when it is no dearer than the
    current one across the demand band ``demand x (1 -/+ margin)``, not just at the measured point.

    Why: replica counts are integers, so near a boundary the cheapest type flips with the load's
    noise. Benchmark 4 (24 h) saw Premium move 1 MI300X <-> 4 G2 every time the hold-down ran out
    (38 moves a day): at 83 req/min 1 MI300X (65/h) beats 4 G2 (92/h), at 102 req/min 5 G2 (115/h)
    beat 2 MI300X (130/h). Every move rolls every pod, and while the new pods start Kubernetes keeps
    only the new replica count of old pods, so a move to fewer, larger replicas drops capacity for a
    start-up time. A move that pays off only at the measured point is not worth that. E.g. margin
    0.25 at 83 req/min: MI300X is also compared at 62 and 104 req/min, where 2 MI300X (130/h) cost
    more than 5 G2 (115/h): not offered. Cost at a demand = replicas serving it x cost per replica.
    Nor is a type whose cards left to this server (:func:`cards_left`) would not hold the band's top:
    Bronze moved MI300X -> G2 on the cards Premium left, and back a cycle later when Premium grew.
    Exempt, as for the hold-down: a server whose current accelerator cannot serve the load at all.
    """
    if margin <= 0:
        return plans, contexts
    by_server = _plans_by_server(plans)
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
        contexts[i] = replace(contexts[i], reasons=(*contexts[i].reasons, note))
    return [p for p in plans if id(p) not in dropped], contexts


def _plans_by_server(plans: list[_Plan]) -> dict[int, list[_Plan]]:
    by_server: dict[int, list[_Plan]] = {}
    for plan in plans:
        by_server.setdefault(plan.option.server, []).append(plan)
    return by_server


def _cost_at(server: ServerSpec, plan: _Plan, demand_rps: float) -> float:
    """Cost per hour of the replicas serving ``demand_rps`` with this plan's rate per replica."""
    return _replicas(server, demand_rps, plan.result.max_rate_rps) * plan.cost_per_replica


def _cards_at(server: ServerSpec, plan: _Plan, demand_rps: float) -> int:
    """Cards of the plan's type the replicas serving ``demand_rps`` take."""
    return _replicas(server, demand_rps, plan.result.max_rate_rps) * plan.cards_per_replica


def cards_left(system: SystemData, contexts: Sequence[ServerContext]) -> list[dict[str, int]]:
    """Per server, the cards of each type not held by the *other* servers that come first or tie
    (priority number <= its own), as they run now (``currentAlloc``): what a hold-down or the
    hysteresis may count on before solving. E.g. 8 MI300X cards, Premium (priority 1) runs 2 and
    Bronze (2) runs 1: Premium may count on 8, Bronze on 6, Free (3) on 5.

    Why not the whole capacity: a Free server held on MI300X while Premium and Bronze hold most of
    the cards got a partial allocation there (benchmark 4: a backlog for an hour after a spike)
    although other types had cards for all of it."""
    accelerators = system.accelerator_by_name()
    perf = system.perf_by_model()
    servers = system.servers.servers
    held: list[tuple[int, str, int]] = []  # (priority, type, cards)
    for server, context in zip(servers, contexts, strict=True):
        current = server.current_alloc
        spec = accelerators.get(current.accelerator)
        entry = next((e for e in perf.get(server.model, []) if e.acc == current.accelerator), None)
        cards = current.num_replicas * (entry.acc_count if entry else 1) * spec.multiplicity if spec else 0
        held.append((context.priority, spec.type if spec else "", cards))
    total = system.capacity.cards_by_type()
    out: list[dict[str, int]] = []
    for i, context in enumerate(contexts):
        left = dict(total)
        for j, (priority, card_type, cards) in enumerate(held):
            if j != i and priority <= context.priority and card_type in left:
                left[card_type] -= cards
        out.append(left)
    return out


def _servable_rps(server: ServerSpec, plan: _Plan, cards_left: Mapping[str, int] | None) -> float:
    """The rate (req/s) a plan serves within its targets with at most its own replicas, the
    server's ``maxNumReplicas`` and the cards left to it: ``replicas x max rate per replica``.
    E.g. 8 H100 cards left, 1 card and 0.55 req/s per replica, 23 replicas wanted: 4.4 req/s."""
    replicas = plan.replicas
    if server.max_num_replicas > 0:
        replicas = min(replicas, server.max_num_replicas)
    if cards_left is not None:
        have = max(cards_left.get(plan.option.spec.type, 0), 0)
        replicas = min(replicas, have // max(plan.cards_per_replica, 1))
    return replicas * plan.result.max_rate_rps


def _cannot_serve(server: ServerSpec, plan: _Plan | None, cards_left: Mapping[str, int] | None) -> str:
    """Why the current accelerator's plan cannot serve the load at all; empty when it can."""
    if plan is None:
        return "no feasible sizing there"
    if 0 < server.max_num_replicas < plan.replicas:
        return f"needs {plan.replicas} replicas > maxNumReplicas {server.max_num_replicas}"
    if cards_left is None:
        return ""
    kind = plan.option.spec.type
    cards = plan.replicas * plan.cards_per_replica
    have = max(cards_left.get(kind, 0), 0)
    if cards <= have:
        return ""
    return f"needs {cards} {kind} cards, {have} left by servers of equal or higher priority"


def _server_problems(
    servers: list[ServerSpec],
    contexts: list[ServerContext],
    plans: list[_Plan],
    rejected: list[list[str]],
) -> tuple[tuple[ServerProblem, ...], list[ServerContext]]:
    rates = [contexts[p.option.server].demand_rps / p.replicas if p.replicas > 0 else 0.0 for p in plans]
    predictions = predict_requests([p.request for p in plans], rates)
    candidates: list[list[Candidate]] = [[] for _ in servers]
    notes: list[dict[str, str]] = [{} for _ in servers]
    for plan, prediction in zip(plans, predictions, strict=True):
        entry, spec = plan.option.entry, plan.option.spec
        floor = _floor(servers[plan.option.server], entry.acc)
        candidates[plan.option.server].append(
            Candidate(
                accelerator=entry.acc,
                acc_type=spec.type,
                replicas=plan.replicas,
                max_batch=plan.request.batch,
                cost_per_replica=plan.cost_per_replica,
                cards_per_replica=plan.cards_per_replica,
                max_rate_per_replica_rps=plan.result.max_rate_rps,
                itl_ms=prediction.itl_ms,
                ttft_ms=prediction.ttft_ms,
                utilization=prediction.utilization,
                ttft_percentile_ms=prediction.ttft_percentile_ms,
                floor_replicas=floor,
            )
        )
        note = f"batch {plan.request.batch}: {plan.result.reason}"
        if plan.option.batch_note:
            note = f"{plan.option.batch_note}; {note}"
        if floor > plan.replicas:
            note += (
                f"; the stabilisation window holds {floor} replicas here (load needs {plan.replicas}): "
                f"their cards are counted as taken"
            )
        bound = servers[plan.option.server].max_num_replicas
        if 0 < bound < plan.replicas:
            served = bound * plan.result.max_rate_rps / contexts[plan.option.server].demand_rps
            note += (
                f"; needs {plan.replicas} replicas > maxNumReplicas {bound}: at most {served:.0%} of demand"
            )
        notes[plan.option.server][entry.acc] = note
    problems = []
    for i, server in enumerate(servers):
        ordered = sorted(candidates[i], key=lambda c: (c.cost, c.cost_per_replica, c.accelerator))
        problems.append(
            ServerProblem(
                name=server.name,
                priority=contexts[i].priority,
                demand_rps=contexts[i].demand_rps,
                min_replicas=server.min_num_replicas,
                max_replicas=server.max_num_replicas,
                current_accelerator=server.current_alloc.accelerator,
                current_replicas=server.current_alloc.num_replicas,
                candidates=tuple(ordered),
                infeasible=tuple(rejected[i]),
            )
        )
    return tuple(problems), [replace(c, candidate_notes=n) for c, n in zip(contexts, notes, strict=True)]
