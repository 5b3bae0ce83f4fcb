"""Command lines of the control-plane servers, all bound to 127.0.0.1 on free ports.

Role: pure functions from a `Layout` (binary paths, ports, file paths) to argv lists and health
URLs (`server_groups`, in start order), called by `local_cluster.LocalCluster.start`. Kept apart
from the process handling so the flags can be read (and reviewed) in one place.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .procs import LOOPBACK

SERVICE_CIDR = "10.0.0.0/24"  # service ClusterIPs are never dialled: there is no kube-proxy
DEFAULT_POD_CIDR = "127.63.0.0/16"  # KWOK's fallback when a node has no spec.podCIDR


CONTROLLERS = [
    f"{name}-controller"
    for name in (
        "deployment",
        "replicaset",
        "horizontal-pod-autoscaler",  # the one-writer e2e (test_one_writer.py); idle without HPAs
        "statefulset",
        "daemonset",
        "job",
        "disruption",
        "serviceaccount",
        "serviceaccount-token",
        "root-ca-certificate-publisher",
        "namespace",
        "garbage-collector",
        "resourcequota",
        "clusterrole-aggregation",
        "node-lifecycle",
        "taint-eviction",
        "pod-garbage-collector",
        "endpoints",
        "endpointslice",
    )
]


class Server(NamedTuple):
    name: str
    argv: list[str]
    health_url: str  # answers 200 once the server is ready
    tls: ssl.SSLContext | None = None


@dataclass(frozen=True)
class Layout:
    bins: dict[str, Path]
    root: Path  # the cluster's temp dir
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int
    controller_manager_port: int
    scheduler_port: int
    kwok_port: int

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def server_url(self) -> str:
        return f"https://{LOOPBACK}:{self.apiserver_port}"

    def kubeconfig(self, user: str) -> Path:
        return self.root / f"{user}.kubeconfig"


def etcd(lay: Layout) -> list[str]:
    client = f"http://{LOOPBACK}:{lay.etcd_port}"
    peer = f"http://{LOOPBACK}:{lay.etcd_peer_port}"
    return [
        str(lay.bins["etcd"]),
        "--name=e2e",
        f"--data-dir={lay.root / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=e2e={peer}",
        # Test data is throwaway: skipping fsync makes every write (and so every test) faster.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def kube_apiserver(lay: Layout) -> list[str]:
    pki = lay.pki
    return [
        str(lay.bins["kube-apiserver"]),
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={lay.apiserver_port}",
        f"--etcd-servers=http://{LOOPBACK}:{lay.etcd_port}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # No real endpoints to publish for the "kubernetes" Service; the default reconciler would
        # also advertise an address other processes might dial.
        "--endpoint-reconciler-type=none",
        # Front-proxy (aggregation) settings: the scheduler and controller-manager read this CA
        # from a ConfigMap for their delegated authn and log errors every second without it.
        f"--requestheader-client-ca-file={pki / 'ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _component_common(lay: Layout, user: str, port: int) -> list[str]:
    kubeconfig = lay.kubeconfig(user)
    return [
        f"--kubeconfig={kubeconfig}",
        # Delegated authn/authz for their own /healthz endpoints; without these they log errors.
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={lay.root / user}",
        "--leader-elect=false",  # single instance: skip the lease wait at start
        "--profiling=false",
        "--v=1",
    ]


def kube_controller_manager(lay: Layout) -> list[str]:
    pki = lay.pki
    return [
        str(lay.bins["kube-controller-manager"]),
        *_component_common(lay, "kube-controller-manager", lay.controller_manager_port),
        # Each controller acts as its own service account, so the default RBAC policy applies.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Only the workload, namespace, RBAC and node controllers: with per-controller service
        # accounts each controller costs a token round trip, and all of them took ~4 s to start.
        "--controllers=" + ",".join(CONTROLLERS),
        "--allocate-node-cidrs=false",  # nodes come with their own loopback podCIDR
        "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10",
    ]


def kube_scheduler(lay: Layout) -> list[str]:
    return [str(lay.bins["kube-scheduler"]), *_component_common(lay, "kube-scheduler", lay.scheduler_port)]


def kwok(lay: Layout) -> list[str]:
    return [
        str(lay.bins["kwok"]),
        f"--kubeconfig={lay.kubeconfig('kwok')}",
        # Options go on the command line: a KwokConfiguration file would skip kwok's defaulting.
        f"--config={lay.bins['kwok-stages.yaml']}",
        f"--cidr={DEFAULT_POD_CIDR}",
        f"--node-ip={LOOPBACK}",
        f"--server-address={LOOPBACK}:{lay.kwok_port}",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--node-lease-duration-seconds=40",
    ]


def server_groups(lay: Layout, admin_tls: ssl.SSLContext) -> list[list[Server]]:
    """Start order: each group starts together once the previous group is healthy."""
    self_signed = ssl.create_default_context()  # scheduler/controller-manager make their own certs
    self_signed.check_hostname, self_signed.verify_mode = False, ssl.CERT_NONE
    local = f"{LOOPBACK}:"
    return [
        [Server("etcd", etcd(lay), f"http://{local}{lay.etcd_port}/health")],
        [Server("kube-apiserver", kube_apiserver(lay), f"{lay.server_url}/readyz", admin_tls)],
        # These three only need the API server, so they start side by side.
        [
            Server(
                "kube-controller-manager",
                kube_controller_manager(lay),
                f"https://{local}{lay.controller_manager_port}/healthz",
                self_signed,
            ),
            Server(
                "kube-scheduler",
                kube_scheduler(lay),
                f"https://{local}{lay.scheduler_port}/healthz",
                self_signed,
            ),
            Server("kwok", kwok(lay), f"http://{local}{lay.kwok_port}/healthz"),
        ],
    ]
