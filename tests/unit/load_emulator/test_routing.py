"""The router's choice: round-robin in turn, least-loaded by waiting + running, then KV usage, then turn."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from load_emulator.engine import EngineConfig
from load_emulator.patterns import Constant
from load_emulator.routing import ROUTINGS, Routing, pick_replica
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
    ids=[
        "rr-turn-0",
        "rr-turn-wraps",
        "ll-fewest",
        "ll-tie-lower-kv",
        "ll-tie-turn",
        "ll-tie-turn-wraps",
        "ll-tie-skips-busy",
    ],
)
def test_pick_replica(routing: Routing, spec: list[tuple[int, float]], turn: int, expected: str) -> None:
    chosen = pick_replica(_fleet(*spec), routing, turn)
    assert chosen is not None and chosen.name == expected


@pytest.mark.parametrize("routing", ["round-robin", "least-loaded"])
def test_nothing_serving_picks_nothing(routing: Routing) -> None:
    assert pick_replica([], routing, 3) is None


def test_least_loaded_gives_new_pods_the_arrivals_while_the_first_one_drains() -> None:
    """One overloaded pod queues a backlog; two more come. Least-loaded sends the arrivals to the new
    pods until the first one's queue is down to theirs; round-robin keeps a third of them behind it."""
    overload = Constant(1200.0, TokenSpec(0, 100, "deterministic"))  # 20 req/s
    ttft_p95_ms: dict[Routing, float] = {}
    for routing in ROUTINGS:
        config = EngineConfig(sync_period_s=0, routing=routing)
        engine, cluster = one_server(decode_only(10, 0.5, max_batch=16), overload, replicas=1, config=config)
        engine.advance_to(20.0)
        assert max(r.load for _, r in engine.replicas()) > 50  # the backlog
        cluster.scale(NS, DEP, 3, 20.0)
        engine.sync()
        engine.advance_to(60.0)
        ttft_p95_ms[routing] = engine.window(DEP, 50.0, 60.0).ttft_p95_ms
    assert ttft_p95_ms["least-loaded"] < 0.5 * ttft_p95_ms["round-robin"]
