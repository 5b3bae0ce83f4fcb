"""A real Kubernetes control plane on 127.0.0.1 with KWOK-played GPU nodes, for e2e tests.

Role: `LocalCluster` starts etcd, kube-apiserver (RBAC, client certs), kube-controller-manager,
kube-scheduler and KWOK as child processes in a temp dir, and stops them by process id.
Callers: the `local_cluster` fixture in tests/e2e/conftest.py, `python -m e2e.cluster` (manual
runs and the real-cluster demo), and later e2e scenarios through the helpers here:
`add_gpu_nodes`, `create_namespace`, `serviceaccount_kubeconfig`, `wait_for`.

    cluster = LocalCluster()          # resolves binaries (see binaries.py)
    with cluster:                     # start(); stop() on exit, also on error and Ctrl-C
        cluster.add_gpu_nodes("NVIDIA-L4", count=2, gpus_per_node=1)
"""

from __future__ import annotations

import atexit
import functools
import shutil
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from kubernetes import client, config

from . import binaries, components, nodes
from .components import Layout
from .pki import CLIENT_SUBJECTS, make_cluster_pki, write_token_kubeconfig
from .procs import ManagedProcess, free_port, make_run_dir
from .procs import wait_for as _wait_for

T = TypeVar("T")
START_TIMEOUT_S = 120.0


class MissingBinariesError(RuntimeError):
    pass


def client_for(kubeconfig: Path) -> client.ApiClient:
    """A `kubernetes.client.ApiClient` for a kubeconfig file (admin or a ServiceAccount's)."""
    # kubernetes.config is not annotated, unlike kubernetes.client.
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return api


class LocalCluster:
    def __init__(self, bins: dict[str, Path] | None = None, keep_dir: bool = False) -> None:
        if bins is None:
            bins, missing = binaries.resolve()
            if missing:
                raise MissingBinariesError(f"missing {', '.join(missing)}: run tests/e2e/cluster/install.sh")
        self.bins = bins
        self.keep_dir = keep_dir  # leave logs and certs behind for debugging
        self.procs: list[ManagedProcess] = []
        self._layout: Layout | None = None
        self._api_client: client.ApiClient | None = None
        self._node_count = 0
        self._lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        root = make_run_dir("inferno-e2e-cluster-")
        self._layout = lay = Layout(
            bins=self.bins,
            root=root,
            etcd_port=free_port(),
            etcd_peer_port=free_port(),
            apiserver_port=free_port(),
            controller_manager_port=free_port(),
            scheduler_port=free_port(),
            kwok_port=free_port(),
        )
        atexit.register(self.stop)  # last resort if the caller forgets; stop() is idempotent
        started = time.monotonic()
        try:
            make_cluster_pki(lay.pki, lay.server_url, lay.kubeconfig)
            for user in CLIENT_SUBJECTS:  # each component's --cert-dir
                (lay.root / user).mkdir(exist_ok=True)
            for group in components.server_groups(lay, self._admin_ssl()):
                self._start(group)
            # Pods are rejected until their namespace has its default ServiceAccount.
            self.wait_for(lambda: self._default_sa_exists("default"), what="default ServiceAccount")
        except BaseException:
            self.stop()
            raise
        print(f"[inferno-e2e] cluster up in {time.monotonic() - started:.1f}s at {lay.server_url}")
        return self

    def stop(self) -> None:
        with self._lock:
            procs, self.procs = self.procs, []
            interrupted: BaseException | None = None
            for proc in reversed(procs):  # dependents first, etcd last
                try:
                    proc.stop()
                except BaseException as exc:  # e.g. a second Ctrl-C: still stop the others
                    interrupted = interrupted or exc
            if self._api_client is not None:
                self._api_client.close()  # type: ignore[no-untyped-call]
                self._api_client = None
            lay, self._layout = self._layout, None
            if lay is not None and not self.keep_dir:
                shutil.rmtree(lay.root, ignore_errors=True)
            atexit.unregister(self.stop)
            if interrupted is not None:
                raise interrupted

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- properties ------------------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        if self._layout is None:
            raise RuntimeError("LocalCluster is not started")
        return self._layout

    @property
    def server_url(self) -> str:
        return self.layout.server_url

    @property
    def kubeconfig_path(self) -> Path:
        """Admin (system:masters) kubeconfig; pass to tools with KUBECONFIG=..."""
        return self.layout.kubeconfig("admin")

    @property
    def ca_cert(self) -> Path:
        return self.layout.pki / "ca.crt"

    @property
    def log_dir(self) -> Path:
        return self.layout.root / "logs"

    @property
    def api_client(self) -> client.ApiClient:
        """A shared admin `kubernetes.client.ApiClient`."""
        if self._api_client is None:
            self._api_client = client_for(self.kubeconfig_path)
        return self._api_client

    # ---- helpers for tests -----------------------------------------------------------------
    def wait_for(
        self, check: Callable[[], T | None], *, what: str, timeout_s: float = 60.0, interval_s: float = 0.25
    ) -> T:
        """Bounded wait that also fails fast, with the log tail, if a server has died."""

        def guarded() -> T | None:
            for proc in self.procs:
                proc.check_running()
            return check()

        return _wait_for(guarded, what=what, timeout_s=timeout_s, interval_s=interval_s)

    def add_gpu_nodes(
        self,
        product: str,
        count: int,
        gpus_per_node: int,
        *,
        pool: str = "default",
        labels: dict[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> list[str]:
        """Create `count` KWOK nodes of a GPU product and wait until they are Ready; return names.

        Names are "<short product>-<cluster-wide index>" (e.g. "h100-80gb-hbm3-7": the hostname label
        allows 63 characters); the `inferno.e2e/pool` label lets a test confine its pods.
        """
        spec = nodes.gpu_product(product)
        core = client.CoreV1Api(self.api_client)
        names = []
        for _ in range(count):
            with self._lock:
                index, self._node_count = self._node_count, self._node_count + 1
            name = f"{spec.short_name}-{index}"
            core.create_node(nodes.gpu_node_body(name, index, spec, gpus_per_node, pool, labels))
            names.append(name)
        self.wait_for(
            lambda: all(self._node_ready(core, n) for n in names),
            what=f"nodes {names} Ready",
            timeout_s=timeout_s,
        )
        return names

    def delete_gpu_nodes(self, pool: str) -> list[str]:
        """Delete the nodes of a pool (their pods go too); return the deleted names."""
        core = client.CoreV1Api(self.api_client)
        found = core.list_node(label_selector=f"{nodes.POOL_LABEL}={pool}").items
        names = [n.metadata.name for n in found if n.metadata and n.metadata.name]
        for name in names:
            core.delete_node(name)
        return names

    def create_namespace(self, name: str, timeout_s: float = 30.0) -> str:
        """Create a namespace and wait for its default ServiceAccount (pods need it)."""
        core = client.CoreV1Api(self.api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        self.wait_for(
            lambda: self._default_sa_exists(name), what=f"default SA in {name}", timeout_s=timeout_s
        )
        return name

    def serviceaccount_kubeconfig(self, namespace: str, name: str, expiration_s: int = 3600) -> Path:
        """A kubeconfig authenticating as an existing ServiceAccount (TokenRequest API), for RBAC tests."""
        core = client.CoreV1Api(self.api_client)
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_s)
        )
        status = core.create_namespaced_service_account_token(name, namespace, request).status
        if status is None or not status.token:
            raise RuntimeError(f"TokenRequest for {namespace}/{name} returned no token")
        token = status.token
        path = self.layout.root / f"sa-{namespace}-{name}.kubeconfig"
        return write_token_kubeconfig(path, self.server_url, self.ca_cert, f"{namespace}-{name}", token)

    # ---- fault injection (tests/e2e/test_faults_*.py) ---------------------------------------
    def stop_apiserver(self) -> None:
        """Stop kube-apiserver (SIGTERM, by pid); etcd and the other servers keep running."""
        with self._lock:
            proc = self._proc("kube-apiserver")
        proc.stop()

    def start_apiserver(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start kube-apiserver again with the same flags, port, certs and etcd; wait for /readyz."""
        with self._lock:
            old = self._proc("kube-apiserver")
            if old.running():
                return
            proc = ManagedProcess(old.name, old.argv, old.log_path)
            self.procs[self.procs.index(old)] = proc
        proc.start()
        ready = functools.partial(self._http_ok, f"{self.server_url}/readyz", self._admin_ssl())
        try:
            self.wait_for(ready, what="kube-apiserver ready after restart", timeout_s=timeout_s)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n--- kube-apiserver log tail ---\n{proc.log_tail()}") from exc

    def restart_apiserver(self, down_s: float = 0.0) -> None:
        """Stop kube-apiserver, leave it down for `down_s` seconds, start it and wait until ready."""
        self.stop_apiserver()
        time.sleep(down_s)
        self.start_apiserver()

    def _proc(self, name: str) -> ManagedProcess:
        found = [p for p in self.procs if p.name == name]
        if not found:
            raise RuntimeError(f"{name} is not part of this cluster (started?)")
        return found[0]

    def log_tail(self, component: str, lines: int = 30) -> str:
        return next((p.log_tail(lines) for p in self.procs if p.name == component), "")

    # ---- internals -------------------------------------------------------------------------
    def _start(self, servers: list[components.Server]) -> None:
        """Spawn each server, then wait until every health URL answers 200."""
        self.log_dir.mkdir(exist_ok=True)
        spawned = []
        for server in servers:
            proc = ManagedProcess(server.name, server.argv, self.log_dir / f"{server.name}.log")
            proc.start()
            self.procs.append(proc)
            spawned.append(proc)
        for proc, server in zip(spawned, servers, strict=True):
            ready = functools.partial(self._http_ok, server.health_url, server.tls)
            try:
                self.wait_for(ready, what=f"{server.name} ready", timeout_s=START_TIMEOUT_S)
            except TimeoutError as exc:
                raise RuntimeError(f"{exc}\n--- {server.name} log tail ---\n{proc.log_tail()}") from exc

    def _admin_ssl(self) -> ssl.SSLContext:
        pki = self.layout.pki
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    @staticmethod
    def _http_ok(url: str, ctx: ssl.SSLContext | None = None) -> bool:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            return bool(resp.status == 200)

    def _default_sa_exists(self, namespace: str) -> bool:
        sas = client.CoreV1Api(self.api_client).list_namespaced_service_account(namespace)
        return any(sa.metadata is not None and sa.metadata.name == "default" for sa in sas.items)

    @staticmethod
    def _node_ready(core: client.CoreV1Api, name: str) -> bool:
        status = core.read_node(name).status
        conditions = (status.conditions if status else None) or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)
