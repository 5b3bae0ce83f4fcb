"""``optimize(system) -> Solution``: sizing, then allocation, then one explained decision per server.

The library's single entry point, called by the optimizer service (``POST /optimize``), the CLI
(``python -m optimizer.cli``), the load emulator's what-if runs and the benchmarks. Pure: the same
system and settings give the same solution (the MILP runs with a fixed seed and time limit); no
clock, no I/O.

Stages:

1. :func:`optimizer.candidates.build_problem` sizes every (server, accelerator) pair with the
   queueing model and keeps the feasible ones as candidates.
2. The solver named by the settings (or by optimizer-data's ``milpSolver``) picks at most one
   candidate and a replica count per server within the card capacity; when more running servers
   would roll their pods than the rollout budget allows (:mod:`optimizer.rollout_budget`), the
   others are re-planned as they run and the solver runs again.
3. :func:`assemble` turns the solver's assignments into :class:`~contract.solution.Solution`,
   where every input server has exactly one decision and its reasons.

Running servers keep cards whatever the solution (:mod:`optimizer.solver.reservations`): ``optimize``
gives the solvers the cards per replica of each running server's current accelerator
(:func:`optimizer.type_changes.running_cards`), and the solution's ``cards_by_type`` includes the
cards such servers keep beyond their allocations (``reserved_by_type``), so the actuator's
free-card count is true.
"""

from __future__ import annotations

from dataclasses import replace

from contract.data.system import SystemData
from contract.data.workload import ServerSpec
from contract.solution import DecisionStatus, ServerAllocation, ServerDecision, Solution, SolverReport
from contract.steps import Step, StepCode
from optimizer.candidates import ServerContext, build_problem_with_context
from optimizer.rollout_budget import apply_rollout_budget
from optimizer.settings import OptimizerSettings
from optimizer.solver.problem import AllocationProblem, Assignment, ServerProblem, SolverResult
from optimizer.solver.registry import get_solver
from optimizer.type_changes import running_cards

DEFAULT_SETTINGS = OptimizerSettings()


def optimize(system: SystemData, settings: OptimizerSettings = DEFAULT_SETTINGS) -> Solution:
    """Choose accelerator, replicas and batch for every server of ``system``."""
    problem, contexts = build_problem_with_context(system, settings)
    problem = replace(problem, running_cards=running_cards(system))
    solver = get_solver(settings.solver or system.optimizer.optimizer.solver_name)
    problem, contexts, result = apply_rollout_budget(system, settings, problem, contexts, solver.solve)
    return assemble(system, problem, contexts, result, solver.name)


def assemble(
    system: SystemData,
    problem: AllocationProblem,
    contexts: dict[str, ServerContext],
    result: SolverResult,
    solver_name: str,
) -> Solution:
    """One decision per input server, in input order, plus cost and card totals per type."""
    problems = {p.name: p for p in problem.servers}
    decisions: list[ServerDecision] = []
    cost_by_type: dict[str, float] = {}
    cards_by_type: dict[str, int] = {}
    for server in system.servers.servers:
        sp = problems[server.name]
        assignment = result.assignments.get(server.name) or Assignment(
            server.name, None, 0, (Step.note("decide", "solver returned no assignment"),)
        )
        decision = _decide(sp, assignment, contexts[server.name], limited=not problem.unlimited)
        decision = _with_startup(decision, server, system)
        decisions.append(decision)
        if decision.allocation is not None:
            a = decision.allocation
            cost_by_type[a.accelerator_type] = cost_by_type.get(a.accelerator_type, 0.0) + a.cost
            cards_by_type[a.accelerator_type] = cards_by_type.get(a.accelerator_type, 0) + a.cards
    reserved = dict(result.reserved_cards)
    for kind, n in reserved.items():
        cards_by_type[kind] = cards_by_type.get(kind, 0) + n
    report = SolverReport(
        name=solver_name,
        status=result.status,
        objective=result.objective,
        lower_bound=result.lower_bound,
        steps=list(result.notes),
    )
    return Solution(
        decisions=decisions,
        solver=report,
        total_cost=sum(cost_by_type.values()),
        cost_by_type=cost_by_type,
        cards_by_type=cards_by_type,
        reserved_by_type=reserved,
        capacity_by_type=dict(problem.capacity_cards),
        unlimited=problem.unlimited,
    )


def _with_startup(decision: ServerDecision, server: ServerSpec, system: SystemData) -> ServerDecision:
    """The decision with when its coming capacity serves: replicas still starting (counted in the
    current count, so they are not asked for again) and the new ones it asks for."""
    a = decision.allocation
    starting = server.starting_replicas
    if a is None and starting == 0:
        return decision
    accelerator = a.accelerator if a is not None else server.current_alloc.accelerator
    startup_s, source = system.startup_s(server, accelerator)
    when = (
        f"serve in about {startup_s:.0f} s ({source})" if startup_s is not None else "start-up time unknown"
    )
    texts: list[str] = []
    if starting > 0:
        texts.append(
            f"{starting} of {server.current_alloc.num_replicas} replicas are starting: counted as coming "
            "capacity, not asked for again"
        )
    if a is not None:
        same_type = a.accelerator == server.current_alloc.accelerator
        added = a.num_replicas - server.current_alloc.num_replicas if same_type else a.num_replicas
        if added > 0:
            texts.append(f"{added} new replica(s) on {a.accelerator}: {when}")
        elif starting > 0 and startup_s is not None:
            texts.append(f"a pod of {server.model} on {accelerator} takes about {startup_s:.0f} s ({source})")
    if not texts:
        return decision
    steps = [*decision.steps, *(Step.note("decide", t) for t in texts)]
    return decision.model_copy(update={"steps": steps, "startup_s": startup_s})


def _decide(
    sp: ServerProblem, assignment: Assignment, context: ServerContext, *, limited: bool = True
) -> ServerDecision:
    demand_rpm = sp.demand_rps * 60.0
    base = {
        "server": sp.name,
        "service_class": context.service_class,
        "model": context.model,
        "priority": context.priority,
        "current_accelerator": sp.current_accelerator,
        "current_replicas": sp.current_replicas,
        "demand_rpm": demand_rpm,
    }
    candidate = assignment.candidate
    if candidate is None:
        steps = [*context.reasons, *assignment.reasons]
        said = {s.text for s in steps}
        steps += [Step.note("size", r) for r in sp.infeasible if r not in said]
        if not sp.candidates and not steps:
            steps.append(Step.note("decide", "no accelerator has performance data for this model"))
        if limited and sp.current_replicas > 0 and not any(s.code is StepCode.KEPT_AS_IS for s in steps):
            steps.append(
                Step.note(
                    "decide",
                    f"its cards are unknown ({sp.current_accelerator or 'no accelerator'} has no entry for "
                    "the model in the data): not reserved",
                )
            )
        steps.append(Step.note("decide", "unallocated: the actuator keeps this server as it is"))
        return ServerDecision(status=DecisionStatus.UNALLOCATED, served_rpm=0.0, steps=steps, **base)
    replicas = assignment.replicas
    complete = replicas >= candidate.replicas
    served_rps = (
        sp.demand_rps if complete else min(sp.demand_rps, replicas * candidate.max_rate_per_replica_rps)
    )
    allocation = ServerAllocation(
        accelerator=candidate.accelerator,
        accelerator_type=candidate.acc_type,
        num_replicas=replicas,
        max_batch=candidate.max_batch,
        cards_per_replica=candidate.cards_per_replica,
        cost=replicas * candidate.cost_per_replica,
        itl_ms=candidate.itl_ms,
        ttft_ms=candidate.ttft_ms,
        ttft_percentile_ms=candidate.ttft_percentile_ms,
        utilization=min(max(candidate.utilization, 0.0), 1.0),
        max_rpm_per_replica=candidate.max_rate_per_replica_rps * 60.0,
        demand_replicas=min(replicas, candidate.replicas) if candidate.floor_replicas > 0 else None,
    )
    steps = [*context.reasons, *assignment.reasons]
    note = context.candidate_notes.get(candidate.accelerator)
    if note:
        steps.append(Step.note("size", note))
    if not complete:
        steps.append(
            Step(
                stage="decide",
                code=StepCode.PARTIAL,
                text=f"partial: {replicas} of {candidate.replicas} replicas fit; serves "
                f"{served_rps * 60:.0f} of {demand_rpm:.0f} req/min within targets (latency predictions are "
                "for the full allocation)",
            )
        )
    return ServerDecision(
        status=DecisionStatus.ALLOCATED if complete else DecisionStatus.PARTIAL,
        allocation=allocation,
        served_rpm=served_rps * 60.0,
        steps=steps,
        **base,
    )
