"""Replicas that are Pending or starting serve nothing; removal drains or drops; load is split."""

from __future__ import annotations

import pytest

from load_emulator.emulated_cluster import EmulatedCluster
from load_emulator.engine import EngineConfig
from load_emulator.patterns import Constant
from load_emulator.tokens import TokenSpec
from tests.unit.load_emulator.builders import DEP, NS, decode_only, one_server

LOAD = Constant(600.0, TokenSpec(0, 50, "geometric"))  # 10 req/s


def _served_by_pod(engine: object) -> dict[str, float]:
    return {r.pod: r.metrics.success_by_reason["stop"] for _, r in engine.replicas()}  # type: ignore[attr-defined]


def test_pending_replica_for_lack_of_cards_serves_nothing() -> None:
    engine, cluster = one_server(decode_only(5, 0.1, max_batch=64), LOAD, replicas=3, capacity=2)
    (state,) = cluster.deployments(0.0)
    assert [p.ready_since_s is not None for p in state.pods].count(False) == 1
    engine.advance_to(120.0)
    served = _served_by_pod(engine)
    assert len(served) == 2 and all(v > 300 for v in served.values())
    pending = next(p.name for p in state.pods if p.ready_since_s is None)
    assert pending not in served
    # More cards: the Pending pod binds at the next sync and serves too.
    cluster.capacity = {"A": 3}
    engine.sync()
    engine.advance_to(240.0)
    assert len(_served_by_pod(engine)) == 3


def test_starting_replicas_serve_nothing_until_ready() -> None:
    engine, _ = one_server(decode_only(5, 0.1, max_batch=64), LOAD, replicas=1, startup_delay_s=100.0)
    engine.advance_to(99.0)
    w = engine.window(DEP, 0, 99)
    assert w.completed == 0 and w.rejected == w.arrivals > 800
    engine.advance_to(200.0)
    late = engine.window(DEP, 101, 200)
    assert late.rejected == 0 and late.completed > 800


def test_engine_startup_delay_adds_to_readiness() -> None:
    config = EngineConfig(sync_period_s=0, startup_delay_s=30.0)
    engine, _ = one_server(decode_only(5, 0.1, max_batch=64), LOAD, config=config)
    engine.advance_to(60.0)
    assert engine.window(DEP, 0, 29.9).completed == 0
    assert engine.window(DEP, 31, 60).rejected == 0


@pytest.mark.parametrize(("removal", "expect_aborts"), [("drop", True), ("drain", False)])
def test_removed_replica_drops_or_drains(removal: str, expect_aborts: bool) -> None:
    config = EngineConfig(sync_period_s=0, removal=removal, drain_grace_s=600.0)  # type: ignore[arg-type]
    engine, cluster = one_server(decode_only(20, 1, max_batch=8), LOAD, replicas=2, config=config)
    engine.advance_to(60.0)
    cluster.scale(NS, DEP, 1, 60.0)
    engine.sync()
    engine.advance_to(300.0)
    w = engine.window(DEP, 0, 300)
    assert (w.aborted > 0) is expect_aborts
    assert len(list(engine.replicas())) == 1  # the drained pod is gone once empty


def test_drain_grace_period_aborts_what_is_left() -> None:
    config = EngineConfig(sync_period_s=0, removal="drain", drain_grace_s=5.0)
    overload = Constant(6000.0, TokenSpec(0, 200, "deterministic"))
    engine, cluster = one_server(decode_only(20, 1, max_batch=4), overload, replicas=2, config=config)
    engine.advance_to(30.0)
    cluster.scale(NS, DEP, 1, 30.0)
    engine.sync()
    engine.advance_to(34.0)
    assert len(list(engine.replicas())) == 2  # still draining
    engine.advance_to(36.0)
    assert len(list(engine.replicas())) == 1 and engine.window(DEP, 35, 36).aborted > 0


@pytest.mark.parametrize("routing", ["round-robin", "least-loaded"])
def test_load_is_split_across_ready_replicas(routing: str) -> None:
    config = EngineConfig(sync_period_s=0, routing=routing)  # type: ignore[arg-type]
    engine, _ = one_server(decode_only(5, 0.1, max_batch=64), LOAD, replicas=3, config=config)
    engine.advance_to(300.0)
    served = list(_served_by_pod(engine).values())
    assert sum(served) > 2800
    assert max(served) - min(served) <= 0.05 * sum(served) / 3


def test_rollout_replaces_pods_on_the_new_accelerator() -> None:
    cluster = EmulatedCluster({"A": ("A", 1), "B": ("B", 2)}, {"A": 2, "B": 4}, startup_delay_s=10.0)
    cluster.add_deployment(NS, DEP, model="m", accelerator="A", max_batch=8, replicas=2)
    cluster.deployments(20.0)
    cluster.set_template(NS, DEP, 20.0, accelerator="B")
    (mid,) = cluster.deployments(25.0)
    by_acc = sorted(
        (p.accelerator, p.ready_since_s is not None and p.ready_since_s <= 25.0) for p in mid.pods
    )
    # floor(0.25 * 2) = 0 old pods go at once; two new pods start on B (2 cards each).
    assert by_acc == [("A", True), ("A", True), ("B", False), ("B", False)]
    (after,) = cluster.deployments(31.0)
    assert sorted(p.accelerator for p in after.pods) == ["B", "B"]
    assert cluster.used_cards() == {"B": 4}


def test_scale_down_deletes_pending_then_starting_then_newest() -> None:
    cluster = EmulatedCluster({"A": ("A", 1)}, {"A": 3}, startup_delay_s=10.0)
    cluster.add_deployment(NS, DEP, model="m", accelerator="A", max_batch=8, replicas=2, now_s=0.0)
    cluster.scale(NS, DEP, 4, 20.0)  # one more binds (starting), one stays Pending
    (state,) = cluster.deployments(21.0)
    old = {p.name for p in state.pods if p.ready_since_s == 10.0}
    cluster.scale(NS, DEP, 2, 21.0)
    (state,) = cluster.deployments(21.0)
    assert {p.name for p in state.pods} == old


def test_deployment_appearing_mid_run_starts_its_load_then() -> None:
    engine, cluster = one_server(decode_only(5, 0.1, max_batch=64), LOAD, replicas=1)
    engine.workloads = {**engine.workloads, "late": LOAD}  # type: ignore[dict-item]
    engine.advance_to(100.0)
    cluster.add_deployment(NS, "late", model="m", accelerator="A", max_batch=64, replicas=1, now_s=100.0)
    engine.sync()
    engine.advance_to(200.0)
    late = engine.window("late", 0, 200)
    assert late.arrivals == pytest.approx(1000, rel=0.15) and late.rejected == 0
    assert min(engine.stats("late").arrival_t) >= 100.0


def test_each_model_and_accelerator_starts_in_its_own_time() -> None:
    cluster = EmulatedCluster(
        {"A": ("A", 1), "B": ("B", 1)},
        {"A": 4, "B": 4},
        startup_delay_s=10.0,
        startup_by_model_s={("m", "B"): 300.0},
    )
    cluster.add_deployment(NS, DEP, model="m", accelerator="A", max_batch=8, replicas=1, now_s=0.0)
    cluster.add_deployment(NS, "other", model="m", accelerator="B", max_batch=8, replicas=1, now_s=0.0)
    ready = {s.name: s.pods[0].ready_since_s for s in cluster.deployments(1.0)}
    assert ready == {DEP: 10.0, "other": 300.0}
    cluster.set_template(NS, DEP, 400.0, accelerator="B")  # the new pods take B's time
    (dep, _) = cluster.deployments(401.0)
    assert sorted(p.ready_since_s or 0.0 for p in dep.pods if p.accelerator == "B") == [700.0]
