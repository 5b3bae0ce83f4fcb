"""Replica churn at a constant load when capacity runs out, on the whole loop at virtual time.

World: ``samples/small``'s three llama_13b servers on 24 G2 cards
(tests/sim/test_hold_down_and_window_floor_sim.py)
at 2x their sample load, constant (Poisson arrivals, so the measured rates are noisy): Premium and
Bronze fully served, Free partial on what is left. With the window floors applied after the
partial allocations grow, a one-replica dip in Premium's or Bronze's measured demand gives the card
to Free at once and takes it back when the dip passes: 39 (seed 2) and 31 (seed 5) replica changes
after warm-up (900-2400 s, 25 cycles), mostly Free and Bronze going up and down by one. With window
floors held before partial allocations grow (optimizer/solver/floors.py): 12 and 10, each following
a lasting change of a measured demand; the test allows at most ``MAX_CHANGES``.
The unit twin with the exact mechanism is tests/unit/optimizer/test_partial_churn.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.sim.test_hold_down_and_window_floor_sim import G2_CARDS, by_server, by_time, constant_run, only_g2

pytestmark = pytest.mark.sim

WARMUP_S = 900.0
MAX_CHANGES = 20  # per run of 25 steady cycles, over the three servers


@pytest.mark.parametrize("seed", [2, 5])
def test_steady_load_under_exhausted_capacity_changes_few_replicas(tmp_path: Path, seed: int) -> None:
    what_if = constant_run(only_g2(tmp_path), scale=2, duration_s=2400, seed=seed)
    servers = by_server(what_if.rows)
    changes = {
        name: [
            (b.t_s, a.replicas, b.replicas)
            for a, b in itertools.pairwise(rows)
            if b.t_s > WARMUP_S and (a.replicas, a.accelerator) != (b.replicas, b.accelerator)
        ]
        for name, rows in servers.items()
    }
    assert sum(len(c) for c in changes.values()) <= MAX_CHANGES, changes
    placed = {t: sum(r.replicas for r in group) for t, group in by_time(servers)}
    assert all(n <= G2_CARDS for t, n in placed.items() if t > WARMUP_S), placed
