"""prometheus-adapter as the local control plane's external-metrics API, on loopback.

Role: `MetricsAdapter` runs prometheus-adapter (built from `sigs.k8s.io/prometheus-adapter`,
addons.py) against the local Prometheus and registers it as the APIService
`v1beta1.external.metrics.k8s.io`, so the HPA controller of the local kube-controller-manager reads
`inferno_desired_replicas` (published by the controller's /metrics) as an External metric.
Caller: the `metrics_adapter` session fixture in tests/e2e/conftest.py.

There is no kube-proxy, so a ClusterIP would lead nowhere: the APIService points at an
ExternalName Service `localhost`, which the aggregator resolves to `localhost:<port>`; it checks
the adapter's certificate against the name `<service>.<namespace>.svc`, which the serving
certificate (from the cluster's CA) carries. The adapter delegates authentication and
authorisation to the kube-apiserver (front-proxy client certificates, as any aggregated API).
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .local_cluster import LocalCluster
from .pki import Pki
from .procs import ManagedProcess, free_port

SERVICE_NAMESPACE = "kube-system"
SERVICE_NAME = "inferno-e2e-metrics-adapter"
APISERVICE = "v1beta1.external.metrics.k8s.io"
METRIC = "inferno_desired_replicas"

# External metric inferno_desired_replicas per namespace, selectable by the server's labels.
CONFIG = {
    "externalRules": [
        {
            "seriesQuery": f'{METRIC}{{namespace!="",deployment!=""}}',
            "resources": {"overrides": {"namespace": {"resource": "namespace"}}},
            "name": {"as": METRIC},
            "metricsQuery": "max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
        }
    ]
}


class MetricsAdapter:
    def __init__(self, cluster: LocalCluster, binary: Path, prometheus_url: str) -> None:
        self.cluster = cluster
        self.binary = binary
        self.prometheus_url = prometheus_url
        self.root = cluster.layout.root / "metrics-adapter"
        self.port = free_port()
        self.proc: ManagedProcess | None = None

    def start(self) -> MetricsAdapter:
        self.root.mkdir(parents=True, exist_ok=True)
        pki = Pki(self.cluster.layout.pki)
        sans = ["DNS:localhost", f"DNS:{SERVICE_NAME}.{SERVICE_NAMESPACE}.svc", "IP:127.0.0.1"]
        cert = pki.issue("metrics-adapter", "/CN=metrics-adapter", server_sans=sans)
        config = self.root / "config.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        kubeconfig = str(self.cluster.kubeconfig_path)
        argv = [
            str(self.binary),
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={cert.cert}",
            f"--tls-private-key-file={cert.key}",
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--prometheus-url={self.prometheus_url}",
            "--metrics-relist-interval=2s",
            f"--config={config}",
            "--v=2",
        ]
        self.proc = ManagedProcess(
            "prometheus-adapter", argv, self.cluster.log_dir / "prometheus-adapter.log"
        )
        self.proc.start()
        self._register(base64.b64encode(pki.ca_cert.read_bytes()).decode())
        self.cluster.wait_for(self._available, what="external metrics APIService available", timeout_s=90)
        return self

    def _register(self, ca_bundle: str) -> None:
        core = client.CoreV1Api(self.cluster.api_client)
        service = client.V1Service(
            metadata=client.V1ObjectMeta(name=SERVICE_NAME, namespace=SERVICE_NAMESPACE),
            spec=client.V1ServiceSpec(
                type="ExternalName",
                external_name="localhost",
                ports=[client.V1ServicePort(name="https", port=self.port, protocol="TCP")],
            ),
        )
        core.create_namespaced_service(SERVICE_NAMESPACE, service)
        body = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE},
            "spec": {
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "service": {"namespace": SERVICE_NAMESPACE, "name": SERVICE_NAME, "port": self.port},
                "caBundle": ca_bundle,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        }
        client.ApiregistrationV1Api(self.cluster.api_client).create_api_service(body)

    def _available(self) -> bool:
        assert self.proc is not None
        self.proc.check_running()
        found = client.ApiregistrationV1Api(self.cluster.api_client).read_api_service(APISERVICE)
        conditions = (found.status.conditions if found.status else None) or []
        return any(c.type == "Available" and c.status == "True" for c in conditions)

    def stop(self) -> None:
        try:
            client.ApiregistrationV1Api(self.cluster.api_client).delete_api_service(APISERVICE)
            client.CoreV1Api(self.cluster.api_client).delete_namespaced_service(
                SERVICE_NAME, SERVICE_NAMESPACE
            )
        except (ApiException, OSError):
            pass  # the cluster may be stopping too
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
