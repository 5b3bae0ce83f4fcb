"""Offline CLI: ``python -m optimizer.cli samples/large [--json] [--solver milp] [--unlimited]``.

Reads a directory of inferno data files, optimizes, prints a table per server (class, model, GPU,
replicas, batch, cost, predicted ITL/TTFT against targets) and the totals per GPU type. Exit code
2 with a one-paragraph message on bad input, never a trace.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from contract.data.loader import DataError, load_system_dir
from optimizer.optimize import optimize
from optimizer.report import render_table
from optimizer.settings import OptimizerSettings
from optimizer.solver.registry import get_solver


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m optimizer.cli", description=__doc__.splitlines()[0])
    p.add_argument("data_dir", help="directory with accelerator-data.json, model-data.json, ...")
    p.add_argument("--json", action="store_true", help="print the Solution as JSON")
    p.add_argument("--solver", help="greedy or milp (default: optimizer-data's milpSolver)")
    p.add_argument(
        "--unlimited", action="store_true", help="ignore capacity (each server takes its cheapest)"
    )
    p.add_argument("--batch-policy", choices=["default", "optimal"], default="default")
    p.add_argument("--time-limit-s", type=float, default=10.0, help="MILP wall-clock limit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.solver:
            get_solver(args.solver)  # unknown names fail here, before any work
        system = load_system_dir(args.data_dir)
        if args.unlimited:
            spec = system.optimizer.optimizer.model_copy(update={"unlimited": True})
            system = system.model_copy(
                update={"optimizer": system.optimizer.model_copy(update={"optimizer": spec})}
            )
        settings = OptimizerSettings(
            solver=args.solver, batch_policy=args.batch_policy, time_limit_s=args.time_limit_s
        )
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    solution = optimize(system, settings)
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    solution = solution.with_elapsed_ms(elapsed_ms)
    if args.json:
        print(json.dumps(solution.model_dump(mode="json"), indent=2))
    else:
        print(render_table(system, solution))
    return 0


if __name__ == "__main__":
    sys.exit(main())
