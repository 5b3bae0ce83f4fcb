"""Optimize time and memory, end to end (sizing + solver), for samples/large and generated systems.

Run: ``.venv/bin/python -m benchmarks.bench_optimize [--sizes 100,1000,5000] [--repeat 3] [--out DIR]``.
Targets (issues 2 and 6): samples/large < 0.2 s; 1,000 servers x 21 accelerators (limited) < 3 s;
the MILP within 1% of its lower bound.

One row per (size, capacity mode, solver): median wall time, peak traced memory, cost, the
servers allocated in full, solver status, the MILP's cost against the greedy's of the same run,
and the gap to the bound when the solver reports one. The MILP's bound is CP-SAT's proven bound on
the effective cost of the full allocations, given the served counts its priority stages fixed;
the gap compares it with the same quantity, the solver's objective (the total cost adds the
partial allocations the servers left over get, which no bound covers). The greedy has none.
With ``--out`` it also writes ``optimize.md``, ``optimize.json`` and
``optimize.png`` (time against servers, log-log) there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.systems import SAMPLES_LARGE, generate_system
from benchmarks.verdicts import Verdict, as_json, markdown_lines
from contract.data.loader import dump_system, load_system_dir, validate_system
from contract.data.system import SystemData
from contract.solution import DecisionStatus, Solution
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings


@dataclass(frozen=True)
class Row:
    servers: int
    mode: str  # limited | unlimited
    solver: str
    median_s: float
    peak_mib: float
    cost: float
    status: str
    lower_bound: float | None
    objective: float
    """What the bound bounds: the effective cost of the full allocations."""
    full: int
    """Servers allocated in full."""

    @property
    def gap_pct(self) -> float | None:
        if self.lower_bound is None or self.lower_bound <= 0:
            return None
        return 100.0 * (self.objective - self.lower_bound) / self.lower_bound


def measure(system: SystemData, settings: OptimizerSettings, repeat: int) -> tuple[float, float, Solution]:
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
    return statistics.median(times), peak / 2**20, solution


def samples_large(*, unlimited: bool) -> SystemData:
    data = dump_system(load_system_dir(SAMPLES_LARGE))
    data["optimizer"]["optimizer"]["unlimited"] = unlimited
    return validate_system(data, "samples/large")


def run(sizes: list[int], solvers: list[str], repeat: int) -> list[Row]:
    rows: list[Row] = []
    for n in [0, *sizes]:  # 0 stands for samples/large (27 servers)
        for unlimited in (False, True):
            system = samples_large(unlimited=unlimited) if n == 0 else generate_system(n, unlimited=unlimited)
            for solver in solvers:
                settings = OptimizerSettings(solver=solver)
                seconds, mib, solution = measure(system, settings, 1 if n >= 5000 else repeat)
                row = Row(
                    servers=len(system.servers.servers),
                    mode="unlimited" if unlimited else "limited",
                    solver=solver,
                    median_s=seconds,
                    peak_mib=mib,
                    cost=solution.total_cost,
                    status=f"{solution.solver.name}:{solution.solver.status}",
                    lower_bound=solution.solver.lower_bound,
                    objective=solution.solver.objective,
                    full=sum(d.status == DecisionStatus.ALLOCATED for d in solution.decisions),
                )
                rows.append(row)
                print(format_row(row, rows), flush=True)
    return rows


def _vs_greedy(row: Row, rows: list[Row]) -> str:
    greedy = [r for r in rows if (r.servers, r.mode, r.solver) == (row.servers, row.mode, "greedy")]
    if row.solver == "greedy" or not greedy or greedy[0].cost <= 0:
        return ""
    return f"{100.0 * (row.cost / greedy[0].cost - 1.0):+.1f}%"


def format_row(row: Row, rows: list[Row]) -> str:
    gap = "" if row.gap_pct is None else f"{row.gap_pct:.2f}%"
    case = f"{row.servers} x 21 {row.mode} {row.solver}"
    return (
        f"{case:<30} {row.median_s:>8.3f} s {row.peak_mib:>7.1f} MiB  cost {row.cost:>11.1f}"
        f"  full {row.full:>5}  {row.status:<18} vs greedy {_vs_greedy(row, rows):>7}  gap to bound {gap:>6}"
    )


def markdown(rows: list[Row]) -> str:
    lines = [
        "| servers x accelerators | capacity | solver | time s | peak MiB | cost/h | allocated in full "
        "| vs greedy | gap to bound |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gap = "" if r.gap_pct is None else f"{r.gap_pct:.2f}%"
        lines.append(
            f"| {r.servers} x 21 | {r.mode} | {r.status} | {r.median_s:.3f} | {r.peak_mib:.1f} | "
            f"{r.cost:,.1f} | {r.full} | {_vs_greedy(r, rows)} | {gap} |"
        )
    return "\n".join(lines) + "\n"


SAMPLES_LARGE_TARGET_S = 0.2
THOUSAND_TARGET_S = 3.0
GAP_TARGET_PCT = 1.0


def verdicts(rows: list[Row]) -> list[Verdict]:
    """The targets (issues 2, 6 and 22) judged on this run's rows."""
    out: list[Verdict] = []
    small = [r for r in rows if r.servers < 100 and r.mode == "limited"]
    if small:
        worst = max(small, key=lambda r: r.median_s)
        out.append(
            Verdict(
                f"samples/large ({worst.servers} servers, limited) < {SAMPLES_LARGE_TARGET_S} s",
                worst.median_s < SAMPLES_LARGE_TARGET_S,
                ", ".join(f"{r.solver} {r.median_s:.3f} s" for r in small),
            )
        )
    thousand = [r for r in rows if r.servers == 1000 and r.mode == "limited"]
    if thousand:
        worst = max(thousand, key=lambda r: r.median_s)
        out.append(
            Verdict(
                f"1,000 servers x 21 accelerators (limited) < {THOUSAND_TARGET_S:g} s",
                worst.median_s < THOUSAND_TARGET_S,
                ", ".join(f"{r.solver} {r.median_s:.3f} s" for r in thousand),
            )
        )
    bounded = [r for r in rows if r.solver == "milp" and r.gap_pct is not None]
    if bounded:
        worst = max(bounded, key=lambda r: r.gap_pct or 0.0)
        out.append(
            Verdict(
                f"MILP within {GAP_TARGET_PCT:g}% of its bound",
                (worst.gap_pct or 0.0) <= GAP_TARGET_PCT,
                "; ".join(f"{r.servers} {r.mode} {r.gap_pct:.2f}% ({r.status})" for r in bounded),
            )
        )
    return out


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - optional dependency, only for --out

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for solver in sorted({r.solver for r in rows}):
        for mode, style in (("limited", "-o"), ("unlimited", "--s")):
            points = sorted((r.servers, r.median_s) for r in rows if (r.solver, r.mode) == (solver, mode))
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=f"{solver}, {mode}")
    ax.plot([1000], [3.0], "k*", markersize=10, linestyle="none", label="target: 1,000 servers < 3 s")
    ax.set(xscale="log", yscale="log", xlabel="servers (x 21 accelerators)", ylabel="optimize wall time, s")
    ax.set_title("Optimizer end to end (sizing + solver)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--solvers", default="greedy,milp")
    parser.add_argument("--out", type=Path, help="write optimize.md, optimize.json and optimize.png here")
    args = parser.parse_args()
    rows = run([int(s) for s in args.sizes.split(",")], args.solvers.split(","), args.repeat)
    for verdict in verdicts(rows):
        print(markdown_lines([verdict])[0])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        judged = verdicts(rows)
        targets = ["", "## Targets", "", *markdown_lines(judged)]
        (args.out / "optimize.md").write_text(markdown(rows) + "\n".join(targets) + "\n")
        body = {"rows": [{**asdict(r), "gap_pct": r.gap_pct} for r in rows], "verdicts": as_json(judged)}
        (args.out / "optimize.json").write_text(json.dumps(body, indent=1) + "\n")
        plot(rows, args.out / "optimize.png")


if __name__ == "__main__":
    main()
