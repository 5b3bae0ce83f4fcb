"""The autoscaler's own CPU per cycle at N Deployments, in one process, without a cluster.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.profile_cycle [--servers 1000] [--repeat 3]
[--http] [--profile STEP | steady:STEP] [--no-gc | --default-gc]``. Prints CPU ms per step (and
the garbage collector's share) for the first, acting cycle and a steady one; ``--http`` adds the
same two cycles through the services' real aiohttp apps on 127.0.0.1 and the controller's
``HttpStages`` (per stage: the controller's encoding and decoding, aiohttp and the handler);
``--profile`` prints cProfile's top functions of one step (threads are not profiled).

Role: benchmark 2 (``bench_cycle``) runs the four services against a real kube-apiserver on 2
shared cores, where every CPU second our Python spends is taken from kube-apiserver. This replays
one cycle's Python work on the benchmark's world (``cycle_world.server_specs``: the same 1,000
Deployments, ConfigMaps and loads) with the ports faked at the byte level: the collector's
KubeAdapter parses the Deployment list pages as the API server would send them (defaults and
managedFields included), the PromQL answers are parsed from Prometheus's JSON, and the actuator
lists from the same bytes; patches are only recorded. The world is held as bytes, so it adds
nothing to the garbage collector's work. The services' collector settings apply
(``plumbing.gc_tuning``) unless ``--default-gc``. Steps, in cycle order:

- ``collect``: KubeAdapter list + ConfigMaps + answers -> ``collect()`` -> CollectResult
- ``collect.answer`` / ``controller.collect``: the body encoded; decoded by the controller, its
  summary and the window floors
- ``optimize.request``: the floored system encoded; the optimizer's depth check, ``json.loads``
  and ``validate_system``
- ``optimize``: ``optimize()`` (rollout budget re-solves included)
- ``optimize.answer``: ``model_dump_json``; decoded by the controller, its decision summaries
- ``update.request``: UpdateRequest built and encoded; decoded by the actuator
- ``update``: ``Actuator.update`` (list parse, plan, execute, a JSON log line per action)
- ``update.answer``: UpdateResponse encoded and decoded, the window recorded
- ``report``: the cycle report encoded

The first cycle acts (the 322 patches of the benchmark's first cycle); the second runs on the
patched Deployments with their rollouts unfinished, as the benchmark's steady cycles do (nothing
starts). The numbers vary with the machine's load; compare runs made back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import gc
import io
import json
import pstats
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from aiohttp import web
from kubernetes import client
from pydantic import BaseModel

from actuator.app import Actuator
from actuator.app import make_app as actuator_app
from actuator.events import InlineEvents
from actuator.patch import PATCH_CONTENT_TYPE
from actuator.settings import ActuatorSettings
from benchmarks.cycle_world import _cards_per_type, server_specs
from collector.app import CollectorService
from collector.app import make_app as collector_app
from collector.core import Ports, collect
from collector.kube_adapter import KubeAdapter
from collector.load import KnownLoad
from collector.metrics import Key
from collector.promql import QUERIES, build_queries
from collector.settings import CollectorSettings
from contract.collect import CollectResult
from contract.cycle import CollectedSummary, CycleReport, DecisionSummary
from contract.data.loader import validate_system
from contract.solution import Solution
from contract.update import UpdateRequest, UpdateResponse
from controller import window
from controller.cycle import CycleRunner, HttpStages, with_floors
from controller.settings import ControllerSettings
from controller.window import WindowPolicy, WindowState
from load_emulator.kubeapi.patches import apply_patch
from optimizer.app import ServiceSettings
from optimizer.app import make_app as optimizer_app
from optimizer.optimize import optimize
from plumbing.gc_tuning import tune_gc
from plumbing.logs import configure_logging
from plumbing.web import MAX_JSON_DEPTH, json_depth_exceeds
from tests.e2e.harness.data import (
    DYNAMIC_CONFIGMAP,
    STATIC_CONFIGMAP,
    ServerSpec,
    capacity_document,
    server_deployment,
    static_documents,
)

M = TypeVar("M", bound=BaseModel)
NAMESPACE = "bench-cycle-1000"
NOW_S = 1_790_000_000.0
PAGE = 500


# ---------------------------------------------------------------- the world, as bytes on the wire
def _managed_fields(dep: dict[str, Any]) -> list[dict[str, Any]]:
    """What kube-apiserver adds to every object: one entry per writer (the bulk of a listed item)."""

    def fields_of(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {f"f:{k}": fields_of(v) for k, v in obj.items()}
        return {}

    return [
        {
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_of({"metadata": dep["metadata"], "spec": dep["spec"]}),
            "manager": "python-kubernetes",
            "operation": "Update",
            "time": "2026-11-23T10:00:00Z",
        },
        {
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_of({"status": dep["status"]}),
            "manager": "kube-controller-manager",
            "operation": "Update",
            "subresource": "status",
            "time": "2026-11-23T10:00:05Z",
        },
    ]


def deployment_json(spec: ServerSpec, index: int) -> dict[str, Any]:
    """A Deployment as kube-apiserver lists it: the benchmark's object, defaulted, with status."""
    to_json = cast(Callable[[Any], dict[str, Any]], client.ApiClient().sanitize_for_serialization)
    dep = to_json(server_deployment(spec, NAMESPACE))
    meta = dep["metadata"]
    meta.update(
        namespace=NAMESPACE,
        uid=f"00000000-0000-0000-0000-{index:012d}",
        resourceVersion=str(1000 + index),
        generation=1,
        creationTimestamp="2026-11-23T10:00:00Z",
    )
    meta["annotations"]["deployment.kubernetes.io/revision"] = "1"
    dep["spec"].update(progressDeadlineSeconds=600, revisionHistoryLimit=10)
    pod = dep["spec"]["template"]["spec"]
    pod.update(dnsPolicy="ClusterFirst", restartPolicy="Always", schedulerName="default-scheduler",
               securityContext={})  # fmt: skip
    for c in pod["containers"]:
        c.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log",
                 terminationMessagePolicy="File")  # fmt: skip
    replicas = spec.replicas
    dep["status"] = {
        "availableReplicas": replicas,
        "observedGeneration": 1,
        "readyReplicas": replicas,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "conditions": [
            {"type": t, "status": "True", "reason": r, "message": m,
             "lastTransitionTime": "2026-11-23T10:00:05Z", "lastUpdateTime": "2026-11-23T10:00:05Z"}
            for t, r, m in (
                ("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                ("Progressing", "NewReplicaSetAvailable", f'ReplicaSet "{spec.name}-abc" has progressed.'),
            )
        ],
    }  # fmt: skip
    meta["managedFields"] = _managed_fields(dep)
    return dep


def answers(specs: list[ServerSpec], now_s: float) -> dict[str, bytes]:
    """The 13 PromQL answers (Prometheus's JSON) for the benchmark's steady loads."""
    values: dict[str, list[tuple[str, float]]] = {q.name: [] for q in QUERIES}
    for s in specs:
        c = s.rpm / 60.0
        tokens = c * max(s.out_tokens - 1, 1)
        row = {
            "completions": c, "token_completions": c, "queue_growth": 0.0, "prompt_tokens": c * s.in_tokens,
            "generation_tokens": c * s.out_tokens, "ttft_sum": c * 0.2, "ttft_count": c,
            "itl_sum": tokens * 0.03, "itl_count": tokens, "running": 2.0, "waiting": 0.0,
            "last_sample": now_s - 1.0,
        }  # fmt: skip
        for name, value in row.items():
            if name in values:
                values[name].append((s.name, value))
    out = {}
    for name, rows in values.items():
        result = [
            {"metric": {"namespace": NAMESPACE, "deployment": dep}, "value": [now_s, repr(v)]}
            for dep, v in rows
        ]
        out[name] = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        ).encode()
    return out


@dataclass
class _Raw:
    data: bytes

    def release_conn(self) -> None:
        return None


class FakeApps:
    """AppsV1Api's list call, answering pages of pre-encoded JSON (the server's work is not ours)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.pages: list[bytes] = []
        self.whole = b""
        self.set_items(items)

    def set_items(self, items: list[dict[str, Any]]) -> None:
        self.pages = []
        for start in range(0, len(items), PAGE):
            more = start + PAGE < len(items)
            meta = {"resourceVersion": "99999", **({"continue": f"p{start + PAGE}"} if more else {})}
            body = {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": meta,
                    "items": items[start : start + PAGE]}  # fmt: skip
            self.pages.append(json.dumps(body).encode())
        self.whole = json.dumps({"items": items}).encode()

    def list_namespaced_deployment(self, namespace: str, **kw: Any) -> _Raw:
        token = kw.get("_continue")
        index = int(token[1:]) // PAGE if token else 0
        return _Raw(self.pages[index])


@dataclass
class FakeCore:
    data: dict[str, dict[str, str]]

    def read_namespaced_config_map(self, name: str, namespace: str, **kw: Any) -> Any:
        return client.V1ConfigMap(data=dict(self.data[name]))


class FakeMetrics:
    def __init__(self, settings: CollectorSettings, encoded: dict[str, bytes]) -> None:
        windows = (settings.rate_window_s, settings.metrics_grouping, settings.token_window_s)
        queries = build_queries(settings.namespaces, *windows)  # as collector.core builds them
        self.by_text = {text: encoded[name] for name, text in queries.items()}

    async def query(self, promql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = json.loads(self.by_text[promql])["data"]["result"]
        return result


class RecordingPort:
    """The actuator's KubePort: the list from the same bytes, patches applied to the world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    async def list_deployments(self, namespaces: Any) -> dict[tuple[str, str], dict[str, Any]]:
        items = json.loads(self.world.apps.whole)["items"]
        return {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in items}

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        items = json.loads(self.world.apps.whole)["items"]
        key = (namespace, name)
        return next(i for i in items if (i["metadata"]["namespace"], i["metadata"]["name"]) == key)

    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append((namespace, name, patch))

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        return None


@dataclass
class World:
    """The API server's and Prometheus's side, held as bytes: kept out of the measured process's
    garbage collector, as it is out of the services' (a parsed world would make every GC pass
    slower and overstate the cost)."""

    specs: list[ServerSpec]
    apps: FakeApps
    core: FakeCore
    answers: dict[str, bytes]


def build(n_servers: int) -> World:
    specs = server_specs(n_servers)
    items = [deployment_json(s, i) for i, s in enumerate(specs)]
    static = {k: json.dumps(v) for k, v in static_documents().items()}
    dynamic = {"capacity-data.json": json.dumps(capacity_document(_cards_per_type(specs)))}
    core = FakeCore({STATIC_CONFIGMAP: static, DYNAMIC_CONFIGMAP: dynamic})
    return World(specs, FakeApps(items), core, answers(specs, NOW_S))


def apply_patches(world: World, patches: list[tuple[str, str, dict[str, Any]]]) -> None:
    """The first cycle's patches applied, their rollouts still running (the benchmark's steady
    cycles: the deployment controller has not caught up with them)."""
    items = json.loads(world.apps.whole)["items"]
    by_name = {i["metadata"]["name"]: n for n, i in enumerate(items)}
    for _, name, patch in patches:
        body = copy.deepcopy(patch)
        body["metadata"].pop("resourceVersion", None)
        index = by_name[name]
        item = apply_patch(PATCH_CONTENT_TYPE, items[index], body)
        item["metadata"]["resourceVersion"] = str(int(item["metadata"]["resourceVersion"]) + 5000)
        item["metadata"]["generation"] += 1  # not yet observed: rolling out, as in the benchmark
        items[index] = item
    world.apps.set_items(items)


# ---------------------------------------------------------------- one cycle, step by step
class GcClock:
    """Milliseconds the garbage collector ran (``gc.callbacks``), and how many collections."""

    def __init__(self) -> None:
        self.ms = 0.0
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.ms += (time.perf_counter() - self._started) * 1000
            self.collections += 1


GC_CLOCK = GcClock()


@dataclass
class Steps:
    cpu_ms: dict[str, float] = field(default_factory=dict)
    gc_ms: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    profiler: cProfile.Profile | None = None

    @contextmanager
    def step(self, name: str, profile: str) -> Iterator[None]:
        """Count the CPU time of the block; profile it when ``profile`` names it (or is ``all``)."""
        prof = None
        if profile in (name, "all"):
            prof = self.profiler = self.profiler or cProfile.Profile()
        started, gc_before = time.process_time(), GC_CLOCK.ms
        if prof:
            prof.enable()
        try:
            yield
        finally:
            if prof:
                prof.disable()
            self.cpu_ms[name] = self.cpu_ms.get(name, 0.0) + (time.process_time() - started) * 1000
            self.gc_ms[name] = self.gc_ms.get(name, 0.0) + GC_CLOCK.ms - gc_before


@dataclass
class Services:
    """What lives between cycles in each service."""

    collector_settings: CollectorSettings
    ports: Ports
    actuator: Actuator
    port: RecordingPort
    window: WindowState = field(default_factory=dict)
    window_policy: WindowPolicy = field(default_factory=lambda: ControllerSettings().window_policy())
    last_known: dict[Key, KnownLoad] = field(default_factory=dict)
    optimizer_settings: ServiceSettings = field(default_factory=ServiceSettings)


def services(world: World) -> Services:
    settings = CollectorSettings(namespaces=(NAMESPACE,), config_namespace=NAMESPACE,
                                 prometheus_url="http://127.0.0.1:1", rate_window_s=10)  # fmt: skip
    adapter = KubeAdapter(client.ApiClient(), 10.0)
    adapter._apps, adapter._core = cast(Any, world.apps), cast(Any, world.core)  # the byte-level fakes
    ports = Ports(kube=adapter, cluster=adapter, metrics=FakeMetrics(settings, world.answers))
    port = RecordingPort(world)
    actuator = Actuator(port, ActuatorSettings(), clock=lambda: NOW_S)
    actuator.events = InlineEvents(port.create_event)
    return Services(settings, ports, actuator, port)


async def run_cycle(
    svc: Services, now_s: float, steps: Steps, profile: str, *, fast: bool = True
) -> CycleReport:
    """One cycle, hop by hop. ``fast``: the bodies encoded and decoded as the services do
    (``model_dump_json``, ``model_validate_json``); else the general way (``json.dumps`` of
    ``model_dump``, ``json.loads`` and ``model_validate``), the reference of the wire tests."""

    def encode(model: BaseModel, by_alias: bool = False) -> bytes:
        if fast:
            return model.model_dump_json(by_alias=by_alias).encode()
        return json.dumps(model.model_dump(mode="json", by_alias=by_alias)).encode()

    def decode(model: type[M], raw: bytes) -> M:
        return model.model_validate_json(raw) if fast else model.model_validate(json.loads(raw))

    step = steps.step
    with step("collect", profile):
        assembled = await collect(now_s, svc.ports, svc.collector_settings, svc.last_known)
        svc.last_known = assembled.last_known
        result = assembled.result.model_copy(update={"collected_at_s": now_s})
    with step("collect.answer", profile):
        body = (
            result.model_dump_json().encode() if fast else json.dumps(result.model_dump(mode="json")).encode()
        )
        steps.sizes["collect"] = len(body)
    with step("controller.collect", profile):
        collected = decode(CollectResult, body)
        summary = CollectedSummary.of(collected)
        opened = window.open_cycle(svc.window, collected.servers, svc.window_policy, now_s)
        floors = window.floors(opened, collected.servers)
        system = with_floors(collected.system, floors)
    with step("optimize.request", profile):
        raw = (
            system.model_dump_json(by_alias=True).encode()
            if fast
            else json.dumps(system.model_dump(mode="json", by_alias=True)).encode()
        )
        steps.sizes["optimize"] = len(raw)
        assert not json_depth_exceeds(raw, MAX_JSON_DEPTH)
        system_data = validate_system(json.loads(raw), "request body")
    with step("optimize", profile):
        solution = optimize(system_data, svc.optimizer_settings.optimizer)
    with step("optimize.answer", profile):
        text = solution.with_elapsed_ms(1.0).model_dump_json().encode()
        steps.sizes["optimize.answer"] = len(text)
        solution = decode(Solution, text)
        decisions = DecisionSummary.all_of(solution, floors)
    with step("update.request", profile):
        request = UpdateRequest(cycle_id=f"c{now_s}", solution=solution, servers=collected.servers,
                                placement=collected.placement)  # fmt: skip
        sent = request.model_copy(update={"deadline_s": now_s + 60})
        raw = encode(sent, by_alias=True)
        steps.sizes["update"] = len(raw)
        assert not json_depth_exceeds(raw, MAX_JSON_DEPTH)
        request = decode(UpdateRequest, raw)
    with step("update", profile):
        response = await svc.actuator.update(request)
    with step("update.answer", profile):
        raw = encode(response)
        steps.sizes["update.answer"] = len(raw)
        response = decode(UpdateResponse, raw)
        svc.window = window.record(opened, response.actions, now_s)
    with step("report", profile):
        report = CycleReport(cycle_id="c", started_at_s=now_s, collected=summary, decisions=decisions,
                             actions=response.actions, solver=solution.solver.name)  # fmt: skip
        encode(report)
    return report


def one_run(n_servers: int, profile: str) -> tuple[Steps, Steps, int, int]:
    world = build(n_servers)
    svc = services(world)
    first, steady = Steps(), Steps()
    asyncio.run(run_cycle(svc, NOW_S, first, "" if profile.startswith("steady:") else profile))
    patches = list(svc.port.patches)
    apply_patches(world, patches)
    svc.port.patches.clear()
    steady_profile = profile.removeprefix("steady:") if profile.startswith("steady:") else ""
    asyncio.run(run_cycle(svc, NOW_S + 30, steady, steady_profile))
    return first, steady, len(patches), len(svc.port.patches)


class TimedStages:
    """The controller's ``HttpStages`` with the process's CPU time counted per stage: the
    controller's encoding and decoding and the service's handler, aiohttp on both ends included
    (everything runs in this process)."""

    def __init__(self, inner: HttpStages, steps: Steps) -> None:
        self.inner, self.steps = inner, steps

    async def collect(self) -> CollectResult:
        with self.steps.step("collect", ""):
            return await self.inner.collect()

    async def optimize(self, system: dict[str, Any]) -> Solution:
        with self.steps.step("optimize", ""):
            return await self.inner.optimize(system)

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        with self.steps.step("update", ""):
            return await self.inner.update(request)


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = cast(Any, site)._server  # the bound port
    return runner, int(server.sockets[0].getsockname()[1])


@dataclass
class HttpRun:
    steps: list[Steps]
    reports: list[CycleReport]
    patches: list[list[tuple[str, str, dict[str, Any]]]]


async def http_cycles(world: World, cycles: int) -> HttpRun:
    """``cycles`` cycles of ``CycleRunner`` over HTTP: the services' real apps on 127.0.0.1."""
    svc = services(world)
    now = [NOW_S]
    collector = CollectorService(svc.collector_settings, svc.ports, clock=lambda: now[0])
    svc.actuator._clock = lambda: now[0]  # the benchmark's clock
    apps = [collector_app(collector), optimizer_app(svc.optimizer_settings), actuator_app(svc.actuator)]
    served = [await _serve(app) for app in apps]
    names = ("collector", "optimizer", "actuator")
    settings = ControllerSettings(**{f"{n}_port": port for n, (_, port) in zip(names, served, strict=True)})
    stages = HttpStages(settings)
    runner = CycleRunner(stages, settings)
    run = HttpRun([], [], [])
    try:
        for index in range(cycles):
            steps = Steps()
            runner.stages = TimedStages(stages, steps)
            now[0] = NOW_S + 30 * index
            report = await runner.run_cycle(now[0])
            assert report.outcome in ("ok", "degraded"), report.errors
            with steps.step("report", ""):
                report.model_dump_json()
            run.steps.append(steps)
            run.reports.append(report)
            run.patches.append(list(svc.port.patches))
            apply_patches(world, svc.port.patches)
            svc.port.patches.clear()
    finally:
        await stages.close()
        for app_runner, _ in served:
            await app_runner.cleanup()
    return run


def _table(runs: list[Steps], title: str) -> str:
    names = list(runs[0].cpu_ms)
    lines = [f"{title}: CPU ms per step, of which in the garbage collector (median of {len(runs)})"]
    total = total_gc = 0.0
    for name in names:
        ms = statistics.median(r.cpu_ms[name] for r in runs)
        gc_ms = statistics.median(r.gc_ms[name] for r in runs)
        total, total_gc = total + ms, total_gc + gc_ms
        lines.append(f"  {name:<20} {ms:9.1f} {gc_ms:9.1f}")
    lines.append(f"  {'total':<20} {total:9.1f} {total_gc:9.1f}")
    lines.append("  bodies: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in runs[0].sizes.items()))
    return "\n".join(lines)


def _print_profile(steps: Steps, top: int) -> None:
    if steps.profiler is None:
        return
    out = io.StringIO()
    stats = pstats.Stats(steps.profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="", help="a step name (first cycle) or steady:<step>")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--http", action="store_true", help="also: the cycle through the services' HTTP apps")
    parser.add_argument("--no-gc", action="store_true", help="garbage collector off: steadier numbers")
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's default collector settings, not the services'"
    )
    args = parser.parse_args(argv)
    gc.callbacks.append(GC_CLOCK)
    if args.no_gc:
        gc.disable()
    elif not args.default_gc:
        tune_gc()  # as run_service does after start-up
    log_sink = io.StringIO()
    for service in ("actuator",):  # the per-action log lines, rendered as the service renders them
        configure_logging(service, stream=log_sink)
    firsts, steadies = [], []
    patches = (0, 0)
    for _ in range(args.repeat):
        first, steady, n_first, n_steady = one_run(args.servers, "")
        firsts.append(first)
        steadies.append(steady)
        patches = (n_first, n_steady)
        log_sink.seek(0)
        log_sink.truncate()
    print(f"N={args.servers}: {patches[0]} patches in the first cycle, {patches[1]} in the steady one")
    print(_table(firsts, "first cycle"))
    print(_table(steadies, "steady cycle"))
    if args.http:
        runs = [asyncio.run(http_cycles(build(args.servers), 2)).steps for _ in range(args.repeat)]
        print(_table([r[0] for r in runs], "first cycle over HTTP (services' apps, HttpStages)"))
        print(_table([r[1] for r in runs], "steady cycle over HTTP"))
    if args.profile:
        first, steady, _, _ = one_run(args.servers, args.profile)
        _print_profile(steady if args.profile.startswith("steady:") else first, args.top)


if __name__ == "__main__":
    main()
