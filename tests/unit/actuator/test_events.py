"""Events off the critical path: the broadcaster's queue, its bounds, its shutdown flush, /metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from actuator.app import Actuator, make_app
from actuator.events import EventBroadcaster, InlineEvents
from contract.update import Outcome, UpdateRequest
from plumbing.client import ErrorKind, UpstreamError
from tests.unit.actuator.fakes import (
    NS,
    PLACEMENT,
    FakeKube,
    decision,
    deployment,
    server,
    settings,
    solution,
)

BOUND_S = 5.0  # every wait in these tests is bounded


def _event(name: str) -> dict[str, Any]:
    return {"involvedObject": {"name": name}, "reason": "InfernoScaled"}


class GatedPost:
    """A create_event that waits for ``gate``; records what it posted and the peak in flight."""

    def __init__(self, fail_names: frozenset[str] = frozenset()) -> None:
        self.gate = asyncio.Event()
        self.posted: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.fail_names = fail_names

    async def __call__(self, namespace: str, event: dict[str, Any]) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.wait_for(self.gate.wait(), BOUND_S)
            name = event["involvedObject"]["name"]
            if name in self.fail_names:
                raise UpstreamError(ErrorKind.PERMANENT, "forbidden", 403)
            self.posted.append(name)
        finally:
            self.in_flight -= 1


async def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def test_record_returns_before_the_event_is_posted_and_workers_post_it_later() -> None:
    post = GatedPost()
    events = EventBroadcaster(post, queue_size=10, concurrency=2)
    for name in ("a", "b", "c"):
        await events.record(NS, _event(name))
    assert post.posted == [] and events.pending() == 3
    post.gate.set()
    await _until(lambda: events.pending() == 0, "the queue to drain")
    assert sorted(post.posted) == ["a", "b", "c"]
    assert (events.counts.posted, events.counts.failed, events.counts.dropped) == (3, 0, 0)
    await events.close(BOUND_S)


async def test_posts_at_most_concurrency_at_once() -> None:
    post = GatedPost()
    events = EventBroadcaster(post, queue_size=100, concurrency=3)
    for i in range(20):
        await events.record(NS, _event(f"d{i}"))
    await _until(lambda: post.in_flight == 3, "three posts in flight")
    await asyncio.sleep(0.02)  # give any extra worker the chance to start a fourth
    assert post.peak == 3
    post.gate.set()
    await _until(lambda: events.pending() == 0, "the queue to drain")
    assert len(post.posted) == 20 and post.peak == 3
    await events.close(BOUND_S)


async def test_full_queue_drops_and_counts_never_blocks() -> None:
    post = GatedPost()
    events = EventBroadcaster(post, queue_size=2, concurrency=1)
    started = time.monotonic()
    for i in range(5):  # the worker has not run yet: 2 fit, 3 are dropped
        await events.record(NS, _event(f"d{i}"))
    assert time.monotonic() - started < 1.0
    assert events.counts.dropped == 3 and events.pending() == 2
    post.gate.set()
    await _until(lambda: events.pending() == 0, "the queue to drain")
    assert post.posted == ["d0", "d1"]
    await events.close(BOUND_S)


async def test_failed_post_is_counted_and_the_others_still_go_out() -> None:
    post = GatedPost(fail_names=frozenset({"bad"}))
    post.gate.set()
    events = EventBroadcaster(post, queue_size=10, concurrency=1)
    for name in ("ok1", "bad", "ok2"):
        await events.record(NS, _event(name))
    await events.close(BOUND_S)
    assert post.posted == ["ok1", "ok2"]
    assert (events.counts.posted, events.counts.failed, events.counts.lost) == (2, 1, 0)


async def test_close_flushes_what_is_queued() -> None:
    post = GatedPost()
    post.gate.set()
    events = EventBroadcaster(post, queue_size=10, concurrency=2)
    for i in range(6):
        await events.record(NS, _event(f"d{i}"))
    await events.close(BOUND_S)
    assert len(post.posted) == 6 and events.counts.lost == 0 and events.pending() == 0


async def test_close_is_bounded_in_time_and_counts_the_rest_as_lost() -> None:
    post = GatedPost()  # the API server never answers
    events = EventBroadcaster(post, queue_size=10, concurrency=1)
    for i in range(4):
        await events.record(NS, _event(f"d{i}"))
    await _until(lambda: post.in_flight == 1, "one post in flight")
    started = time.monotonic()
    await events.close(0.05)
    assert time.monotonic() - started < 1.0
    assert events.counts.lost == 4 and post.posted == []
    await events.record(NS, _event("late"))  # after close: dropped, not queued
    assert events.counts.dropped == 1 and events.pending() == 0


@pytest.mark.parametrize(("queue_size", "concurrency"), [(0, 1), (1, 0)], ids=["no-queue", "no-workers"])
def test_bad_bounds_are_refused(queue_size: int, concurrency: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        EventBroadcaster(GatedPost(), queue_size=queue_size, concurrency=concurrency)


def _request(replicas: int) -> UpdateRequest:
    return UpdateRequest(
        cycle_id="c9",
        solution=solution(decision(replicas=replicas)),
        servers=[server()],
        placement=PLACEMENT,
    )


async def test_update_answers_once_patched_while_the_event_is_still_queued() -> None:
    kube = FakeKube(deployment())
    post = GatedPost()
    events = EventBroadcaster(post, queue_size=10, concurrency=1)
    actuator = Actuator(kube, settings(), events=events)
    result = await asyncio.wait_for(actuator.update(_request(replicas=3)), BOUND_S)
    assert result.actions[0].outcome is Outcome.APPLIED
    assert kube.objects[(NS, "llama")]["spec"]["replicas"] == 3
    assert post.posted == [] and events.pending() == 1
    post.gate.set()
    await events.close(BOUND_S)
    assert post.posted == ["llama"]


async def test_without_a_broadcaster_events_are_posted_inside_the_cycle() -> None:
    kube = FakeKube(deployment())
    actuator = Actuator(kube, settings())
    assert isinstance(actuator.events, InlineEvents)
    await actuator.update(_request(replicas=3))
    assert [e["reason"] for e in kube.events] == ["InfernoScaled"]
    assert actuator.events.counts.posted == 1


async def test_metrics_show_the_counts_and_shutdown_flushes_the_queue() -> None:
    kube = FakeKube(deployment())
    post = GatedPost()
    events = EventBroadcaster(post, queue_size=10, concurrency=1)
    actuator = Actuator(kube, settings(event_flush_timeout_s=BOUND_S), events=events)
    client = TestClient(TestServer(make_app(actuator)))
    await client.start_server()
    try:
        resp = await client.post("/update", json=_request(replicas=3).model_dump(mode="json"))
        assert resp.status == 200
        text = await (await client.get("/metrics")).text()
        assert "inferno_actuator_events_pending 1.0" in text
        assert 'inferno_actuator_events_total{outcome="posted"} 0.0' in text
        post.gate.set()
    finally:
        await client.close()  # the app's shutdown: flush within event_flush_timeout_s
    assert post.posted == ["llama"] and events.counts.posted == 1 and events.pending() == 0


async def test_paused_holds_posting_back_until_the_block_ends() -> None:
    post = GatedPost()
    post.gate.set()
    events = EventBroadcaster(post, queue_size=10, concurrency=2)
    with events.paused():
        for name in ("a", "b"):
            await events.record(NS, _event(name))
        await asyncio.sleep(0.05)  # the workers run, but may not post
        assert post.posted == [] and events.pending() == 2
    await _until(lambda: events.pending() == 0, "the queue to drain after the pause")
    assert sorted(post.posted) == ["a", "b"]
    await events.close(BOUND_S)


async def test_close_flushes_even_while_paused() -> None:
    post = GatedPost()
    post.gate.set()
    events = EventBroadcaster(post, queue_size=10, concurrency=1)
    with events.paused():
        await events.record(NS, _event("a"))
        await events.close(BOUND_S)
    assert post.posted == ["a"] and events.counts.lost == 0
