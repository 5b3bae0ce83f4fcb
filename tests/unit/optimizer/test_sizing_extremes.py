"""Perf timings at the edge of float range give an infeasible pair with a reason, not an exception.

Found by the hostile data-file properties (tests/unit/hostile): ``alpha = 1e308`` underflowed the
saturation rate to 0 and sizing divided by it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.data.loader import dump_system, load_system_dir, validate_system
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings

SMALL = Path(__file__).resolve().parents[3] / "samples" / "small"


@pytest.mark.parametrize("field", ["alpha", "beta", "gamma", "delta"])
def test_huge_timings_make_the_pair_infeasible(field: str) -> None:
    data = dump_system(load_system_dir(SMALL))
    entry = data["models"]["models"][0]
    parms = entry["decodeParms"] if field in {"alpha", "beta"} else entry["prefillParms"]
    parms[field] = 1e308
    system = validate_system(data, "samples/small with a huge timing")

    solution = optimize(system, OptimizerSettings())

    assert len(solution.decisions) == len(system.servers.servers)
    model, acc = entry["name"], entry["acc"]
    touched = [d for d in solution.decisions if d.model == model]
    assert touched, "the mutated model serves at least one server in samples/small"
    for decision in touched:
        assert decision.allocation is None or decision.allocation.accelerator != acc, decision
