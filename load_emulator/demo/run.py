"""The demo loop: emulated cluster + the four real services + the fleet engine, in real time.

:func:`run_demo` (called by :mod:`load_emulator.demo.cli`):

1. fills an in-memory API server (:mod:`load_emulator.kubeapi`, built-in controller with a pod
   start-up delay) with GPU nodes, the data ConfigMaps and the servers' Deployments
   (:mod:`.world`), on 127.0.0.1, and writes a kubeconfig;
2. starts collector, optimizer, actuator and controller as subprocesses (:mod:`.services`) and
   waits for their ``/healthz``;
3. runs the :class:`~load_emulator.engine.FleetEngine` on the wall clock over the store
   (:class:`.store_view.StoreClusterView`), writing each server's offered load into its load
   labels every ``label_period_s`` (the collector, without Prometheus, trusts them);
4. every ``cycle_s`` calls the controller's ``GET /invoke`` (collect -> optimize -> act) and
   prints the table (:mod:`.table`); the predicted TTFT/ITL are the cycle report's decisions'.

:class:`DemoLoop` is shared with the real-cluster demo (:mod:`.cluster_run`), which gives it a
view of the real API server, a ``refresh`` hook and no load labels (Prometheus measures the load).
Everything stops by pid at the end, on error and on Ctrl-C. Network: loopback only.
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

import aiohttp

from contract.data.loader import load_system_dir
from load_emulator.cluster import ClusterView
from load_emulator.demo import services as svc
from load_emulator.demo.loop_state import DemoResult, DemoSettings, make_workloads, replica_changes
from load_emulator.demo.store_view import StoreClusterView
from load_emulator.demo.table import Row, render
from load_emulator.demo.world import DEFAULT_CARDS, NAMESPACE, DemoServer, demo_servers, load_labels, populate
from load_emulator.engine import Catalog, EngineConfig, FleetEngine, catalog_of
from load_emulator.kubeapi import BuiltinController, ControllerSettings, ObjectStore, start_kubeapi

__all__ = ["DemoLoop", "DemoResult", "DemoSettings", "LoopView", "new_engine", "run_demo"]


class LoopView(ClusterView, Protocol):
    """What the loop reads: the cluster as the engine sees it, plus Pending-for-capacity pods."""

    def unschedulable(self) -> dict[str, int]: ...


Refresh = Callable[[float], Awaitable[None]]
"""Called with engine seconds before the engine reads the view (re-read a remote cluster)."""


async def run_demo(settings: DemoSettings, out: TextIO = sys.stdout) -> DemoResult:
    """Run the whole demo; see the module docstring. Raises on set-up failures (after clean-up)."""
    started = time.monotonic()
    result = DemoResult()
    system = load_system_dir(settings.data_dir)
    servers = demo_servers(system, settings.servers)
    store = ObjectStore()
    populate(store, settings.data_dir, system, servers, settings.cards or DEFAULT_CARDS)
    delay = ControllerSettings(startup_delay_s=settings.startup_delay_s)
    controller = BuiltinController(store, time.monotonic, delay)
    api = await start_kubeapi("127.0.0.1", 0, store=store, controller=controller)
    services: list[svc.Service] = []
    with tempfile.TemporaryDirectory(prefix="inferno-demo-") as tmp:
        workdir = Path(settings.workdir or tmp)
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        try:
            kubeconfig = api.write_kubeconfig(workdir / "kubeconfig", NAMESPACE)
            services = await svc.start_services(
                workdir, kubeconfig, settings.scale_down_window_s, settings.solver
            )
            await svc.wait_healthy(services, settings.health_timeout_s)
            result.startup_s = time.monotonic() - started
            ports = ", ".join(f"{s.name}:{s.port}" for s in services)
            print(f"demo: API server {api.url}, services {ports}; ready in {result.startup_s:.1f} s; "
                  f"logs in {workdir}", file=out, flush=True)  # fmt: skip
            loop = DemoLoop(settings, servers, StoreClusterView(store, NAMESPACE, time.time()), out)
            engine = new_engine(catalog_of(system), loop.view, loop)
            await loop.run(engine, {s.name: s for s in services}, result)
        finally:
            result.exit_codes = await svc.stop_services(services)
            await api.close()
    return result


class DemoLoop:
    """The real-time part: engine ticks, load labels, cycles and tables."""

    def __init__(
        self,
        settings: DemoSettings,
        servers: list[DemoServer],
        view: LoopView,
        out: TextIO,
        *,
        namespace: str = NAMESPACE,
        write_labels: bool = True,
        refresh: Refresh | None = None,
        refresh_period_s: float = 1.0,
    ):
        self.settings, self.servers, self.view, self.out = settings, servers, view, out
        self.namespace, self.write_labels = namespace, write_labels
        self.refresh, self.refresh_period_s = refresh, refresh_period_s
        self.workloads = make_workloads(settings, servers)

    async def run(self, engine: FleetEngine, services: Mapping[str, svc.Service], result: DemoResult) -> None:
        """Ticks until ``duration_s`` of wall time (bounded count); a cycle every ``cycle_s``."""
        st = self.settings
        origin = time.monotonic()
        next_label, next_cycle, next_refresh = 0.0, st.first_cycle_s, 0.0
        for _ in range(math.ceil(st.duration_s / st.tick_s) + 1):
            t_s = time.monotonic() - origin
            if t_s >= st.duration_s:
                break
            if self.refresh is not None and t_s >= next_refresh:
                next_refresh = t_s + self.refresh_period_s
                await self._refresh(engine, t_s)
            engine.advance_to(max(t_s, engine.now_s))  # the pods' OpenAI API may have gone further
            if self.write_labels and t_s >= next_label:
                next_label += st.label_period_s
                self.write_load_labels(t_s)
            if t_s >= next_cycle:
                next_cycle += st.cycle_s
                await self.cycle(engine, origin, services, result)
            await asyncio.sleep(st.tick_s)

    async def _refresh(self, engine: FleetEngine, t_s: float) -> None:
        if self.refresh is None:
            return
        try:
            await self.refresh(t_s)
            engine.sync()
        except Exception as exc:  # an API server hiccup must not end the demo
            print(f"demo: cluster refresh failed: {type(exc).__name__}: {exc}", file=self.out)

    async def cycle(
        self, engine: FleetEngine, origin: float, services: Mapping[str, svc.Service], result: DemoResult
    ) -> None:
        """One ``GET /invoke``, then the table of the state it left."""
        st = self.settings
        try:
            report = await svc.invoke(services["controller"])
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:  # the demo goes on
            report = {"outcome": "failed", "errors": [{"stage": "invoke", "message": str(exc)}]}
        result.cycles += 1
        result.replica_changes += replica_changes(report)
        t_s = time.monotonic() - origin
        if self.refresh is not None:
            await self._refresh(engine, t_s)
        engine.advance_to(max(t_s, engine.now_s))
        engine.sync()
        title = f"\n=== t={t_s:5.1f}s  cycle {result.cycles}  (observed: last {st.window_s:.0f} s) ==="
        notes = [
            f"{name}: {n} pod(s) Pending, no node with free cards"
            for name, n in sorted(self.view.unschedulable().items())
        ]
        rows = self.rows(engine, t_s, report)
        print(render(title, rows, report, notes), file=self.out, flush=True)
        result.tables += 1
        result.cycle_rows.append(rows)

    def write_load_labels(self, t_s: float) -> None:
        """The offered load of each server now, into its load labels (what the collector reads)."""
        for s in self.servers:
            rpm = self.workloads[s.name].rate_rpm(t_s)
            self.view.set_labels(self.namespace, s.deployment, load_labels(rpm, s.in_tokens, s.out_tokens))

    def rows(self, engine: FleetEngine, t_s: float, report: Mapping[str, Any]) -> list[Row]:
        """One row per server: cluster state, offered load, the cycle's predictions, observed window."""
        states = {st.server: st for st in self.view.deployments(t_s)}
        decisions = {d.get("server"): d for d in report.get("decisions") or []}
        window_s = self.settings.window_s
        rows = []
        for s in self.servers:
            st = states.get(s.name)
            w = engine.window(s.name, max(0.0, t_s - window_s), t_s, s.ttft_target_ms, s.itl_target_ms)
            d = decisions.get(s.name, {})
            rows.append(Row(
                s.name, s.service_class, self.workloads[s.name].rate_rpm(t_s), st.accelerator if st else "?",
                st.ready_replicas if st else 0, st.replicas if st else 0, st.max_batch if st else 0,
                _num(d.get("ttft_ms")), w.ttft_p50_ms, w.ttft_p95_ms, s.ttft_target_ms,
                _num(d.get("itl_ms")), w.itl_p50_ms, w.itl_p95_ms, s.itl_target_ms,
                w.slo_attainment, _num(d.get("cost")),
            ))  # fmt: skip
        return rows


def new_engine(
    catalog: Catalog, view: ClusterView, loop: DemoLoop, startup_delay_s: float = 0.0
) -> FleetEngine:
    """The fleet engine over ``view`` with the loop's workloads and routing (re-reads the view every second).

    ``startup_delay_s``: a Ready pod serves only after this (KWOK pods are Ready at once, unlike vLLM).
    """
    config = EngineConfig(sync_period_s=1.0, startup_delay_s=startup_delay_s, routing=loop.settings.routing)
    return FleetEngine(catalog, view, loop.workloads, config, loop.settings.seed)


def _num(value: Any) -> float:
    """A number from the report, NaN when absent (the table prints ``-``)."""
    return float(value) if isinstance(value, int | float) else math.nan
