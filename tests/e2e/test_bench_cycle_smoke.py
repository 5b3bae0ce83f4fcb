"""The cycle benchmark (benchmarks/bench_cycle.py) at N=3, so its code cannot rot.

Runs `run_case` on the session's cluster and Prometheus: 3 labelled Deployments, their vLLM
series from the benchmark's one loopback exporter, the four services as processes, 2 cycles.
Asserts what the benchmark's numbers rest on (every server collected and trusted from
Prometheus, the fixed query count seen by the counting proxy, API calls counted from the
apiserver, stage times, peak RSS per service) and that it cleans up after itself. No timing
is asserted: speed is measured by the benchmark, not by tests. Takes ~20-30 s.
"""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from benchmarks.bench_cycle import run_case
from collector.promql import QUERIES
from tests.e2e.cluster.local_cluster import LocalCluster
from tests.e2e.cluster.prometheus import LocalPrometheus
from tests.e2e.harness.services import SERVICES


def test_bench_cycle_runs_at_three_servers(
    local_cluster: LocalCluster, local_prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    case = run_case(local_cluster, local_prometheus, n_servers=3, cycles=2, work_dir=tmp_path,
                    settle_timeout_s=30, rollout_timeout_s=0)  # fmt: skip

    assert case["n_servers"] == 3
    assert len(case["cycles"]) == 2
    for cycle in case["cycles"]:
        assert cycle["outcome"] == "ok", cycle
        assert (cycle["servers"], cycle["trusted"]) == (3, 3), cycle
        assert cycle["promql_queries"] == len(QUERIES), cycle
        assert set(cycle["stage_ms"]) == {"collect", "optimize", "update"}, cycle
        assert cycle["kube_calls"].get("list deployments", 0) >= 1, cycle
        assert cycle["kube_calls"].get("patch deployments", 0) == cycle["patches"], cycle
        assert cycle["events_posted"] == cycle["patches"], cycle  # one Event per patch, after the answer
        assert cycle["events_posted_after_s"] is not None, cycle
        assert cycle["wall_s"] >= cycle["duration_s"] > 0
        assert {*SERVICES, "kube-apiserver"} <= set(cycle["cpu_s"]), cycle["cpu_s"]
    assert case["summary"]["all"]["promql_queries"] == [len(QUERIES)]
    assert set(case["peak_rss_mib"]) == set(SERVICES)
    assert all(mib > 10 for mib in case["peak_rss_mib"].values()), case["peak_rss_mib"]

    # Cleaned up: no scrape target file, no nodes; the namespace (and so its Deployments) is going.
    assert not (local_prometheus.root / "targets" / "bench-cycle-3.json").exists()
    core = client.CoreV1Api(local_cluster.api_client)
    gone = [ns for ns in core.list_namespace().items if ns.metadata and ns.metadata.name == "bench-cycle-3"]
    assert all(ns.metadata and ns.metadata.deletion_timestamp for ns in gone), gone
    nodes = client.CoreV1Api(local_cluster.api_client).list_node(
        label_selector="inferno.e2e/pool=bench-cycle-3"
    )
    assert not nodes.items
