"""The router's choice: round-robin in turn, least-loaded by waiting + running, then KV usage, then turn."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from load_emulator.engine import EngineConfig
from load_emulator.patterns import Constant
from load_emulator.routing import Routing, pick_replica
from load_emulator.tokens import TokenSpec
from tests.unit.load_emulator.builders import DEP, NS, decode_only, one_server


@dataclass
class _Replica:
    name: str
    load: int
    kv: float

    def kv_usage(self) -> float:
        return self.kv


def _fleet(*spec: tuple[int, float]) -> list[_Replica]:
    return [_Replica(f"p{i}", load, kv) for i, (load, kv) in enumerate(spec)]


@pytest.mark.parametrize(
    ("routing", "spec", "turn", "expected"),
    [
        ("round-robin", [(9, 0.9), (0, 0.0), (0, 0.0)], 0, "p0"),
        ("round-robin", [(9, 0.9), (0, 0.0), (0, 0.0)], 4, "p1"),
        ("least-loaded", [(9, 0.9), (3, 0.1), (2, 0.8)], 0, "p2"),
        ("least-loaded", [(4, 0.9), (1, 0.5), (1, 0.2)], 0, "p2"),
        ("least-loaded", [(1, 0.3), (1, 0.3), (1, 0.3)], 1, "p1"),
        ("least-loaded", [(1, 0.3), (1, 0.3), (1, 0.3)], 5, "p2"),
        ("least-loaded", [(0, 0.0), (7, 0.0), (0, 0.0)], 1, "p2"),
    ],
    ids=["rr-turn-0", "rr-turn-wraps", "ll-fewest", "ll-tie-lower-kv", "ll-tie-turn", "ll-tie-turn-wraps",
         "ll-tie-skips-busy"],  # fmt: skip
)
def test_pick_replica(routing: Routing, spec: list[tuple[int, float]], turn: int, expected: str) -> None:
    chosen = pick_replica(_fleet(*spec), routing, turn)
    assert chosen is not None and chosen.name == expected


@pytest.mark.parametrize("routing", ["round-robin", "least-loaded"])
def test_nothing_serving_picks_nothing(routing: Routing) -> None:
    assert pick_replica([], routing, 3) is None


def test_least_loaded_sends_arrivals_to_a_new_pod_while_the_old_one_drains() -> None:
    """One pod builds a backlog; a second one comes: least-loaded gives it the arrivals, round-robin half."""
    overload = Constant(1200.0, TokenSpec(0, 100, "deterministic"))  # 20 req/s, one pod serves ~10
    served = {}
    for routing in ("round-robin", "least-loaded"):
        config = EngineConfig(sync_period_s=0, routing=routing)  # type: ignore[arg-type]
        engine, cluster = one_server(decode_only(10, 0.5, max_batch=16), overload, replicas=1, config=config)
        engine.advance_to(20.0)
        backlog = max(r.load for _, r in engine.replicas())
        assert backlog > 50
        cluster.scale(NS, DEP, 3, 20.0)
        engine.sync()
        engine.advance_to(60.0)
        served[routing] = engine.window(DEP, 50.0, 60.0).ttft_p95_ms
    assert served["least-loaded"] < 0.5 * served["round-robin"]
