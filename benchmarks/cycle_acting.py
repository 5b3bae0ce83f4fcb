"""The acting step alone: N patches and their Events against a real kube-apiserver, per variant.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.cycle_acting [--deployments 1000] [--patches 773]
[--variants inline:8,queued:8,deferred:8,deferred:16,deferred:32]`` (prints a table and writes
``benchmarks/results/cycle_acting.json``; ``--out DIR`` elsewhere). Needs the local control plane
of tests/e2e/cluster.

Benchmark 2's first cycle at 1,000 Deployments spends most of its time in the update step (773
patches and 773 Events). This isolates that step so the actuator's options can be compared on one
cluster in a few minutes: the real ``KubernetesPort`` (its thread pool and connection pool sized
by ``kube_threads``, the kube config loaded by ``load_api_client`` as in the service) and the
real ``execute``, with Events posted inline (in each patch's slot, as before), queued to the
``EventBroadcaster`` and posted alongside the patches (``queued``), or queued and held back until
the patches are done (``deferred``: what the service does). The Deployments have 0 replicas, so no
pod rolls (the full benchmark has the rollouts); each variant changes the batch flag in the pod
template and a label of ``patches`` of them, as the first cycle does. Per variant: the critical
path (``execute``'s wall time), the time until the last Event is posted, and the CPU seconds of
this process and of kube-apiserver. Between variants the run waits (bounded) until the deployment
controller has caught up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from kubernetes import client

from actuator.events import EventBroadcaster
from actuator.executor import execute
from actuator.kube import KubernetesPort, kube_threads
from actuator.settings import ActuatorSettings
from benchmarks.cycle_counters import cpu_seconds
from benchmarks.cycle_world import CREATE_THREADS, server_specs
from contract.update import ActionKind, ServerAction
from plumbing.kube import load_api_client
from tests.e2e.cluster.local_cluster import LocalCluster
from tests.e2e.harness.data import server_deployment

RESULTS = Path(__file__).resolve().parent / "results"
NAMESPACE = "bench-acting"
BATCH_LABEL = "inferno.server.allocation.maxbatchsize"
MERGE_PATCH = "application/merge-patch+json"
DRAIN_TIMEOUT_S = 120.0
SETTLE_TIMEOUT_S = 600.0  # kube-controller-manager writes at 20 QPS: ~2 min per 1,000 rollouts


def create_deployments(cluster: LocalCluster, n: int) -> None:
    apps = client.AppsV1Api(cluster.api_client)
    cluster.create_namespace(NAMESPACE)
    specs = [replace(s, replicas=0) for s in server_specs(n)]
    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        list(
            pool.map(
                lambda s: apps.create_namespaced_deployment(NAMESPACE, server_deployment(s, NAMESPACE)), specs
            )
        )


class MergePatchPort(KubernetesPort):
    """The actuator's port sending JSON merge patches instead of strategic merge patches (an
    experiment: a merge patch replaces lists whole, so it carries every container)."""

    patch_content_type = MERGE_PATCH


def actions_for(
    deployments: dict[tuple[str, str], dict[str, Any]], count: int, batch: int, merge: bool = False
) -> list[ServerAction]:
    """One update per Deployment (the first ``count`` by name): batch flag and label, as read.
    ``merge``: the pod template's whole container list (a JSON merge patch replaces lists)."""
    out = []
    for key in sorted(deployments)[:count]:
        dep = deployments[key]
        containers = dep["spec"]["template"]["spec"]["containers"]
        container = containers[0]
        args = list(container.get("args") or [])
        args[args.index("--max-num-seqs") + 1] = str(batch)
        patched = (
            [{**container, "args": args}, *containers[1:]]
            if merge
            else [{"name": container["name"], "args": args}]
        )
        patch = {
            "metadata": {
                "resourceVersion": dep["metadata"]["resourceVersion"],
                "labels": {BATCH_LABEL: str(batch)},
            },
            "spec": {"template": {"spec": {"containers": patched}}},
        }
        out.append(
            ServerAction(
                server=key[1],
                namespace=key[0],
                deployment=key[1],
                kind=ActionKind.UPDATE,
                replicas_now=0,
                replicas_target=0,
                patch=patch,
                reasons=["benchmark: batch size"],
            )
        )
    return out


def settled(cluster: LocalCluster) -> bool:
    """Every Deployment's spec observed by the deployment controller."""
    apps = client.AppsV1Api(cluster.api_client)
    for d in apps.list_namespaced_deployment(NAMESPACE, _request_timeout=30).items:
        observed = (d.status.observed_generation if d.status else None) or 0
        if observed < ((d.metadata.generation if d.metadata else None) or 0):
            return False
    return True


async def run_variant(
    settings: ActuatorSettings,
    events_mode: str,
    patches: int,
    batch: int,
    cluster: LocalCluster,
    patch_type: str = "strategic",
) -> dict[str, Any]:
    apiserver_pid = next(p.pid for p in cluster.procs if p.name == "kube-apiserver" and p.pid)
    api = load_api_client(kube_threads(settings), config_file=str(cluster.kubeconfig_path))
    merge = patch_type == "merge"
    port = MergePatchPort(api, settings) if merge else KubernetesPort(api, settings)
    listed = await port.list_deployments([NAMESPACE])
    actions = actions_for(listed, patches, batch, merge)
    recorder = (
        EventBroadcaster(
            port.create_event, queue_size=settings.event_queue_size, concurrency=settings.event_concurrency
        )
        if events_mode in {"queued", "deferred"}
        else None
    )
    pause = (
        recorder.paused() if recorder is not None and events_mode == "deferred" else contextlib.nullcontext()
    )
    cpu_self, cpu_api = time.process_time(), cpu_seconds(apiserver_pid)
    started = time.perf_counter()
    with pause:
        done = await execute(
            actions,
            port,
            listed,
            settings,
            dry_run=False,
            now_s=time.time(),
            cycle_id=f"bench-{batch}",
            events=recorder,
        )
    critical_s = time.perf_counter() - started
    if recorder is not None:
        await recorder.close(DRAIN_TIMEOUT_S)
    events_done_s = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for action in done:
        outcomes[action.outcome.value] = outcomes.get(action.outcome.value, 0) + 1
    return {
        "events": events_mode,
        "patch_type": patch_type,
        "max_concurrent_patches": settings.max_concurrent_patches,
        "event_concurrency": settings.event_concurrency,
        "patches": len(actions),
        "outcomes": outcomes,
        "critical_path_s": round(critical_s, 3),
        "events_posted_after_s": round(events_done_s, 3),
        "events_lost_or_dropped": (recorder.counts.lost + recorder.counts.dropped) if recorder else 0,
        "cpu_s_actuator": round(time.process_time() - cpu_self, 2),
        "cpu_s_apiserver": round(cpu_seconds(apiserver_pid) - cpu_api, 2),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--patches", type=int, default=773)
    parser.add_argument(
        "--variants",
        default="inline:8,queued:8,deferred:8,deferred:16,deferred:32",
        help="events mode (inline: in each patch's slot, as before; queued: EventBroadcaster; "
        "deferred: queued and held back until the patches are done), patches in flight and "
        "optionally ':merge' (JSON merge patches instead of strategic ones)",
    )
    parser.add_argument("--event-concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with LocalCluster() as cluster:
        create_deployments(cluster, args.deployments)
        cluster.wait_for(lambda: settled(cluster), what="Deployments observed", timeout_s=SETTLE_TIMEOUT_S)
        for batch, variant in enumerate(args.variants.split(","), start=17):
            mode, conc, *rest = variant.split(":")
            settings = ActuatorSettings(
                max_concurrent_patches=int(conc), event_concurrency=args.event_concurrency
            )
            row = asyncio.run(run_variant(settings, mode, args.patches, batch, cluster, *rest))
            rows.append(row)
            print(json.dumps(row), flush=True)
            started = time.perf_counter()
            cluster.wait_for(lambda: settled(cluster), what="rollouts observed", timeout_s=SETTLE_TIMEOUT_S)
            row["controller_caught_up_after_s"] = round(time.perf_counter() - started, 1)
            print(
                f"deployment controller caught up after {row['controller_caught_up_after_s']} s", flush=True
            )
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "deployments": args.deployments,
        "cpus": os.cpu_count(),
        "event_concurrency": args.event_concurrency,
    }
    (args.out / "cycle_acting.json").write_text(json.dumps({**meta, "rows": rows}, indent=1))
    print(
        "| events | patches in flight | critical path s | Events posted after s "
        "| CPU s actuator / apiserver |"
    )
    for r in rows:
        print(
            f"| {r['events']} | {r['max_concurrent_patches']} | {r['critical_path_s']} | "
            f"{r['events_posted_after_s']} | {r['cpu_s_actuator']} / {r['cpu_s_apiserver']} |"
        )


if __name__ == "__main__":
    main()
