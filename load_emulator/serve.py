"""The ``serve`` command: the emulated fleet in real time, exporting vLLM metrics on loopback.

Called by :mod:`load_emulator.cli`. Builds the engine over either the in-process
:class:`~load_emulator.emulated_cluster.EmulatedCluster` of the samples, or (``--kube``) the
Deployments of the current kube context through a snapshot of
:class:`~load_emulator.k8s_cluster.KubernetesClusterView` refreshed off the event loop. Workloads
come from the samples' server data, matched by server name (label ``inferno.server.name``, else the
Deployment name). Starts the metrics server (:mod:`load_emulator.metrics_http`), then runs
:func:`load_emulator.realtime.run_realtime` until ``--duration-s`` has passed or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import time

from contract.data.system import SystemData
from load_emulator.cluster import ClusterView
from load_emulator.engine import EngineConfig, FleetEngine, catalog_of
from load_emulator.fleet import Fleet, deployment_name
from load_emulator.k8s_cluster import KubernetesClusterView, SnapshotView
from load_emulator.labels import LabelWalker
from load_emulator.metrics_http import metrics_app, start_metrics_server
from load_emulator.patterns import LoadPattern
from load_emulator.realtime import RealtimeSettings, run_realtime


async def serve(system: SystemData, fleet: Fleet, settings: EngineConfig, args: argparse.Namespace) -> int:
    snapshot: SnapshotView | None = None
    cluster: ClusterView = fleet.cluster
    workloads: dict[str, LoadPattern] = dict(fleet.workloads)
    if args.kube:
        from kubernetes import client, config  # noqa: PLC0415 - only with --kube

        config.load_kube_config()  # type: ignore[no-untyped-call]
        view = KubernetesClusterView(client.AppsV1Api(), client.CoreV1Api(), origin_wall_s=time.time())
        snapshot = SnapshotView(view)
        await asyncio.to_thread(snapshot.refresh, 0.0)
        cluster = snapshot
        # Deployments may carry the server name or only a DNS form of it.
        workloads.update({deployment_name(name): p for name, p in fleet.workloads.items()})
        settings = dataclasses.replace(settings, sync_period_s=0.0)
    engine = FleetEngine(catalog_of(system), cluster, workloads, settings, seed=args.seed)
    walker = LabelWalker(cluster, seed=args.seed) if args.label_mode else None
    runner, port = await start_metrics_server(metrics_app(engine), args.port)
    print(f"serving {len(engine.entries)} deployments on http://127.0.0.1:{port}/metrics "
          f"(per pod: /targets) for {args.duration_s:.0f} s", flush=True)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    pacing = RealtimeSettings(duration_s=args.duration_s, label_period_s=args.label_period_s)
    try:
        report = await run_realtime(engine, pacing, snapshot=snapshot, walker=walker, stop=stop)
    finally:
        await runner.cleanup()
    for error in report.errors[-10:]:
        print(f"warning: {error}", flush=True)
    return 0
