"""Human-readable rendering of a Solution: the CLI's per-server table and totals per GPU type.

Pure string building (no printing), so the CLI, the demo and tests share it.
"""

from __future__ import annotations

from contract.data.system import SystemData
from contract.solution import Solution

HEADER = (
    f"{'server':<26} {'class':<8} {'model':<13} {'rpm':>6} {'status':<11} {'gpu':<9} {'repl':>4} "
    f"{'batch':>5} {'cost/h':>8} {'ITL ms':>13} {'TTFT ms':>15}"
)


def _vs(predicted: float, target: float) -> str:
    """'12.3/40' when a target is set, '12.3' otherwise."""
    return f"{predicted:.1f}/{target:g}" if target > 0 else f"{predicted:.1f}"


def render_table(system: SystemData, solution: Solution) -> str:
    classes = system.class_by_name()
    lines = [HEADER, "-" * len(HEADER)]
    for d in solution.decisions:
        spec = classes.get(d.service_class)
        target = spec.target_for(d.model) if spec else None
        itl_target = target.slo_itl_ms if target else 0.0
        ttft_target = (target.slo_ttft_ms or target.slo_ttw_ms) if target else 0.0
        a = d.allocation
        if a is None:
            row = f"{'-':<9} {'-':>4} {'-':>5} {'-':>8} {'-':>13} {'-':>15}"
        else:
            ttft = a.ttft_percentile_ms if a.ttft_percentile_ms > 0 else a.ttft_ms
            row = (
                f"{a.accelerator:<9} {a.num_replicas:>4} {a.max_batch:>5} {a.cost:>8.1f} "
                f"{_vs(a.itl_ms, itl_target):>13} {_vs(ttft, ttft_target):>15}"
            )
        lines.append(
            f"{d.server[:26]:<26} {d.service_class[:8]:<8} {d.model[:13]:<13} {d.demand_rpm:>6.0f} "
            f"{d.status.value:<11} {row}"
        )
    lines.append("")
    lines.append(render_totals(solution))
    return "\n".join(lines)


def render_totals(solution: Solution) -> str:
    lines = [f"{'gpu type':<9} {'cards used':>10} {'available':>10} {'cost/h':>9}"]
    types = sorted(set(solution.cards_by_type) | set(solution.capacity_by_type))
    for t in types:
        available = "unlimited" if solution.unlimited else str(solution.capacity_by_type.get(t, 0))
        lines.append(
            f"{t:<9} {solution.cards_by_type.get(t, 0):>10} {available:>10} "
            f"{solution.cost_by_type.get(t, 0.0):>9.1f}"
        )
    counts: dict[str, int] = {}
    for d in solution.decisions:
        counts[d.status.value] = counts.get(d.status.value, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    s = solution.solver
    bound = f", lower bound {s.lower_bound:.1f}" if s.lower_bound is not None else ""
    lines.append(
        f"total cost {solution.total_cost:.1f}/h; {summary}; solver {s.name} ({s.status}{bound}) "
        f"in {s.elapsed_ms:.0f} ms"
    )
    return "\n".join(lines)
