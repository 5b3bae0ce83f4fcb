"""The backlog drain term when the queue already shrinks: the same backlog is not counted twice.

``observe(..., backlog_drain_s)`` adds ``waiting / backlog_drain_s`` to the arrival rate so a
standing queue drains. When the queue already shrinks by ``-deriv(waiting)`` req/s, those
requests are completions the rate counts already; only what the drain lacks is added:
``max(0, waiting / backlog_drain_s - max(0, -growth))``. With the full drain term on top, a
server that has just caught up on a spike (completions = arrivals + the backlog it is draining)
counts its backlog twice (benchmark 4: Bronze sized at 445 req/min for ~300 arriving, 6 MI300X
where 4 serve).
Fixture (``fakes.healthy_answers``): 2 completions/s (120 req/min).
"""

from __future__ import annotations

from typing import Any

import pytest

from collector.load import observe
from collector.metrics import build_snapshot, key_resolver
from tests.unit.collector.fakes import healthy_answers, sample

KEY = ("llm", "granite")
STALENESS_S = 120.0


def drained(**overrides: Any) -> tuple[float | None, tuple[str, ...]]:
    answers: dict[str, Any] = healthy_answers([KEY])
    for name, value in overrides.items():
        answers[name] = [sample(*KEY, value)]
    got = observe(build_snapshot(answers, key_resolver("deployment", [])), KEY, STALENESS_S, 120.0)
    return got.arrival_rpm, got.notes


@pytest.mark.parametrize(
    ("growth_rps", "waiting", "arrival_rpm"),
    [
        (0.0, 240, (2 + 2) * 60),  # standing queue: the whole drain term
        (1.0, 240, (2 + 1 + 2) * 60),  # growing: growth and drain, as before
        (-1.5, 240, (2 + 0.5) * 60),  # shrinking by 1.5 of the 2 req/s the drain wants: +0.5
        (-3.0, 240, 2 * 60),  # shrinking faster than the drain wants: nothing added
        (-0.5, 12, 2 * 60),  # a few waiting, shrinking: nothing added
    ],
    ids=["flat", "growing", "shrinking-slower", "shrinking-faster", "tail"],
)
def test_a_shrinking_queue_adds_only_what_its_drain_lacks(
    growth_rps: float, waiting: float, arrival_rpm: float
) -> None:
    got, notes = drained(queue_growth=growth_rps, waiting=waiting)
    assert got == pytest.approx(arrival_rpm)
    if growth_rps < 0:
        assert any(f"the queue already shrinks by {-growth_rps:g} req/s" in n for n in notes), notes


def test_never_below_the_completion_rate() -> None:
    # A queue emptied by aborts (pods deleted) shrinks without completions: the rate stays the
    # completion rate, not completions minus the shrink.
    got, _ = drained(queue_growth=-50.0, waiting=100)
    assert got == pytest.approx(120.0)
