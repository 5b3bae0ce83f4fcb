"""The engine makes vLLM's own scheduling decisions: golden traces replayed step by step.

Each fixture in ``tests/fixtures/vllm_golden/`` was recorded from vLLM's own scheduler (0.33.0's
V1 ``Scheduler``, or 0.8.5's V0 one for ``"engine": "v0"``; driven standalone, the step time
given by the fixture's ``step_cost``; see the directory's README). Its requests go through ONE
emulated replica configured from the fixture's ``config``, driven the way the recording was: the
requests that have arrived by ``now`` join the queue before each step, an idle replica jumps to
the next arrival, ``now`` advances by each step's duration. The replica's step trace must match
the recording step by step (scheduled requests and tokens in order, preempted, finished, KV blocks
in use after scheduling, start and duration) and per request (first token, finish, preemptions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from load_emulator.reference_drive import drive_replica, replica_for
from load_emulator.replica import Request, StepTrace

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vllm_golden"
FILES = sorted(FIXTURES.glob("*.json"))
REL = 1e-9


def replay(doc: dict[str, Any]) -> tuple[list[StepTrace], dict[str, Request]]:
    replica = replica_for(doc["config"], doc["step_cost"], trace=True)
    specs = sorted(doc["requests"], key=lambda r: r["arrival_s"])  # stable: ties in list order
    requests = {
        s["id"]: Request(i, s["arrival_s"], s["in_tokens"], s["out_tokens"], name=s["id"])
        for i, s in enumerate(specs)
    }
    drive_replica(replica, [requests[s["id"]] for s in specs])
    assert replica.trace is not None
    return replica.trace, requests


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b), 1.0)


@pytest.fixture(params=FILES, ids=[p.stem for p in FILES])
def golden(request: pytest.FixtureRequest) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Path(request.param).read_text(encoding="utf-8"))
    return doc


def test_fixtures_exist() -> None:
    assert FILES, f"no golden traces in {FIXTURES}"


def test_every_step_matches_vllm(golden: dict[str, Any]) -> None:
    trace, _ = replay(golden)
    for i, (ours, theirs) in enumerate(zip(trace, golden["steps"], strict=False)):
        where = f"{golden['scenario']} step {i} at {theirs['start_s']:.6f} s"
        assert [list(x) for x in ours.scheduled] == theirs["scheduled"], where
        assert ours.preempted == theirs["preempted"], where
        assert sorted(ours.finished) == sorted(theirs["finished"]), where
        assert ours.kv_blocks_scheduled == theirs["kv_blocks_used"], where
        assert close(ours.start_s, theirs["start_s"]), (where, ours.start_s)
        assert close(ours.duration_s, theirs["duration_s"]), (where, ours.duration_s)
    assert len(trace) == len(golden["steps"])


def test_every_request_matches_vllm(golden: dict[str, Any]) -> None:
    _, requests = replay(golden)
    for row in golden["results"]:
        r = requests[row["id"]]
        assert close(r.first_token_s, row["first_token_s"]), (
            row["id"],
            r.first_token_s,
            row["first_token_s"],
        )
        assert close(r.finish_s, row["finish_s"]), (row["id"], r.finish_s, row["finish_s"])
        assert r.preemptions == row["preemptions"], row["id"]
