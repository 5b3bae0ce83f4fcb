"""Solvers by name: ``get_solver("greedy")`` / ``get_solver("milp")``.

Callers: the optimizer's entry point (``optimize``), the service and the CLI, which resolve the
configured name once at start-up so that a misspelt name fails there, not mid-cycle. Names are
matched ignoring case and surrounding blanks. ``OptimizerSpec.solver_name`` gives the configured
name (``milpSolver: true`` in inferno's optimizer-data means ``milp``).
"""

from __future__ import annotations

from collections.abc import Callable

from optimizer.solver.greedy import GreedySolver
from optimizer.solver.milp import MilpSolver
from optimizer.solver.problem import Solver

_FACTORIES: dict[str, Callable[[], Solver]] = {
    "greedy": GreedySolver,
    "milp": MilpSolver,
}


class UnknownSolverError(ValueError):
    """The configured solver name is not registered."""


def solver_names() -> tuple[str, ...]:
    return tuple(sorted(_FACTORIES))


def get_solver(name: str) -> Solver:
    """A fresh solver for ``name``; raises :class:`UnknownSolverError` listing the known names.

    >>> get_solver("MILP").name
    'milp'
    >>> get_solver("cplex")
    Traceback (most recent call last):
    ...
    optimizer.solver.registry.UnknownSolverError: unknown solver 'cplex': choose one of greedy, milp
    """
    factory = _FACTORIES.get(name.strip().lower())
    if factory is None:
        raise UnknownSolverError(f"unknown solver {name!r}: choose one of {', '.join(solver_names())}")
    return factory()
