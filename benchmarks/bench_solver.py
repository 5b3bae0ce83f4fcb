"""Benchmark of the allocation solvers on generated limited-capacity instances.

Run: ``python -m benchmarks.bench_solver [--sizes 100 1000 5000] [--workers 1] [--seed 0]``.
Prints, per size: solve time (wall, including model building) and CP-SAT's own wall time, the
MILP's cost, the greedy's cost, the MILP's lower bound and gap, and the fully served servers per
priority level for both solvers.

Instances (synthetic, realistic cost structure): 9 card types (L4 6/h, G2 12, AIU2 20, MI210 25,
L40S 32, MI250 35, A100 40, MI300X 65, H100 75 per card), single cards for all nine and 2x/4x
units for six of them at 2x/4x cost: 21 accelerator units. Each server runs one of 8 models
(8 to 400 GB of weights); a unit is a candidate when its memory holds the model with 20% room and
(for 10% of pairs, at random) the latency targets are met. Per-replica rate scales with the card's
speed and sub-linearly with the unit's card count (tensor parallel, exponent 0.85). Priority
levels 1/10/50/100 at 20/30/30/20%. 70% of servers currently run one of their three cheapest
units. Capacity per type is 50-110% of the cards the cheapest plan would use, so it is tight.
"""

from __future__ import annotations

import argparse
import math
import random
import time

from contract.data.catalog import SaturationPolicy
from optimizer.solver.greedy import GreedySolver
from optimizer.solver.milp import MilpSolver
from optimizer.solver.problem import AllocationProblem, Candidate, ServerProblem, SolverResult

# card type: (cost per card per hour, memory GB, relative speed)
CARDS = {
    "L4": (6.0, 24, 0.15),
    "G2": (12.0, 96, 0.45),
    "AIU2": (20.0, 64, 0.35),
    "MI210": (25.0, 64, 0.35),
    "L40S": (32.0, 48, 0.5),
    "MI250": (35.0, 128, 0.6),
    "A100": (40.0, 80, 0.6),
    "MI300X": (65.0, 192, 1.0),
    "H100": (75.0, 80, 1.0),
}
MULTI = ("G2", "L40S", "MI250", "A100", "MI300X", "H100")
UNITS = [(t, 1) for t in CARDS] + [(t, m) for m in (2, 4) for t in MULTI]
# model: (weights GB, requests per second per replica on a speed-1.0 card)
MODELS = {
    "granite-8b": (16, 6.0),
    "llama-8b": (16, 5.5),
    "granite-13b": (26, 4.0),
    "mixtral": (94, 2.0),
    "llama-70b": (140, 1.2),
    "granite-34b": (68, 2.5),
    "qwen-14b": (28, 3.8),
    "llama-405b": (400, 0.4),
}
PRIORITIES = ((1, 0.2), (10, 0.3), (50, 0.3), (100, 0.2))


def generate(n_servers: int, seed: int, time_limit_s: float) -> AllocationProblem:
    rng = random.Random(seed)
    servers: list[ServerProblem] = []
    for s in range(n_servers):
        model = rng.choice(list(MODELS))
        weights_gb, base_rps = MODELS[model]
        demand_rps = rng.lognormvariate(0.5, 1.0)
        candidates = []
        for acc_type, mult in UNITS:
            cost, mem_gb, speed = CARDS[acc_type]
            if mem_gb * mult < 1.2 * weights_gb or rng.random() < 0.1:
                continue
            rate = base_rps * speed * mult**0.85 * rng.uniform(0.9, 1.1)
            name = acc_type if mult == 1 else f"{mult}x{acc_type}"
            replicas = max(1, math.ceil(demand_rps / rate))
            candidates.append(
                Candidate(name, acc_type, replicas, 32, cost * mult, mult, rate, 20.0, 200.0, 0.6)
            )
        candidates.sort(key=lambda c: (c.cost, c.accelerator))
        current = rng.choice(candidates[:3]).accelerator if candidates and rng.random() < 0.7 else ""
        priority = rng.choices([p for p, _ in PRIORITIES], [w for _, w in PRIORITIES])[0]
        servers.append(
            ServerProblem(f"s{s:05d}-{model}", priority, demand_rps, 1, 0, current, 0, tuple(candidates))
        )
    cheapest_cards: dict[str, int] = {}
    for server in servers:
        if server.candidates:
            c = server.candidates[0]
            cheapest_cards[c.acc_type] = cheapest_cards.get(c.acc_type, 0) + c.cards
    # Every type has some cards (a spread share of the total) plus part of what the cheapest plan
    # wants of it: the cheapest plan does not fit, most servers can still be served elsewhere.
    total = sum(cheapest_cards.values())
    capacity = {
        t: int(cheapest_cards.get(t, 0) * rng.uniform(0.5, 0.9) + total / len(CARDS) * rng.uniform(0.1, 0.4))
        for t in CARDS
    }
    return AllocationProblem(tuple(servers), capacity, False, SaturationPolicy.NONE, 0.10, time_limit_s, seed)


def served_by_level(problem: AllocationProblem, result: SolverResult) -> str:
    levels = sorted({s.priority for s in problem.servers})
    counts = []
    for level in levels:
        members = [s.name for s in problem.servers if s.priority == level]
        counts.append(f"{sum(result.assignments[n].complete for n in members)}/{len(members)}")
    return " ".join(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-lp-start", action="store_true", help="MILP from the greedy plan only")
    args = parser.parse_args()
    for size in args.sizes:
        limit_s = 2.0 if size <= 1000 else 10.0
        problem = generate(size, args.seed, limit_s)
        start = time.perf_counter()
        greedy = GreedySolver().solve(problem)
        greedy_s = time.perf_counter() - start
        start = time.perf_counter()
        milp = MilpSolver(num_workers=args.workers, lp_start=not args.no_lp_start).solve(problem)
        milp_s = time.perf_counter() - start
        bound = milp.lower_bound
        gap = math.nan if bound is None or milp.objective <= 0 else (milp.objective - bound) / milp.objective
        saving = 1 - milp.objective / greedy.objective
        print(f"== {size} servers x {len(UNITS)} accelerators, time limit {limit_s} s")
        print(
            f"  greedy  {greedy_s:7.3f} s  cost {greedy.objective:12,.2f}/h"
            f"  served {served_by_level(problem, greedy)}"
        )
        print(
            f"  milp    {milp_s:7.3f} s  cost {milp.objective:12,.2f}/h"
            f"  served {served_by_level(problem, milp)}"
        )
        bound_text = "none" if bound is None else f"{bound:,.2f}/h"
        print(
            f"  milp status {milp.status}, lower bound {bound_text}, gap {gap:.3%},"
            f" saving vs greedy {saving:+.2%}"
        )
        for note in milp.notes[1:]:
            print(f"    {note.text}")


if __name__ == "__main__":
    main()
