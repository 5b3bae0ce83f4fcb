"""The rollout budget end to end: real Deployment status in, at most the budget's rollouts out.

12 labelled Deployments at batch 16 on the real kube-apiserver (the cycle benchmark's world,
benchmarks/cycle_world.py): 9 of them want a new pod template (batch or GPU type). With a budget
of 2 (``INFERNO_OPTIMIZER_ROLLOUT_BUDGET_MIN=2``, share 0) the first cycle starts 2 and says the
others wait; the second, after up to 30 s for those rollouts, counts what the collector read from
the Deployments' status as still rolling and never starts more than the room left. ~30-60 s.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.bench_cycle import run_case
from tests.e2e.cluster.local_cluster import LocalCluster
from tests.e2e.cluster.prometheus import LocalPrometheus

BUDGET_ENV = {"INFERNO_OPTIMIZER_ROLLOUT_BUDGET_MIN": "2", "INFERNO_OPTIMIZER_ROLLOUT_BUDGET_SHARE": "0"}
NOTE = re.compile(
    r"rollout budget: 2 of 12 running servers may roll at a time, (\d+) still rolling; "
    r"(\d+) start this cycle, (\d+) wait"
)


def test_a_cycle_starts_no_more_rollouts_than_the_budget(
    local_cluster: LocalCluster, local_prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    case = run_case(local_cluster, local_prometheus, n_servers=12, cycles=2, work_dir=tmp_path,
                    settle_timeout_s=60, rollout_timeout_s=30, service_env=BUDGET_ENV)  # fmt: skip
    first, second = case["cycles"]
    assert first["outcome"] == "ok" and (first["servers"], first["trusted"]) == (12, 12), first
    match = NOTE.search(first["rollout_budget"])
    assert match, first["rollout_budget"]
    in_flight, started, waiting = map(int, match.groups())
    assert (in_flight, started) == (0, 2), first["rollout_budget"]
    assert waiting >= 5, first["rollout_budget"]  # 9 want a new template; some wait as they run
    match = NOTE.search(second["rollout_budget"])
    assert match, second["rollout_budget"]
    in_flight, started, _ = map(int, match.groups())
    assert started <= max(2 - in_flight, 0), second["rollout_budget"]
