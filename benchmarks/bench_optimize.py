"""Optimize time and memory, end to end (sizing + solver), for samples/large and generated systems.

Run: ``.venv/bin/python -m benchmarks.bench_optimize [--sizes 100,1000,5000] [--repeat 3]``.
Targets (issue 2): samples/large < 0.2 s; 1,000 servers x 21 accelerators (limited) < 3 s.
Prints one row per case: median wall time, peak traced memory, cost, solver status.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from benchmarks.systems import SAMPLES_LARGE, generate_system
from optimizer.data.loader import load_system_dir
from optimizer.data.system import SystemData
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings


def measure(system: SystemData, settings: OptimizerSettings, repeat: int) -> tuple[float, float, str]:
    times = []
    solution = optimize(system, settings)  # warm-up: imports, numpy buffers
    for _ in range(repeat):
        started = time.perf_counter()
        solution = optimize(system, settings)
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    optimize(system, settings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    summary = f"cost {solution.total_cost:10.1f}  {solution.solver.name}:{solution.solver.status}"
    return statistics.median(times), peak / 2**20, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--solvers", default="greedy,milp")
    args = parser.parse_args()
    print(f"{'case':<34} {'median s':>9} {'peak MiB':>9}  result")
    for solver in args.solvers.split(","):
        settings = OptimizerSettings(solver=solver)
        seconds, mib, summary = measure(load_system_dir(SAMPLES_LARGE), settings, args.repeat)
        print(f"{'samples/large ' + solver:<34} {seconds:>9.3f} {mib:>9.1f}  {summary}")
        for n in (int(s) for s in args.sizes.split(",")):
            for unlimited in (False, True):
                system = generate_system(n, unlimited=unlimited, solver=solver)
                seconds, mib, summary = measure(system, settings, 1 if n >= 5000 else args.repeat)
                mode = "unlimited" if unlimited else "limited"
                print(f"{f'{n} x 21 {mode} {solver}':<34} {seconds:>9.3f} {mib:>9.1f}  {summary}")


if __name__ == "__main__":
    main()
