"""A server keeps its running batch size when the computed one moves only a little (no pod roll)."""

from __future__ import annotations

from typing import Any

import pytest

from optimizer.candidates import build_problem
from optimizer.settings import OptimizerSettings
from tests.unit.optimizer.test_candidates import server, system

# granite_13b on A100: maxBatchSize 32 at 512 tokens; out 256 tokens -> computed batch 64.
COMPUTED = 64


def batches(
    current: dict[str, Any], settings: OptimizerSettings | None = None, **fields: Any
) -> dict[str, int]:
    problem = build_problem(
        system(server(out=256, currentAlloc=current, **fields)), settings or OptimizerSettings()
    )
    return {c.accelerator: c.max_batch for c in problem.servers[0].candidates}


LOAD = {"arrivalRate": 60, "avgInTokens": 128, "avgOutTokens": 256}


@pytest.mark.parametrize(
    ("current", "expected_a100"),
    [
        ({"accelerator": "A100", "maxBatch": 56, "load": LOAD}, 56),
        ({"accelerator": "A100", "maxBatch": 72, "load": LOAD}, 72),
        ({"accelerator": "A100", "maxBatch": 24, "load": LOAD}, COMPUTED),
        ({"accelerator": "A100", "maxBatch": 0, "load": LOAD}, COMPUTED),
        ({"accelerator": "L4", "maxBatch": 56, "load": LOAD}, COMPUTED),
    ],
    ids=["within-below", "within-above", "far-off", "unknown-current", "other-accelerator"],
)
def test_running_batch_is_kept_only_within_tolerance(current: dict[str, Any], expected_a100: int) -> None:
    assert batches(current)["A100"] == expected_a100


def test_tolerance_zero_and_override_disable_stickiness() -> None:
    current = {"accelerator": "A100", "maxBatch": 56, "load": LOAD}
    assert batches(current, OptimizerSettings(batch_tolerance=0))["A100"] == COMPUTED
    assert batches(current, maxBatchSize=48)["A100"] == 48


def test_kept_batch_is_what_the_replicas_are_sized_for() -> None:
    kept = build_problem(
        system(server(out=256, currentAlloc={"accelerator": "A100", "maxBatch": 50, "load": LOAD})),
        OptimizerSettings(),
    )
    fresh = build_problem(system(server(out=256, currentAlloc={"load": LOAD})), OptimizerSettings())
    a100_kept = next(c for c in kept.servers[0].candidates if c.accelerator == "A100")
    a100_fresh = next(c for c in fresh.servers[0].candidates if c.accelerator == "A100")
    assert a100_kept.max_batch == 50 and a100_fresh.max_batch == COMPUTED
    assert a100_kept.max_rate_per_replica_rps != a100_fresh.max_rate_per_replica_rps
