"""E2e: one writer for replicas. The HPA of the local kube-controller-manager scales the Deployment
to the count the controller publishes, and the actuator writes no replicas.

Role: issue 21's "done when" for the one-writer mode. The autoscaler runs with
`INFERNO_ACTUATION_MODE=hpa`; Prometheus scrapes the controller's `/metrics`
(`inferno_desired_replicas`); prometheus-adapter, built from its Go module, serves it as an
External metric through the kube-apiserver (`external.metrics.k8s.io`); a real
`autoscaling/v2` HorizontalPodAutoscaler (manifests/samples/one-writer/hpa.yaml, target
AverageValue 1 so that replicas = the published value) scales the Deployment. The managedFields
show who wrote `spec.replicas`: the HPA (through `/scale`), never the actuator.

Whose stabilisation applies: the controller's scale-down window shapes the published count (the
optimizer's floor); the HPA's own `behavior` windows apply on top (its default scale-down window
is 300 s), so the sample sets them to 0 and leaves stabilisation to the controller.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from .cluster.metrics_adapter import METRIC, MetricsAdapter
from .cluster.prometheus import ScrapeTarget
from .harness.data import ServerSpec, server_deployment
from .harness.rbac import manifest_documents
from .harness.scenario import Scenario
from .harness.services import Autoscaler

pytestmark = pytest.mark.e2e

SERVER = ServerSpec(
    name="hpa-llama", model="llama_13b", service_class="Free", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=30, max_replicas=4, keep_accelerator=True,
)  # fmt: skip


def hpa(name: str, max_replicas: int) -> dict[str, Any]:
    """manifests/samples/one-writer/hpa.yaml, pointed at `name`."""
    (doc,) = manifest_documents("samples/one-writer/hpa.yaml")
    doc["metadata"] = {"name": name}
    spec: dict[str, Any] = doc["spec"]
    spec["scaleTargetRef"]["name"] = name
    spec["maxReplicas"] = max_replicas
    spec["metrics"][0]["external"]["metric"]["selector"]["matchLabels"]["deployment"] = name
    return doc


def replicas_writers(deployment: client.V1Deployment) -> list[tuple[str, str]]:
    """(manager, subresource) of every managedFields entry that owns spec.replicas."""
    assert deployment.metadata is not None
    return [
        (entry.manager or "", entry.subresource or "")
        for entry in deployment.metadata.managed_fields or []
        if "f:replicas" in ((entry.fields_v1 or {}).get("f:spec") or {})
    ]


def test_the_hpa_is_the_only_writer_of_replicas(scenario: Scenario, metrics_adapter: MetricsAdapter) -> None:
    scenario.add_nodes("L4", count=4, gpus_per_node=2)
    scenario.apply_data()
    body = server_deployment(SERVER, scenario.ns)
    assert body.metadata is not None and body.metadata.labels is not None
    body.metadata.labels.update({"inferno.server.load.rpm": "30", "inferno.server.load.intokens": "128",
                                 "inferno.server.load.outtokens": "32"})  # fmt: skip
    scenario.apps.create_namespaced_deployment(scenario.ns, body)
    autoscaler = scenario.start_autoscaler(
        prometheus_url="", INFERNO_ACTUATION_MODE="hpa", INFERNO_ACTUATOR_ALLOW_SCALE_TO_ZERO="false"
    )
    controller = ScrapeTarget(
        f"127.0.0.1:{autoscaler.ports['controller']}", {"job_role": "inferno-controller"}
    )
    scenario.prometheus.set_targets([controller], name="inferno-controller")
    try:
        check_one_writer(scenario, autoscaler)
    finally:
        scenario.prometheus.set_targets([], name="inferno-controller")


def check_one_writer(scenario: Scenario, autoscaler: Autoscaler) -> None:
    client.AutoscalingV2Api(scenario.cluster.api_client).create_namespaced_horizontal_pod_autoscaler(
        scenario.ns, hpa(SERVER.name, SERVER.max_replicas)
    )

    report = autoscaler.invoke()
    action = next(a for a in report["actions"] if a["deployment"] == SERVER.name)
    desired = action["replicas_target"]
    assert desired > 1, action
    assert any("one-writer mode: replicas are the HPA's" in r for r in action["reasons"]), action
    assert scenario.replicas(SERVER.name) == 1  # the actuator left them
    selector = f'{METRIC}{{namespace="{scenario.ns}",deployment="{SERVER.name}"}}'
    scenario.wait(lambda: scenario.prometheus.query_value(selector) == desired, "the desired count scraped")

    custom = client.CustomObjectsApi(scenario.cluster.api_client)

    def external() -> Any:
        return custom.list_namespaced_custom_object(
            "external.metrics.k8s.io",
            "v1beta1",
            scenario.ns,
            METRIC,
            label_selector=f"deployment={SERVER.name}",
        )

    scenario.wait(lambda: external().get("items"), "the external metric served by prometheus-adapter")
    scenario.wait(
        lambda: scenario.replicas(SERVER.name) == desired,
        f"the HPA scaling to the published {desired}",
        timeout_s=90,
    )
    for _ in range(3):  # more cycles: the actuator still writes no replicas
        autoscaler.invoke()
    dep = scenario.deployment(SERVER.name)
    writers = replicas_writers(dep)
    assert writers == [("kube-controller-manager", "scale")], (writers, external())
    assert dep.spec is not None and dep.spec.replicas == desired
