"""Cycle cost: one full cycle (collect, optimize, act) at 10 / 100 / 1,000 managed Deployments on KWOK.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.bench_cycle [--sizes 10,100,1000] [--cycles 4]``
(writes benchmarks/results/cycle.{json,md,png}; ``--out DIR`` elsewhere). Needs the local control
plane and Prometheus of tests/e2e/cluster (``tests/e2e/cluster/install.sh``).
Targets (issue 6): < 5 s per cycle at 1,000 Deployments, a constant number of PromQL queries,
controller memory < 300 MiB.

Per size N, on one real kube-apiserver + KWOK and one Prometheus (both started here): N labelled
vLLM Deployments (one pod each) on fake GPU nodes, their vLLM series served by one loopback
exporter (`cycle_exporter`), the four services as processes (tests/e2e/harness/services.py)
with the collector reading Prometheus through a counting proxy (`cycle_counters`). After
Prometheus holds two scrapes of every Deployment, ``GET /invoke`` runs `cycles` cycles: the first
acts (patches; then up to 30 s for its rollouts), later ones are the steady state. Per cycle:
wall time, the report's stage times, CPU seconds per service (and kube-apiserver), PromQL
queries, the collector's and actuator's API calls (kube-apiserver's request counters),
patches, and the Events the actuator posted after answering (how many, and how long after
``/invoke`` returned the last one was posted: they are off the critical path, but their CPU is
counted in the cycle's); per service the peak RSS (VmHWM).
`run_case` is also the e2e smoke test's entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.cycle_counters import (
    CountingProxy,
    apiserver_calls,
    cpu_by_name,
    our_calls,
    peak_rss_mib,
    service_pids,
)
from benchmarks.cycle_exporter import VllmExporter
from benchmarks.cycle_report import write_results
from benchmarks.cycle_world import build_world, loads_of, teardown_world, wait_settled
from benchmarks.provenance import code_commit
from tests.e2e.cluster.local_cluster import LocalCluster
from tests.e2e.cluster.prometheus import LocalPrometheus
from tests.e2e.harness.services import SERVICES, Autoscaler

RESULTS = Path(__file__).resolve().parent / "results"
RATE_WINDOW_S = 10  # the harness' collector window: two 1 s scrapes are enough for rate()
SERVICE_ENV = {
    "INFERNO_COLLECTOR_PROMETHEUS_TIMEOUT_S": "10",  # production default is 5; loaded machine
    "INFERNO_OPTIMIZER_TIME_LIMIT": "10",  # production default
    "INFERNO_CONTROLLER_COLLECT_TIMEOUT_S": "60",
    # One exporter series per Deployment stands for all its pods: no per-pod scrape to count.
    "INFERNO_COLLECTOR_CHECK_REPORTING_PODS": "false",
}
EVENTS_TIMEOUT_S = 120.0  # bound on waiting for the actuator to post a cycle's Events


def _events_posted(autoscaler: Autoscaler) -> float:
    """The actuator's inferno_actuator_events_total{outcome="posted"}."""
    return autoscaler.actuator_metric("inferno_actuator_events_total", outcome="posted")


def _wait_events(autoscaler: Autoscaler, started: float) -> float | None:
    """Seconds after ``started`` until the actuator has no Event left to post; None past the bound."""
    try:
        autoscaler.wait_events_posted(timeout_s=EVENTS_TIMEOUT_S)
    except AssertionError:
        return None
    return round(time.perf_counter() - started, 3)


def _scraped_twice(prometheus: LocalPrometheus, namespace: str) -> int:
    series = f'vllm:request_success_total{{namespace="{namespace}"}}'
    query = f"count(count_over_time({series}[{RATE_WINDOW_S}s]) >= 2)"
    return int(prometheus.query_value(query) or 0)


def _cycle(
    autoscaler: Autoscaler, proxy: CountingProxy, api: Any, pids: dict[str, int], timeout_s: float
) -> dict[str, Any]:
    queries_before, calls_before, cpu_before = proxy.queries, apiserver_calls(api), cpu_by_name(pids)
    events_before = _events_posted(autoscaler)
    load_1m = os.getloadavg()[0]
    started = time.perf_counter()
    report = autoscaler.invoke(timeout_s=timeout_s)
    answered = time.perf_counter()
    wall_s = answered - started
    calls_after = apiserver_calls(api)  # before the Events: only the critical path's calls
    events_after_s = _wait_events(autoscaler, answered)
    cpu_after = cpu_by_name(pids)  # the Events' CPU counts in this cycle
    cpu_s = {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_after if name in cpu_before}
    outcomes = Counter(str(a.get("outcome", "")) for a in report.get("actions", []))
    collected = report.get("collected") or {}
    return {
        "wall_s": round(wall_s, 3),
        "load_1m": round(load_1m, 2),
        "duration_s": report.get("duration_s"),
        "outcome": report.get("outcome"),
        "errors": report.get("errors", []),
        "stage_ms": report.get("stage_ms", {}),
        "servers": collected.get("servers", 0),
        "trusted": collected.get("trusted", 0),
        "promql_queries": proxy.queries - queries_before,
        "kube_calls": our_calls(calls_before, calls_after),
        "patches": outcomes.get("applied", 0),
        "events_posted": int(_events_posted(autoscaler) - events_before),
        "events_posted_after_s": events_after_s,
        "cpu_s": cpu_s,
        "actions": dict(outcomes),
        "rollout_budget": report.get("rollout_budget", ""),
    }


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)} if values else {}


def summarize(cycles: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and max over all cycles, and over the steady ones (all but the first)."""
    out: dict[str, Any] = {}
    for label, rows in (("all", cycles), ("steady", cycles[1:])):
        stages = sorted({s for c in rows for s in c["stage_ms"]})
        out[label] = {
            "wall_s": _stats([c["wall_s"] for c in rows]),
            "stage_ms": {s: _stats([c["stage_ms"][s] for c in rows if s in c["stage_ms"]]) for s in stages},
            "promql_queries": sorted({c["promql_queries"] for c in rows}),
            "kube_calls": _stats([float(sum(c["kube_calls"].values())) for c in rows]),
            "patches": _stats([float(c["patches"]) for c in rows]),
            "cpu_s": {
                n: _stats([c["cpu_s"][n] for c in rows if n in c["cpu_s"]]) for n in sorted(rows[0]["cpu_s"])
            }
            if rows
            else {},
        }
    return out


def run_case(
    cluster: LocalCluster,
    prometheus: LocalPrometheus,
    n_servers: int,
    cycles: int,
    work_dir: Path,
    *,
    settle_timeout_s: float = 300.0,
    rollout_timeout_s: float = 30.0,
    service_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One size: build the world, wait for pods and scrapes, run `cycles` cycles, tear down.
    ``service_env`` adds to the services' environment (a test's settings)."""
    namespace = f"bench-cycle-{n_servers}"
    work_dir.mkdir(parents=True, exist_ok=True)
    world = build_world(cluster, namespace, n_servers)
    target_file = prometheus.root / "targets" / f"{namespace}.json"
    exporter = VllmExporter(loads_of(world.specs, namespace)).start()
    proxy = CountingProxy(prometheus.url).start()
    try:
        target_file.write_text(json.dumps([{"targets": [exporter.address], "labels": {}}]))
        settled = wait_settled(cluster, world, settle_timeout_s, "pods_ready")
        started = time.perf_counter()
        cluster.wait_for(
            lambda: _scraped_twice(prometheus, namespace) == n_servers,
            what=f"two scrapes of {n_servers} Deployments",
            timeout_s=60,
            interval_s=0.5,
        )
        world.setup_s["two_scrapes"] = round(time.perf_counter() - started, 3)
        autoscaler = Autoscaler(
            cluster.kubeconfig_path, work_dir, prometheus_url=proxy.url, namespaces=[namespace],
            config_namespace=namespace, extra_env={**SERVICE_ENV, **(service_env or {})},
        )  # fmt: skip
        with autoscaler:
            pids = service_pids(SERVICES, os.getpid())
            pids.update({p.name: p.pid for p in cluster.procs if p.name == "kube-apiserver" and p.pid})
            rows = []
            for index in range(cycles):
                rows.append(_cycle(autoscaler, proxy, cluster.api_client, pids, 180.0))
                if index == 0 and cycles > 1:  # let the first cycle's rollouts finish (bounded)
                    wait_settled(cluster, world, rollout_timeout_s, "rollouts_after_first_cycle")
            rss = {
                name: round(peak_rss_mib(pid), 1) for name, pid in sorted(pids.items()) if name in SERVICES
            }
    finally:
        target_file.unlink(missing_ok=True)
        proxy.stop()
        exporter.stop()
        teardown_world(cluster, namespace)
    return {
        "n_servers": n_servers,
        "pods_settled_before_cycles": settled,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "setup_s": world.setup_s,
        "scrapes": exporter.scrapes,
        "cycles": rows,
        "summary": summarize(rows),
        "peak_rss_mib": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="inferno-bench-cycle-"))
    started = time.perf_counter()
    cases = []
    with LocalCluster() as cluster, LocalPrometheus(scrape_interval_s=1.0) as prometheus:
        for n in (int(s) for s in args.sizes.split(",")):
            case = run_case(cluster, prometheus, n, args.cycles, work_dir / f"n{n}")
            cases.append(case)
            s = case["summary"]
            wall = s["all"]["wall_s"]
            print(
                f"N={n:>5}  wall median {wall['median']:.3f} s max {wall['max']:.3f} s"
                f"  queries {s['all']['promql_queries']}  kube calls {s['all']['kube_calls']}"
                f"  rss {case['peak_rss_mib']}",
                flush=True,
            )
    meta = {
        "total_s": round(time.perf_counter() - started, 1),
        "cpus": os.cpu_count(),
        "cycles": args.cycles,
        "commit": code_commit("actuator", "collector", "optimizer", "controller"),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    write_results(args.out, cases, meta)
    shutil.rmtree(work_dir, ignore_errors=True)
    print(f"results in {args.out}/cycle.md, cycle.json, cycle.png ({meta['total_s']} s)")


if __name__ == "__main__":
    main()
