"""Rollout budget: how many running servers may roll their pods at a time.

Caller: :func:`optimizer.optimize.optimize`, around the solver. Pure: the solver comes in as a
function, no clock, no I/O.

A GPU-type or batch change rewrites a Deployment's pod template, and Kubernetes then replaces every
pod: each new vLLM pod loads its model (minutes on real GPUs) while the old ones drain and abort
long requests. Adopting a fleet (the first cycle over 1,000 Deployments labelled at once) or a
shift in prices would otherwise roll all of it in one cycle: ~800 template patches kept the
kube-apiserver busy for 8 s on the benchmark machine (benchmark 2), and a real cluster would run
hundreds of model loads at once. Like Karpenter's disruption budgets (10% of nodes by default),
at most ``max(rollout_budget_min, ceil(rollout_budget_share x running servers))`` servers roll at a
time, counting those whose last rollout has not finished (``rollingOut``, from the Deployment's
status). The other changes wait for a later cycle; the budget's room goes first to
higher-priority servers, then to the largest saving.

A deferred server is re-planned as it runs (its current accelerator and batch, sized for its
load), so the solver counts the cards it keeps and no other server is planned onto them; replica
changes are never deferred. Exempt, since rolling is then the remedy, not a choice:
- a server whose current accelerator and batch cannot serve its load at all (no feasible sizing
  there, or more replicas than ``maxNumReplicas``), or whose running batch is unknown (the actuator
  sets it whatever the plan);
- a server that the re-plan would leave less served than its change did (a complete allocation
  becoming partial or none: e.g. the cards it would move to are free, those it runs on are not).
Exempt changes use the budget's room first and are never refused, so the budget can be exceeded
by them; the solver note says so. Each deferred server's decision says what waits and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from optimizer.candidates import ServerContext, build_problem_with_context
from optimizer.data.system import SystemData
from optimizer.data.workload import ServerData, ServerSpec
from optimizer.settings import OptimizerSettings
from optimizer.solver.problem import AllocationProblem, Assignment, ServerProblem, SolverResult

NOTE_PREFIX = "rollout budget"
"""Starts the solver note with the budget's totals and each deferred server's reason."""
MAX_RESOLVES = 3
"""Re-solves at most, each freezing more servers or exempting some; then one more at most, for
servers the last re-plan left less served than their change would."""

Solve = Callable[[AllocationProblem], SolverResult]


@dataclass(frozen=True, slots=True)
class Allowance:
    """How many running servers may roll at a time, and how many still are."""

    total: int
    in_flight: int
    running: int

    @property
    def room(self) -> int:
        return max(self.total - self.in_flight, 0)


def allowance(system: SystemData, settings: OptimizerSettings) -> Allowance | None:
    """The budget of this cycle; None when it cannot bind (share 1, or no more servers than it)."""
    running = [s for s in system.servers.servers if s.current_alloc.num_replicas > 0]
    total = max(settings.rollout_budget_min, math.ceil(settings.rollout_budget_share * len(running) - 1e-9))
    if settings.rollout_budget_share >= 1 or total >= len(running):
        return None
    return Allowance(total, sum(1 for s in running if s.rolling_out), len(running))


def rolls(server: ServerSpec, assignment: Assignment | None) -> bool:
    """Whether the assignment changes a running server's pod template (accelerator or batch)."""
    current = server.current_alloc
    if assignment is None or assignment.candidate is None or current.num_replicas <= 0:
        return False
    candidate = assignment.candidate
    return candidate.accelerator != current.accelerator or candidate.max_batch != current.max_batch


def status_quo(server: ServerSpec) -> ServerSpec | None:
    """The server re-planned as it runs: its accelerator kept and its running batch fixed; None
    when the running batch is unknown."""
    current = server.current_alloc
    if current.max_batch <= 0 or not current.accelerator:
        return None
    return server.model_copy(update={"keep_accelerator": True, "max_batch_size": current.max_batch})


def apply_rollout_budget(
    system: SystemData,
    settings: OptimizerSettings,
    problem: AllocationProblem,
    contexts: dict[str, ServerContext],
    solve: Solve,
) -> tuple[AllocationProblem, dict[str, ServerContext], SolverResult]:
    """Solve, then defer the pod-template changes beyond the budget and solve again; returns the
    problem, contexts and result to assemble the solution from."""
    result = solve(problem)
    budget = allowance(system, settings)
    if budget is None:
        return problem, contexts, result
    servers = {s.name: s for s in system.servers.servers}
    first = dict(result.assignments)
    originals = {p.name: p for p in problem.servers}
    frozen: dict[str, tuple[ServerProblem, ServerContext]] = {}
    exempt: set[str] = set()
    for _ in range(MAX_RESOLVES):
        changing = [n for n, s in servers.items() if rolls(s, result.assignments.get(n))]
        regressed = [n for n in frozen if _less_served(result.assignments.get(n), first.get(n))]
        if len(changing) <= budget.room and not regressed:
            break
        for name in regressed:
            del frozen[name]
            exempt.add(name)
        deferred = _over_budget(system, settings, servers, changing, result, budget, exempt)
        if not deferred and not regressed:
            break
        for name, (server_problem, context, what) in deferred.items():
            frozen[name] = (server_problem, replace(context, reasons=(*context.reasons, what)))
        problem, result = _resolve(problem, originals, frozen, solve)
    regressed = [n for n in frozen if _less_served(result.assignments.get(n), first.get(n))]
    if regressed:  # the last re-plan still left some less served: they roll after all
        for name in regressed:
            del frozen[name]
            exempt.add(name)
        problem, result = _resolve(problem, originals, frozen, solve)
    contexts = {**contexts, **{n: c for n, (_, c) in frozen.items()}}
    started = sum(1 for n, s in servers.items() if rolls(s, result.assignments.get(n)))
    summary = (
        f"{NOTE_PREFIX}: {budget.total} of {budget.running} running servers may roll at a time, "
        f"{budget.in_flight} still rolling; {started} start this cycle, {len(frozen)} wait"
    )
    if exempt:
        summary += f" ({len(exempt)} exempt: staying as they run would not serve them)"
    return problem, contexts, replace(result, notes=(*result.notes, summary))


def _resolve(
    problem: AllocationProblem,
    originals: Mapping[str, ServerProblem],
    frozen: Mapping[str, tuple[ServerProblem, ServerContext]],
    solve: Solve,
) -> tuple[AllocationProblem, SolverResult]:
    by_name = {**originals, **{n: p for n, (p, _) in frozen.items()}}
    problem = replace(problem, servers=tuple(by_name[p.name] for p in problem.servers))
    return problem, solve(problem)


def _less_served(now: Assignment | None, before: Assignment | None) -> bool:
    if before is None or before.candidate is None:
        return False
    if now is None or now.candidate is None:
        return True
    return before.complete and not now.complete


def _over_budget(  # noqa: PLR0917 - the budget's shared state
    system: SystemData,
    settings: OptimizerSettings,
    servers: Mapping[str, ServerSpec],
    changing: list[str],
    result: SolverResult,
    budget: Allowance,
    exempt: set[str],
) -> dict[str, tuple[ServerProblem, ServerContext, str]]:
    """The changes beyond the budget, each with its status-quo problem, context and reason."""
    stays = {n: status_quo(servers[n]) for n in changing if n not in exempt}
    for name in [n for n, spec in stays.items() if spec is None]:
        exempt.add(name)
        del stays[name]
    sub = system.model_copy(update={"servers": ServerData(servers=[s for s in stays.values() if s])})
    sub_problem, sub_contexts = build_problem_with_context(sub, settings)
    staying = {p.name: p for p in sub_problem.servers}
    for name in list(stays):
        if not _can_serve(staying[name]):
            exempt.add(name)
            del stays[name]
    forced = [n for n in changing if n in exempt]
    ranked = sorted(
        stays,
        key=lambda n: (staying[n].priority, -_saving(staying[n], result.assignments[n]), n),
    )
    keep = max(budget.room - len(forced), 0)
    out: dict[str, tuple[ServerProblem, ServerContext, str]] = {}
    for name in ranked[keep:]:
        why = _why(servers[name], staying[name], result.assignments[name], budget, keep)
        out[name] = (staying[name], sub_contexts[name], why)
    return out


def _can_serve(server: ServerProblem) -> bool:
    """A status quo that can serve the whole load: a candidate within ``maxNumReplicas``."""
    return any(server.max_replicas <= 0 or c.replicas <= server.max_replicas for c in server.candidates)


def _saving(staying: ServerProblem, moving: Assignment) -> float:
    """Cost per hour the change saves against the status quo serving the same load."""
    assert moving.candidate is not None
    stay_cost = min((c.cost for c in staying.candidates), default=0.0)
    return stay_cost - moving.replicas * moving.candidate.cost_per_replica


def _why(server: ServerSpec, staying: ServerProblem, moving: Assignment, budget: Allowance, keep: int) -> str:
    assert moving.candidate is not None
    target, current = moving.candidate, server.current_alloc
    return (
        f"{NOTE_PREFIX}: {budget.total} of {budget.running} running servers may roll at a time "
        f"({budget.in_flight} still rolling, {keep} more start this cycle, higher priority and larger "
        f"savings first): the move to {target.accelerator} batch {target.max_batch} x{moving.replicas} "
        f"(saves {_saving(staying, moving):.4g}/h) waits; stays on {current.accelerator} batch "
        f"{current.max_batch}"
    )
