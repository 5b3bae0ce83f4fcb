"""Sizing stage: turn a :class:`SystemData` into the solver's :class:`AllocationProblem`.

Caller: ``optimizer.optimize`` (then a solver picks one candidate per server). Entry points:
``build_problem(system, settings) -> AllocationProblem`` and ``build_problem_with_context(system,
settings) -> (AllocationProblem, {server name: ServerContext})``, whose contexts add the targets,
the demand and tokens used, and server-level and per-candidate notes for the decision report.

Per server (one class+model pair):
- Class: looked up by ``service_class``; a class missing from serviceclass-data gets priority 100
  and no targets, and a class without targets for the model is sized without targets (both say so
  in the reasons). Without targets the replica runs up to ``throughput_rate_cap`` of saturation.
- Demand (req/s) = ``arrivalRate / 60``; with an ``slo-tps`` target, at least ``tps / out``; for
  a target with ``slo-ttft-minute-percentile`` p, the p-th percentile of its per-minute rate
  (:mod:`optimizer.model.minute`), reason code ``minute_percentile``.
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
  partial allocation under the saturation policy (``optimizer.solver.views``).
- Sorted cheapest first (then unit cost, name); each rejected accelerator is in
  ``ServerProblem.infeasible`` as ``"<accelerator>: <reason>"``. ``max_replicas`` 0 means no bound.
"""

from __future__ import annotations

from dataclasses import replace

from contract.data.catalog import ModelPerfEntry
from contract.data.system import SystemData
from contract.data.workload import LOWEST_PRIORITY, LoadSpec, ServerSpec, ServiceClassSpec
from contract.steps import Step, StepCode
from optimizer.model.batch import batch_search_requests, default_batch, pick_optimal
from optimizer.model.minute import minute_rate_rps
from optimizer.model.predict import predict_requests
from optimizer.model.service_time import GEOMETRIC, LengthSpread, ServiceModel, service_model
from optimizer.model.sizing import SizingRequest, SizingResult, Targets, size_rates
from optimizer.options import OptionToSize, ServerContext, SizedOption, replicas_for
from optimizer.settings import OptimizerSettings
from optimizer.solver.problem import AllocationProblem, Candidate, ServerProblem
from optimizer.type_changes import cards_left, robust_type_changes, type_change_hold_down

__all__ = ["ServerContext", "build_problem", "build_problem_with_context"]


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
    options: list[OptionToSize] = []
    rejected: list[list[str]] = [[] for _ in servers]
    models: dict[tuple[object, ...], ServiceModel | str] = {}
    perf_of = {id(e): e.perf for e in system.models.models}  # .perf builds a new object per call
    requests_of: dict[tuple[object, ...], tuple[SizingRequest, ...]] = {}
    for i, server in enumerate(servers):
        context = _context(server, classes.get(server.service_class), perf.get(server.model, []))
        contexts.append(context)
        for entry in _entries(server, perf.get(server.model, []), rejected[i]):
            spread = context.spread  # keyed by its floats: cheaper to hash than the dataclass
            key = (
                perf_of[id(entry)],
                context.in_tokens,
                context.out_tokens,
                spread.in_cv2,
                spread.out_cv2,
                spread.correlation,
            )
            if key not in models:
                try:
                    models[key] = service_model(
                        perf_of[id(entry)],
                        context.in_tokens,
                        context.out_tokens,
                        spread=context.spread,
                        budget_tokens=settings.max_num_batched_tokens,
                    )
                except ValueError as exc:  # no output tokens, or a zero service time
                    models[key] = str(exc)
            model = models[key]
            if isinstance(model, str):
                rejected[i].append(f"{entry.acc}: {model}")
                continue
            batch, batch_note = _batch(server, entry, model, context, settings)
            asked = (id(entry), key, context.targets, batch, server.max_batch_size > 0)
            if asked not in requests_of:  # equal requests share objects: cheap to dedupe later
                kv_tokens = _kv_tokens(entry)
                requests_of[asked] = _requests(server, model, batch, kv_tokens, context, settings)
            requests = requests_of[asked]
            options.append(OptionToSize(i, entry, accelerators[entry.acc], model, requests, batch_note))
    results = iter(size_rates([r for o in options for r in o.requests]))
    picked = [_pick([next(results) for _ in o.requests], o.requests) for o in options]
    sized_options = _sized_options(
        servers, contexts, options, picked, rejected, headroom=settings.load_headroom
    )
    spec = system.optimizer.optimizer
    left = None if spec.unlimited else cards_left(system, contexts)
    sized_options, contexts = type_change_hold_down(
        servers, contexts, sized_options, left, settings.type_change_hold_s, settings.type_change_margin
    )
    sized_options, contexts = robust_type_changes(
        servers, contexts, sized_options, left, settings.type_change_margin, settings.load_headroom
    )
    problems, contexts = _server_problems(servers, contexts, sized_options, rejected)
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
    if spec is not None and spec.forecast_quantile > 0:
        demand, note = _forecast_demand(server, demand)
        reasons.append(note)
    if targets.tps > 0 and out_tokens > 0 and targets.tps / out_tokens > demand:
        demand = targets.tps / out_tokens
        reasons.append(f"slo-tps {targets.tps:g} tokens/s sets the demand to {demand:.4g} req/s")
    steps = [Step.note("size", r) for r in reasons]
    target = spec.target_for(server.model) if spec is not None else None
    if target is not None and target.ttft_minute_percentile > 0 and demand > 0:
        demand, step = _minute_demand(demand, target.ttft_minute_percentile, target.slo_ttft_ms)
        steps.append(step)
    if demand == 0:
        steps.append(Step.note("size", f"zero demand: minNumReplicas = {server.min_num_replicas}"))
    return ServerContext(
        name=server.name,
        service_class=server.service_class,
        model=server.model,
        priority=priority,
        demand_rps=demand,
        in_tokens=load.in_tokens,
        out_tokens=out_tokens,
        targets=targets,
        spread=_spread(load),
        reasons=tuple(steps),
    )


def _minute_demand(demand_rps: float, percentile: float, slo_ttft_ms: float) -> tuple[float, Step]:
    """The demand a class with ``slo-ttft-minute-percentile`` p is sized for: the p-th percentile
    of the server's per-minute arrival rate (:func:`~optimizer.model.minute.minute_rate_rps`), and
    the step saying so. E.g. 60 req/min, p 99.5, slo-ttft 1000 ms: sized for 81 req/min."""
    minute_rps = minute_rate_rps(demand_rps, percentile)
    text = (
        f"minute percentile: mean TTFT <= {slo_ttft_ms:g} ms in {percentile:g}% of minutes: sized for "
        f"{minute_rps * 60.0:.4g} req/min, the p{percentile:g} of a minute's Poisson arrivals at "
        f"{demand_rps * 60.0:.4g} req/min ({minute_rps / demand_rps:.3g}x)"
    )
    return minute_rps, Step(stage="size", code=StepCode.MINUTE_PERCENTILE, text=text)


def _forecast_demand(server: ServerSpec, measured_rps: float) -> tuple[float, str]:
    """``max(measured, forecast)`` in req/s for a server whose class asks for the forecast, and the
    reason. Without a forecast (history too short, lost or unreadable) the measured load alone
    sizes it: reactive, as for a class that does not ask; the controller holds its replicas then
    (no scale-down because the forecast is missing)."""
    forecast = server.forecast
    measured_rpm = measured_rps * 60.0
    if forecast is None:
        return measured_rps, "forecast: none this cycle: sized on the measured load (reactive)"
    ahead = f"{forecast.quantile:g} quantile over the next {forecast.horizon_s:.0f} s"
    if forecast.arrival_rate_rpm > measured_rpm:
        return forecast.arrival_rate_rpm / 60.0, (
            f"forecast: sized for {forecast.arrival_rate_rpm:.4g} req/min ({ahead}) > measured "
            f"{measured_rpm:.4g} req/min"
        )
    return measured_rps, (
        f"forecast: {forecast.arrival_rate_rpm:.4g} req/min ({ahead}) <= measured {measured_rpm:.4g} "
        "req/min: sized on the measured load"
    )


def _spread(load: LoadSpec) -> LengthSpread:
    """The load's length spread; what it leaves out takes the model's default (cv^2 1, no
    correlation)."""
    if load.in_tokens_cv2 is None and load.out_tokens_cv2 is None and load.in_out_correlation is None:
        return GEOMETRIC
    return LengthSpread(
        GEOMETRIC.in_cv2 if load.in_tokens_cv2 is None else load.in_tokens_cv2,
        GEOMETRIC.out_cv2 if load.out_tokens_cv2 is None else load.out_tokens_cv2,
        load.in_out_correlation or 0.0,
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
    server: ServerSpec,
    entry: ModelPerfEntry,
    model: ServiceModel,
    context: ServerContext,
    settings: OptimizerSettings,
) -> tuple[int, str]:
    """The batch to size (the ceiling under the optimal policy) and a note when a cap clamped it.

    Default rule, then the running batch if close (:func:`_sticky_batch`), then at most
    ``max_batch_cap``: ``floor(maxBatchSize * atTokens / out)`` is a KV-cache budget, not what
    vLLM runs (``--max-num-seqs`` defaults to 256), and short outputs make it huge. E.g. A100
    maxBatchSize 64 at 512 tokens, out 10 tokens: 3276 -> 256. Then at most what the KV cache
    holds on average (:meth:`ServiceModel.kv_batch`; more slots only make vLLM preempt): e.g.
    32,000 tokens at 512 in / 256 out, fixed lengths -> 49. A server's own ``maxBatchSize`` is the
    user's choice and is not capped (its sizing still sees the KV limit).
    """
    batch = default_batch(entry.max_batch_size, entry.at_tokens, context.out_tokens, server.max_batch_size)
    batch = _sticky_batch(server, entry, batch, settings.batch_tolerance)
    if server.max_batch_size > 0:
        return batch, ""
    notes = []
    cap = settings.max_batch_cap
    if 0 < cap < batch:
        notes.append(f"batch {batch} capped at {cap} (max_batch_cap, vLLM --max-num-seqs)")
        batch = cap
    kv_tokens = _kv_tokens(entry)
    kv_batch = model.kv_batch(kv_tokens, entry.kv_block_tokens) if kv_tokens > 0 else batch
    if kv_batch < batch:
        notes.append(f"batch {batch} capped at {kv_batch}: the KV cache ({kv_tokens} tokens) holds that many")
        batch = kv_batch
    return batch, "; ".join(notes)


def _kv_tokens(entry: ModelPerfEntry) -> int:
    """The KV cache the model holds a replica to, in tokens (0: no limit): the entry's
    :attr:`~contract.data.catalog.ModelPerfEntry.kv_capacity_tokens`."""
    return entry.kv_capacity_tokens or 0


def _requests(  # noqa: PLR0917 - one server's sizing inputs
    server: ServerSpec,
    model: ServiceModel,
    batch: int,
    kv_tokens: int,
    context: ServerContext,
    settings: OptimizerSettings,
) -> tuple[SizingRequest, ...]:
    factor, cap = settings.max_queue_factor, settings.throughput_rate_cap
    if settings.batch_policy == "optimal" and server.max_batch_size <= 0:
        return tuple(batch_search_requests(model, batch, factor, context.targets, cap, kv_tokens))
    return (SizingRequest(model, batch, factor * batch, context.targets, cap, kv_tokens),)


def _sticky_batch(server: ServerSpec, entry: ModelPerfEntry, batch: int, tolerance: float) -> int:
    """Keep the batch the server runs when it is within ``tolerance`` of the computed one.

    A batch change rolls every pod of the Deployment, while the computed batch follows the
    measured mean output length, which is noisy from cycle to cycle (14 -> 17 -> 20 -> 17 under
    steady load in what-if runs). Sizing with the batch actually running keeps the prediction
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


def _sized_options(
    servers: list[ServerSpec],
    contexts: list[ServerContext],
    options: list[OptionToSize],
    picked: list[tuple[SizingRequest, SizingResult]],
    rejected: list[list[str]],
    *,
    headroom: float = 0.0,
) -> list[SizedOption]:
    """Feasible options with their replica counts, sized for ``demand * (1 + headroom)``;
    infeasible ones go to ``rejected``."""
    sized_options: list[SizedOption] = []
    for option, (request, result) in zip(options, picked, strict=True):
        if not result.feasible:
            rejected[option.server].append(f"{option.entry.acc}: batch {request.batch}: {result.reason}")
            continue
        demand_rps = contexts[option.server].demand_rps * (1.0 + headroom)
        replicas = replicas_for(servers[option.server], demand_rps, result.max_rate_rps)
        sized_options.append(SizedOption(option, request, result, replicas))
    return sized_options


def _floor(server: ServerSpec, accelerator: str) -> int:
    """The stabilisation floor on the server's current accelerator (0 elsewhere or when not given),
    never above ``maxNumReplicas``: the window cannot hold more than the bound allows."""
    floor = server.floor_replicas or 0
    if accelerator != server.current_alloc.accelerator:
        return 0
    return min(floor, server.max_num_replicas) if server.max_num_replicas > 0 else floor


def _server_problems(
    servers: list[ServerSpec],
    contexts: list[ServerContext],
    sized_options: list[SizedOption],
    rejected: list[list[str]],
) -> tuple[tuple[ServerProblem, ...], list[ServerContext]]:
    rates = [
        contexts[p.option.server].demand_rps / p.replicas if p.replicas > 0 else 0.0 for p in sized_options
    ]
    predictions = predict_requests([p.request for p in sized_options], rates)
    candidates: list[list[Candidate]] = [[] for _ in servers]
    notes: list[dict[str, str]] = [{} for _ in servers]
    for sized_option, prediction in zip(sized_options, predictions, strict=True):
        entry, spec = sized_option.option.entry, sized_option.option.spec
        floor = _floor(servers[sized_option.option.server], entry.acc)
        candidates[sized_option.option.server].append(
            Candidate(
                accelerator=entry.acc,
                acc_type=spec.type,
                replicas=sized_option.replicas,
                max_batch=sized_option.request.batch,
                cost_per_replica=sized_option.cost_per_replica,
                cards_per_replica=sized_option.cards_per_replica,
                max_rate_per_replica_rps=sized_option.result.max_rate_rps,
                itl_ms=prediction.itl_ms,
                ttft_ms=prediction.ttft_ms,
                utilization=prediction.utilization,
                ttft_percentile_ms=prediction.ttft_percentile_ms,
                floor_replicas=floor,
            )
        )
        note = f"batch {sized_option.request.batch}: {sized_option.result.reason}"
        if sized_option.option.batch_note:
            note = f"{sized_option.option.batch_note}; {note}"
        if floor > sized_option.replicas:
            note += (
                f"; the stabilisation window holds {floor} replicas here (load needs "
                f"{sized_option.replicas}): their cards are counted as taken"
            )
        bound = servers[sized_option.option.server].max_num_replicas
        if 0 < bound < sized_option.replicas:
            served = (
                bound * sized_option.result.max_rate_rps / contexts[sized_option.option.server].demand_rps
            )
            note += (
                f"; needs {sized_option.replicas} replicas > maxNumReplicas {bound}: at most {served:.0%} "
                "of demand"
            )
        notes[sized_option.option.server][entry.acc] = note
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
