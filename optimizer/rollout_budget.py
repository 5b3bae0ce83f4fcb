"""Rollout budget: how many running servers may roll their pods at a time.

Caller: :func:`optimizer.optimize.optimize`, around the solver. Pure: the solver comes in as a
function, no clock, no I/O.

A GPU-type or batch change rewrites a Deployment's pod template, and Kubernetes then replaces every
pod: each new vLLM pod loads its model (minutes on real GPUs) while the old ones drain and abort
long requests. Adopting a fleet (the first cycle over 1,000 Deployments labelled at once) or a
shift in prices would otherwise roll all of it in one cycle: ~800 template patches keep the
kube-apiserver busy for 8 s on the benchmark machine (benchmark 2), and a real cluster would run
hundreds of model loads at once. Like Karpenter's disruption budgets (10% of nodes by default),
at most ``max(rollout_budget_min, ceil(rollout_budget_share x running servers))`` servers roll at a
time, counting those whose last rollout has not finished (``rollingOut``, from the Deployment's
status). The other changes wait for a later cycle.

A waiting server is re-planned as it runs (its current accelerator and batch, sized for its
load), so the solver counts the cards it keeps and no other server is planned onto them; replica
changes are never deferred. The room goes first to servers that cannot serve their whole load as
they run (no feasible sizing at their batch, more replicas than ``maxNumReplicas``, or the cards
they run on fall short where the change would fit), then to higher priority, then to the largest
saving: those changes fix a missed target, the others save money. When even those exceed the
room, some of them wait too, no worse served than they are now; the budget bounds every rollout,
which is its point (a price or data change can make most of a fleet want to move at once).
Only a server whose running batch is unknown rolls regardless (the actuator sets the batch
whatever the plan), and it uses the room first. Each waiting server's decision says what waits and
why, and the solver note gives the totals: both as steps with code ``rollout_budget``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from contract.data.system import SystemData
from contract.data.workload import ServerData, ServerSpec
from contract.steps import Step, StepCode
from optimizer.candidates import ServerContext, build_problem_with_context
from optimizer.settings import OptimizerSettings
from optimizer.solver.problem import AllocationProblem, Assignment, ServerProblem, SolverResult

HEAD = "rollout budget"
"""Starts the text of the budget's steps (the solver note and each waiting server's reason)."""
MAX_RESOLVES = 3
"""Re-solves at most; each changes which servers wait, until that settles."""

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
    """Solve, then re-plan the pod-template changes beyond the budget as the servers run and solve
    again, until the set that waits settles (at most ``MAX_RESOLVES`` re-solves); returns the
    problem, contexts and result to assemble the solution from."""
    result = solve(problem)
    budget = allowance(system, settings)
    if budget is None:
        return problem, contexts, result
    state = _State(system, settings, budget, {p.name: p for p in problem.servers})
    for _ in range(MAX_RESOLVES):
        waiting = state.waiting_after(result)
        if waiting == state.frozen:
            break
        state.frozen = waiting
        problem, result = state.resolve(problem, solve)
    contexts = {**contexts, **{n: state.waiting_context(n) for n in state.frozen}}
    return problem, contexts, replace(result, notes=(*result.notes, state.summary(result)))


class _State:
    """What the budget knows across re-solves: the change each server wants, its status quo
    (sized once), which status quos cannot serve, which servers wait."""

    def __init__(
        self,
        system: SystemData,
        settings: OptimizerSettings,
        budget: Allowance,
        originals: Mapping[str, ServerProblem],
    ) -> None:
        self.system, self.settings, self.budget, self.originals = system, settings, budget, originals
        self.servers = {s.name: s for s in system.servers.servers}
        self.moves: dict[str, Assignment] = {}
        self.staying: dict[str, tuple[ServerProblem, ServerContext]] = {}
        self.needed: set[str] = set()
        self.exempt: set[str] = set()
        self.frozen: set[str] = set()

    def waiting_after(self, result: SolverResult) -> set[str]:
        """The servers that should wait, given the last solve."""
        changing: set[str] = set()
        for name, server in self.servers.items():
            assignment = result.assignments.get(name)
            if name not in self.frozen and rolls(server, assignment):
                assert assignment is not None
                self.moves[name] = assignment
                changing.add(name)
            elif name in self.frozen and _less_served(assignment, self.moves[name]):
                self.needed.add(name)  # the cards it runs on fall short: it goes first next time
        if not self.frozen and len(changing) <= self.budget.room:
            return set()
        wanting = changing | self.frozen
        self._size_status_quo(wanting)
        forced = [n for n in wanting if n in self.exempt]
        ranked = sorted(
            (n for n in wanting if n not in self.exempt),
            key=lambda n: (n not in self.needed, self.staying[n][0].priority, -self._saving(n), n),
        )
        return set(ranked[max(self.budget.room - len(forced), 0) :])

    def _size_status_quo(self, names: set[str]) -> None:
        todo = [n for n in sorted(names) if n not in self.staying and n not in self.exempt]
        stays = {n: status_quo(self.servers[n]) for n in todo}
        self.exempt.update(n for n, spec in stays.items() if spec is None)
        specs = [spec for spec in stays.values() if spec is not None]
        if not specs:
            return
        sub = self.system.model_copy(update={"servers": ServerData(servers=specs)})
        problem, contexts = build_problem_with_context(sub, self.settings)
        for server_problem in problem.servers:
            self.staying[server_problem.name] = (server_problem, contexts[server_problem.name])
            if not _can_serve(server_problem):
                self.needed.add(server_problem.name)

    def _saving(self, name: str) -> float:
        """Cost per hour the change saves against the status quo serving the same load."""
        move = self.moves[name]
        assert move.candidate is not None
        stay_cost = min((c.cost for c in self.staying[name][0].candidates), default=0.0)
        return stay_cost - move.replicas * move.candidate.cost_per_replica

    def resolve(self, problem: AllocationProblem, solve: Solve) -> tuple[AllocationProblem, SolverResult]:
        by_name = {**self.originals, **{n: self.staying[n][0] for n in self.frozen}}
        problem = replace(problem, servers=tuple(by_name[p.name] for p in problem.servers))
        return problem, solve(problem)

    def waiting_context(self, name: str) -> ServerContext:
        context = self.staying[name][1]
        move, current, b = self.moves[name], self.servers[name].current_alloc, self.budget
        assert move.candidate is not None
        why = (
            f"{HEAD}: {b.total} of {b.running} running servers may roll at a time ({b.in_flight} "
            f"still rolling; those that cannot serve their load as they run go first, then higher "
            f"priority and larger savings): the move to {move.candidate.accelerator} batch "
            f"{move.candidate.max_batch} x{move.replicas} (saves {self._saving(name):.4g}/h) waits; stays on "
            f"{current.accelerator} batch {current.max_batch}"
        )
        if name in self.needed:
            why += ", which cannot serve its whole load: a later cycle moves it first"
        step = Step(stage="rollout", code=StepCode.ROLLOUT_BUDGET, text=why)
        return replace(context, reasons=(*context.reasons, step))

    def summary(self, result: SolverResult) -> Step:
        b = self.budget
        started = sum(1 for n, s in self.servers.items() if rolls(s, result.assignments.get(n)))
        note = (
            f"{HEAD}: {b.total} of {b.running} running servers may roll at a time, {b.in_flight} "
            f"still rolling; {started} start this cycle, {len(self.frozen)} wait"
        )
        short = len(self.frozen & self.needed)
        if short:
            note += f" ({short} of them cannot serve their whole load as they run)"
        if self.exempt:
            note += f"; {len(self.exempt)} with an unknown running batch roll anyway"
        return Step(stage="rollout", code=StepCode.ROLLOUT_BUDGET, text=note)


def _less_served(now: Assignment | None, move: Assignment) -> bool:
    """Whether the status quo serves less than the wanted change would."""
    if now is None or now.candidate is None:
        return move.candidate is not None
    return move.complete and not now.complete


def _can_serve(server: ServerProblem) -> bool:
    """A status quo that can serve the whole load: a candidate within ``maxNumReplicas``."""
    return any(server.max_replicas <= 0 or c.replicas <= server.max_replicas for c in server.candidates)
