"""Reason strings attached to every Assignment: why this option, why not a cheaper one.

Callers: :mod:`greedy`, :mod:`milp`, :mod:`saturation`, :mod:`assemble`. Pure text building; the
wording is part of the user-facing output (``/invoke`` and the CLI show it), so tests pin a few
phrases: "cheapest of", "switching threshold", "fell through to", "partial:". The solvers' own
reasons are notes (:func:`solve_notes`); the floors and the saturation policy write the steps code
reacts to (``capacity_floor``, ``window_floor``, ``kept_as_is``, ``partial``) themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from contract.steps import Step
from optimizer.solver.capacity import CardLedger
from optimizer.solver.problem import Candidate
from optimizer.solver.views import PricedCandidate, ServerView


def money(value_per_h: float) -> str:
    """``120.0 -> '120'``, ``95.456 -> '95.46'``: cost per hour without noise."""
    return f"{value_per_h:.2f}".rstrip("0").rstrip(".")


def solve_notes(texts: Iterable[str]) -> list[Step]:
    """The solver's reason texts as steps no code reacts to."""
    return [Step.note("solve", t) for t in texts]


def describe(candidate: Candidate, replicas: int) -> str:
    """``'A100 x3 at 120/h'``."""
    return f"{candidate.accelerator} x{replicas} at {money(replicas * candidate.cost_per_replica)}/h"


def choice(view: ServerView, chosen: PricedCandidate, threshold: float) -> list[str]:
    """Why ``chosen`` among the view's full options, as far as cost and switching go."""
    reasons: list[str] = []
    n = len(view.options)
    cheapest = min(view.options, key=lambda o: (o.cost_per_h, o.accelerator))
    if chosen is view.options[0]:
        reasons.append(f"cheapest of {n} feasible: {describe(chosen.candidate, chosen.replicas)}")
    else:
        rank = view.options.index(chosen) + 1
        reasons.append(
            f"option {rank} of {n} feasible by cost: {describe(chosen.candidate, chosen.replicas)}"
        )
    current = view.current
    if current is None:
        return reasons
    pct = f"{threshold:.0%}"
    if chosen is current and cheapest.cost_per_h < current.cost_per_h:
        saving = 1 - cheapest.cost_per_h / current.cost_per_h
        reasons.append(
            f"{cheapest.accelerator} would save {saving:.0%} <= {pct} switching threshold, "
            f"kept {current.accelerator}"
        )
    elif chosen is not current and current.cost_per_h > 0:
        saving = 1 - chosen.cost_per_h / current.cost_per_h
        if chosen.effective_cost_per_h < current.effective_cost_per_h:
            reasons.append(
                f"moved from {current.accelerator}: saves {saving:.0%} > {pct} switching threshold"
            )
        else:
            reasons.append(f"moved from {current.accelerator} ({saving:.0%} saving): it did not fit")
    return reasons


def fell_through(
    skipped: list[PricedCandidate], chosen: PricedCandidate, ledger: CardLedger, server: str = ""
) -> str:
    """``'capacity: A100 x3 needs 12 A100 cards, 4 of 16 left (...); fell through to L40S ...'``."""
    first = skipped[0]
    text = f"capacity: {ledger.shortfall(first.candidate, first.replicas, server)}"
    if len(skipped) > 1:
        text += f"; {len(skipped) - 1} more cheaper option(s) did not fit"
    return f"{text}; fell through to {describe(chosen.candidate, chosen.replicas)}"


def not_served(view: ServerView, ledger: CardLedger, limit: int = 3) -> list[str]:
    """Why no full option was given: one shortfall line per option (the best ``limit`` of them)."""
    if not view.server.candidates:
        return list(view.server.infeasible) or ["no feasible accelerator"]
    reasons: list[str] = []
    if not view.options:
        cap = view.server.max_replicas
        best = view.all_options[0]
        reasons.append(
            f"max_replicas {cap} < {best.replicas} replicas needed on {best.accelerator}: demand cannot be"
            " fully served"
        )
    for option in view.options[:limit]:
        reasons.append(f"capacity: {ledger.shortfall(option.candidate, option.replicas, view.name)}")
    if len(view.options) > limit:
        reasons.append(f"capacity: {len(view.options) - limit} more option(s) did not fit either")
    return reasons
