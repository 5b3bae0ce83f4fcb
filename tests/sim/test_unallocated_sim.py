"""The whole loop at virtual time when capacity runs out: no server left unallocated while it holds
cards, nothing placed beyond the cards, higher-priority pods start.

World: ``samples/small``'s three llama_13b servers on 24 G2 cards
(tests/sim/test_hold_down_and_window_floor_sim.py),
at 3x their sample load: Premium and Bronze alone would need more than the 24 cards. Without the
capacity reservations (optimizer/solver/reservations.py) the optimizer leaves Free unallocated in
every cycle and gives its cards away; the actuator keeps Free's 13 replicas, so 30 of 30 cycles
place up to 37 replicas on 24 cards and Premium runs 4-7 Ready pods of the 12-20 it is given. With
them, Free is brought down to its floor on its own cards and what runs fits.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.sim.test_hold_down_and_window_floor_sim import (
    G2_CARDS,
    SHARED,
    by_server,
    by_time,
    constant_run,
    only_g2,
)

pytestmark = pytest.mark.sim


def test_a_squeezed_low_priority_server_comes_down_to_its_floor_and_what_runs_fits(tmp_path: Path) -> None:
    what_if = constant_run(only_g2(tmp_path), scale=3, duration_s=1500, seed=3)
    rows = by_server(what_if.rows)
    free, premium = rows["Free-llama_13b"], rows["Premium-llama_13b"]

    statuses = [
        d.status for report in what_if.reports for d in report.decisions or [] if d.server == SHARED[2]
    ]
    assert statuses and "unallocated" not in statuses, statuses
    assert all(r.replicas >= 1 for r in free), "never to zero"
    assert free[-1].replicas < free[0].replicas, [(r.t_s, r.replicas) for r in free]
    # The first cycle is exempt: the actuator's own window holds every server at its count then
    # (no floors known yet, actuator/README.md "First sight").
    first = min(r.t_s for r in what_if.rows)
    placed = {t: sum(r.replicas for r in group) for t, group in by_time(rows)}
    assert all(n <= G2_CARDS for t, n in placed.items() if t > first), placed
    # Premium's pods start within a cycle (start-up time); none waits for a card Free kept.
    late = [r for r in premium if r.t_s > first + 60]
    assert all(b.ready >= min(a.replicas, b.replicas) for a, b in itertools.pairwise(late)), [
        (r.t_s, r.replicas, r.ready) for r in premium
    ]
    reasons = [
        r for report in what_if.reports for a in report.actions if a.server == SHARED[2] for r in a.reasons
    ]
    assert any("capacity floor: runs on G2" in r for r in reasons)
