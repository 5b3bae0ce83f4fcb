"""Candidate building (optimizer.candidates.build_problem) and the public predict()."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from contract.data.loader import load_system_dir
from contract.data.perf import DecodeOnlyPerf
from contract.data.system import SystemData
from contract.steps import texts
from optimizer.candidates import build_problem, build_problem_with_context
from optimizer.model.predict import predict, predict_many, predict_requests
from optimizer.model.service_time import service_model
from optimizer.model.sizing import SizingRequest, Targets
from optimizer.settings import OptimizerSettings
from optimizer.solver.problem import ServerProblem
from tests.conftest import REFERENCE_SETS

SETTINGS = OptimizerSettings()


def server(name: str = "s", **fields: Any) -> dict[str, Any]:
    load = {"arrivalRate": fields.pop("rpm", 60), "avgInTokens": 128, "avgOutTokens": fields.pop("out", 1024)}
    return {"name": name, "class": "Premium", "model": "granite_13b", "currentAlloc": {"load": load}} | fields


def system(*servers: dict[str, Any], classes: list[dict[str, Any]] | None = None) -> SystemData:
    """Three units (L4 x2 per replica, A100, 2xA100), granite_13b decode-only on each."""
    perf = [("L4", 2, 137.2, 2.73, 9), ("A100", 1, 20.58, 0.41, 32), ("2xA100", 1, 12.0, 0.25, 48)]
    targets = [{"model": "granite_13b", "slo-itl": 40, "slo-ttft": 1000}]
    return SystemData.model_validate(
        {
            "accelerators": {
                "accelerators": [
                    {"name": "L4", "type": "L4", "cost": 6},
                    {"name": "A100", "type": "A100", "cost": 40},
                    {"name": "2xA100", "type": "A100", "multiplicity": 2, "cost": 80},
                ]
            },
            "models": {
                "models": [
                    {
                        "name": "granite_13b",
                        "acc": a,
                        "accCount": c,
                        "alpha": al,
                        "beta": be,
                        "maxBatchSize": m,
                        "atTokens": 512,
                    }
                    for a, c, al, be, m in perf
                ]
            },
            "serviceClasses": {
                "serviceClasses": classes
                if classes is not None
                else [
                    {"name": "Premium", "priority": 1, "modelTargets": targets},
                    {
                        "name": "Bulk",
                        "priority": 5,
                        "modelTargets": [{"model": "granite_13b", "slo-tps": 3000}],
                    },
                    {"name": "Empty", "priority": 7, "modelTargets": []},
                ]
            },
            "servers": {"servers": list(servers)},
            "capacity": {"count": [{"type": "L4", "count": 64}, {"type": "A100", "count": 64}]},
        }
    )


def only(problem_and_context: tuple[Any, Any]) -> tuple[ServerProblem, Any]:
    problem, contexts = problem_and_context
    (sp,) = problem.servers
    return sp, contexts[sp.name]


def test_candidates_sorted_costed_and_sized_at_actual_load() -> None:
    sp, ctx = only(build_problem_with_context(system(server(rpm=120)), SETTINGS))
    assert ctx.demand_rps == pytest.approx(2.0)
    assert [c.accelerator for c in sp.candidates] == ["2xA100", "A100"]
    assert any(r.startswith("L4: batch 4: ITL") for r in sp.infeasible)
    two, a100 = sp.candidates
    assert (a100.acc_type, a100.cost_per_replica, a100.cards_per_replica) == ("A100", 40, 1)
    assert (two.acc_type, two.cost_per_replica, two.cards_per_replica) == ("A100", 80, 2)
    assert [c.cost for c in sp.candidates] == sorted(c.cost for c in sp.candidates)
    for c in sp.candidates:
        assert c.replicas == math.ceil(2.0 / c.max_rate_per_replica_rps)
        model = service_model(
            DecodeOnlyPerf(20.58, 0.41) if c.accelerator == "A100" else DecodeOnlyPerf(12.0, 0.25), 128, 1024
        )
        (actual,) = predict_many(
            [model], [c.max_batch], [10 * c.max_batch], rates_rps=[2.0 / c.replicas], percentiles=[0]
        )
        assert (c.itl_ms, c.ttft_ms, c.utilization) == pytest.approx(
            (actual.itl_ms, actual.ttft_ms, actual.utilization), rel=1e-12
        )
        assert c.itl_ms <= 40 and c.ttft_ms <= 1000
        assert "limited by" in ctx.candidate_notes[c.accelerator]


@pytest.mark.parametrize(
    ("fields", "replicas"),
    [
        ({"rpm": 0}, 0),
        ({"rpm": 0, "minNumReplicas": 2}, 2),
        ({"rpm": 6, "minNumReplicas": 3}, 3),
        ({"rpm": 6}, 1),
    ],
    ids=["zero-demand", "zero-demand-min", "min-above-need", "small-demand"],
)
def test_replica_floor(fields: dict[str, Any], replicas: int) -> None:
    sp, _ = only(build_problem_with_context(system(server(**fields)), SETTINGS))
    assert sp.candidates and all(c.replicas == replicas for c in sp.candidates)


def test_max_replicas_is_left_to_the_solver_with_a_note() -> None:
    sp, ctx = only(build_problem_with_context(system(server(rpm=120, maxNumReplicas=2)), SETTINGS))
    assert sp.max_replicas == 2
    by_acc = {c.accelerator: c for c in sp.candidates}
    assert set(by_acc) == {"A100", "2xA100"}
    assert by_acc["A100"].replicas == math.ceil(2.0 / by_acc["A100"].max_rate_per_replica_rps) > 2
    assert "needs 5 replicas > maxNumReplicas 2: at most 42% of demand" in ctx.candidate_notes["A100"]
    assert "maxNumReplicas" not in ctx.candidate_notes["2xA100"]
    assert by_acc["A100"].itl_ms <= 40  # predicted for the full allocation


def test_build_problem_is_the_problem_of_the_context_variant() -> None:
    data = system(server("a", rpm=120), server("b", rpm=0, minNumReplicas=1))
    assert build_problem(data, SETTINGS) == build_problem_with_context(data, SETTINGS)[0]


def test_keep_accelerator() -> None:
    kept = server(
        keepAccelerator=True,
        currentAlloc={
            "accelerator": "2xA100",
            "numReplicas": 3,
            "load": {"arrivalRate": 60, "avgOutTokens": 1024},
        },
    )
    sp, _ = only(build_problem_with_context(system(kept), SETTINGS))
    assert [c.accelerator for c in sp.candidates] == ["2xA100"]
    assert (sp.current_accelerator, sp.current_replicas) == ("2xA100", 3)


def test_class_missing_or_without_targets() -> None:
    problem, contexts = build_problem_with_context(
        system(server("a", **{"class": "Gold"}), server("b", **{"class": "Empty"})), SETTINGS
    )
    a, b = problem.servers
    assert a.priority == 100 and b.priority == 7
    assert any("'Gold' not in serviceclass-data" in r for r in texts(contexts["a"].reasons))
    assert any("sets no targets" in r for r in texts(contexts["b"].reasons))
    for sp in (a, b):  # no targets: every accelerator, at the throughput cap of saturation
        assert {c.accelerator for c in sp.candidates} == {"L4", "A100", "2xA100"}


def test_throughput_target_sets_demand() -> None:
    sp, ctx = only(build_problem_with_context(system(server(rpm=60, **{"class": "Bulk"})), SETTINGS))
    assert ctx.demand_rps == pytest.approx(3000 / 1024)
    assert sp.demand_rps == ctx.demand_rps
    assert any("slo-tps" in r for r in texts(ctx.reasons))


def test_missing_output_tokens_assume_at_tokens() -> None:
    bare = server(currentAlloc={"load": {"arrivalRate": 60}})
    _, ctx = only(build_problem_with_context(system(bare), SETTINGS))
    assert ctx.out_tokens == 512
    assert any("assumed atTokens = 512" in r for r in texts(ctx.reasons))


def test_infeasible_everywhere_lists_every_accelerator() -> None:
    strict = [{"name": "Premium", "priority": 1, "modelTargets": [{"model": "granite_13b", "slo-itl": 5}]}]
    sp, _ = only(build_problem_with_context(system(server(), classes=strict), SETTINGS))
    assert sp.candidates == ()
    assert sorted(r.split(":")[0] for r in sp.infeasible) == ["2xA100", "A100", "L4"]


def test_optimal_batch_policy_is_never_worse() -> None:
    default, _ = only(build_problem_with_context(system(server(out=128)), SETTINGS))
    optimal, _ = only(
        build_problem_with_context(system(server(out=128)), OptimizerSettings(batch_policy="optimal"))
    )
    rate = {c.accelerator: c for c in default.candidates}
    for c in optimal.candidates:
        assert c.max_batch <= rate[c.accelerator].max_batch
        assert c.max_rate_per_replica_rps >= 0.99 * rate[c.accelerator].max_rate_per_replica_rps


@pytest.mark.parametrize("data_dir", REFERENCE_SETS, ids=lambda p: f"{p.parent.name}-{p.name}")
def test_reference_sets(data_dir: Path) -> None:
    data = load_system_dir(data_dir)
    problem, contexts = build_problem_with_context(data, SETTINGS)
    assert [s.name for s in problem.servers] == [s.name for s in data.servers.servers]
    assert problem.capacity_cards == data.capacity.cards_by_type()
    for sp in problem.servers:
        ctx = contexts[sp.name]
        assert sp.candidates or sp.infeasible
        assert [c.cost for c in sp.candidates] == sorted(c.cost for c in sp.candidates)
        for c in sp.candidates:
            assert c.replicas >= math.ceil(ctx.demand_rps / c.max_rate_per_replica_rps - 1e-9)
            if ctx.targets.itl_ms:
                assert c.itl_ms <= ctx.targets.itl_ms * (1 + 1e-9)
            if ctx.targets.ttft_ms:
                assert c.ttft_ms <= ctx.targets.ttft_ms * (1 + 1e-9)


def test_predict_scalar_matches_vector_and_handles_zero_load() -> None:
    perf = DecodeOnlyPerf(20.58, 0.41)
    one = predict(perf, 16, 0, 1024, 0.3, SETTINGS, ttft_percentile=95)
    model = service_model(perf, 0, 1024)
    (many,) = predict_many([model], [16], [160], rates_rps=[0.3], percentiles=[95])
    assert one == many
    assert one.itl_ms == pytest.approx(24.011, abs=1e-3)
    assert one.ttft_percentile_ms >= one.itl_ms
    idle = predict(perf, 16, 0, 1024, 0.0, SETTINGS)
    assert (idle.rate_rps, idle.throughput_rps, idle.utilization) == (0.0, 0.0, 0.0)
    assert idle.itl_ms == pytest.approx(20.99, rel=1e-9)
    assert idle.ttft_percentile_ms == 0.0


def test_predict_requests_shares_rows_and_matches_predict_many() -> None:
    model = service_model(DecodeOnlyPerf(20.58, 0.41), 128, 1024)
    a = SizingRequest(model, 16, 160, Targets(ttft_ms=2000, ttft_percentile=95))
    b = SizingRequest(model, 8, 80, Targets(itl_ms=30))
    got = predict_requests([a, b, a, a], [0.2, 0.2, 0.2, 0.1])
    want = predict_many(
        [model] * 3, [16, 8, 16], [160, 80, 160], rates_rps=[0.2, 0.2, 0.1], percentiles=[95, 0, 95]
    )
    assert got == [want[0], want[1], want[0], want[2]]
    assert got[0].ttft_percentile_ms >= got[0].itl_ms > 0  # p95 of TTFT: prefill (= ITL) plus a wait
    assert got[1].ttft_percentile_ms == 0.0
