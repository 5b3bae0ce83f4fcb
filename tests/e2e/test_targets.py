"""E2e: scale targets beyond Deployments on the real control plane.

Role: issue 21's "done when" for targets. A LeaderWorkerSet (CRD from `sigs.k8s.io/lws`, its
controller and webhooks built from the same module) is scaled up and down by the full cycle and
its groups of pods really appear on (and leave) the KWOK GPU nodes. An InferenceService (CRD from
`github.com/kserve/kserve`, with its schema) is patched in RawDeployment mode and the real
apiserver accepts the patch. A custom resource with a /scale subresource is scaled through it; one
without /scale, and a kind whose CRD is not installed, are reported with the reason and nothing of
them is patched. The ServiceAccount with the targets component's RBAC can do exactly what the
services need on the new kinds, and runs the cycle on them.

The load comes from the servers' labels (no Prometheus URL: labels are the trusted source), so
each cycle's decision follows what the test writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, utils

from .cluster.local_cluster import LocalCluster, client_for
from .cluster.lws import LwsController
from .cluster.nodes import POOL_LABEL
from .harness.data import DYNAMIC_CONFIGMAP, GPU_LABEL, GPU_RESOURCE, PRODUCTS, STATIC_CONFIGMAP
from .harness.rbac import apply_rbac, manifest_documents
from .harness.scenario import Scenario

pytestmark = pytest.mark.e2e

LWS = ("leaderworkerset.x-k8s.io", "v1", "leaderworkersets")
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")
E2E_GROUP = "e2e.inferno.dev"


def managed_labels(name: str, rpm: int, batch: int = 9) -> dict[str, str]:
    return {
        "inferno.server.managed": "true",
        "inferno.server.name": name,
        "inferno.server.model": "llama_13b",
        "inferno.server.class": "Free",
        "inferno.server.allocation.accelerator": "L4",
        "inferno.server.allocation.maxbatchsize": str(batch),
        "inferno.server.load.rpm": str(rpm),
        "inferno.server.load.intokens": "128",
        "inferno.server.load.outtokens": "32",
    }


BOUNDS = {
    "inferno.server/min-replicas": "1",
    "inferno.server/max-replicas": "4",
    "inferno.server/keep-accelerator": "true",
}


def pod_spec(pool: str, args: list[str], gpus: int) -> dict[str, Any]:
    return {
        "nodeSelector": {GPU_LABEL: PRODUCTS["L4"], POOL_LABEL: pool},
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "vllm",
                "image": "registry.invalid/vllm:fake",
                "args": args,
                "resources": {"requests": {GPU_RESOURCE: str(gpus)}, "limits": {GPU_RESOURCE: str(gpus)}},
            }
        ],
    }


def lws_body(name: str, pool: str, rpm: int) -> dict[str, Any]:
    """Groups of 2 pods with 1 L4 each: 2 cards per replica, as llama_13b needs on L4."""
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "labels": managed_labels(name, rpm), "annotations": BOUNDS},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": 2,
                "leaderTemplate": {
                    "spec": pod_spec(pool, ["--model", "llama_13b", "--max-num-seqs", "9"], 1)
                },
                "workerTemplate": {"spec": pod_spec(pool, ["--worker"], 1)},
            },
        },
    }


def group_pods(scenario: Scenario, name: str) -> list[tuple[str, str, str]]:
    """(pod, node, phase) of the LeaderWorkerSet's live pods."""
    pods = scenario.core.list_namespaced_pod(
        scenario.ns, label_selector=f"leaderworkerset.sigs.k8s.io/name={name}"
    )
    return [
        (p.metadata.name, p.spec.node_name or "", p.status.phase or "")
        for p in pods.items
        if p.metadata.deletion_timestamp is None
    ]


def applied(report: dict[str, Any], name: str) -> bool:
    return any(a["deployment"] == name and a["outcome"] == "applied" for a in report["actions"])


def test_leader_worker_set_scales_up_and_down_with_groups_on_kwok_nodes(
    scenario: Scenario, lws_controller: LwsController
) -> None:
    name = "multi-llama"
    nodes = set(scenario.add_nodes("L4", count=4, gpus_per_node=2))
    scenario.apply_data()
    custom = client.CustomObjectsApi(scenario.cluster.api_client)
    custom.create_namespaced_custom_object(
        *LWS[:2], scenario.ns, LWS[2], lws_body(name, scenario.ns, rpm=3000)
    )

    def running(count: int) -> bool:
        pods = group_pods(scenario, name)
        return len(pods) == count and all(phase == "Running" and node in nodes for _, node, phase in pods)

    scenario.wait(lambda: running(2), "the LWS controller's first group (leader + worker) running")
    autoscaler = scenario.start_autoscaler(
        prometheus_url="", INFERNO_TARGET_KINDS="Deployment,LeaderWorkerSet"
    )

    report = autoscaler.invoke_until(lambda r: applied(r, name), "the LeaderWorkerSet scaled up")
    decision = next(d for d in report["decisions"] if d["server"] == name)
    action = next(a for a in report["actions"] if a["deployment"] == name)
    up = decision["replicas"]
    assert decision["accelerator"] == "L4" and up > 1, decision
    assert action["target"]["kind"] == "LeaderWorkerSet" and action["replicas_target"] == up, action
    stored = custom.get_namespaced_custom_object(*LWS[:2], scenario.ns, LWS[2], name)
    assert stored["spec"]["replicas"] == up
    scenario.wait(lambda: running(2 * up), f"{up} groups of 2 pods on the pool's L4 nodes", timeout_s=90)

    custom.patch_namespaced_custom_object(
        *LWS[:2], scenario.ns, LWS[2], name, {"metadata": {"labels": {"inferno.server.load.rpm": "30"}}}
    )
    report = autoscaler.invoke_until(lambda r: applied(r, name), "the LeaderWorkerSet scaled down")
    down = next(d for d in report["decisions"] if d["server"] == name)["replicas"]
    assert down < up, report["decisions"]
    assert (
        custom.get_namespaced_custom_object(*LWS[:2], scenario.ns, LWS[2], name)["spec"]["replicas"] == down
    )
    scenario.wait(lambda: running(2 * down), f"back to {down} group(s)", timeout_s=90)
    custom.delete_namespaced_custom_object(*LWS[:2], scenario.ns, LWS[2], name)


def crd(plural: str, kind: str, scale: bool) -> dict[str, Any]:
    """A small namespaced CRD of our own, with or without a /scale subresource."""
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if scale:
        version["subresources"] = {
            "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{E2E_GROUP}"},
        "spec": {
            "group": E2E_GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [version],
        },
    }


def isvc_body(name: str, pool: str, rpm: int) -> dict[str, Any]:
    predictor = pod_spec(pool, [], 2)
    model = predictor.pop("containers")[0]
    model.pop("name")
    model.pop("image")
    model["args"] = ["--model_name", name, "--max-num-seqs", "9"]
    model["modelFormat"] = {"name": "huggingface"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "labels": managed_labels(name, rpm),
            "annotations": {
                **BOUNDS,
                "serving.kserve.io/deploymentMode": "RawDeployment",
                "serving.kserve.io/autoscalerClass": "none",
            },
        },
        "spec": {"predictor": {**predictor, "minReplicas": 1, "maxReplicas": 1, "model": model}},
    }


def test_inference_service_and_scale_resources_are_patched_and_unusable_kinds_are_reported(
    scenario: Scenario, addon_files: dict[str, Any]
) -> None:
    scenario.add_nodes("L4", count=10, gpus_per_node=2)  # 4 + 4 replicas of 2 cards, and a surge
    scenario.apply_data()
    ext = client.ApiextensionsV1Api(scenario.cluster.api_client)
    for body in (crd("scalers", "Scaler", scale=True), crd("widgets", "Widget", scale=False)):
        try:
            ext.create_custom_resource_definition(body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    custom = client.CustomObjectsApi(scenario.cluster.api_client)
    scenario.wait(
        lambda: (
            {r.name for r in custom.get_api_resources(E2E_GROUP, "v1").resources}
            >= {"scalers", "scalers/scale", "widgets"}
        ),
        "our CRDs served",
    )
    ns = scenario.ns
    custom.create_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], isvc_body("kserve-llama", ns, rpm=3000))
    for plural, kind, server in (("scalers", "Scaler", "scaled"), ("widgets", "Widget", "unscalable")):
        body = {
            "apiVersion": f"{E2E_GROUP}/v1",
            "kind": kind,
            "metadata": {"name": server, "labels": managed_labels(server, 3000), "annotations": BOUNDS},
            "spec": {"replicas": 1},
        }
        custom.create_namespaced_custom_object(E2E_GROUP, "v1", ns, plural, body)
    widget_before = custom.get_namespaced_custom_object(E2E_GROUP, "v1", ns, "widgets", "unscalable")
    kinds = f"InferenceService,scalers.{E2E_GROUP}/v1,widgets.{E2E_GROUP}/v1,rollouts.argoproj.io/v1alpha1"
    autoscaler = scenario.start_autoscaler(prometheus_url="", INFERNO_TARGET_KINDS=kinds)

    done: set[str] = set()

    def both_applied(report: dict[str, Any]) -> bool:
        done.update(name for name in ("kserve-llama", "scaled") if applied(report, name))
        return done == {"kserve-llama", "scaled"}

    report = autoscaler.invoke_until(both_applied, "InferenceService and Scaler patched")
    decisions = {d["server"]: d for d in report["decisions"]}
    # the real CRD schema accepted the merge patch: min = max = the decision, batch in the args
    predictor = custom.get_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], "kserve-llama")["spec"][
        "predictor"
    ]
    wanted = decisions["kserve-llama"]["replicas"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (wanted, wanted), predictor
    assert predictor["model"]["args"][-1] == str(decisions["kserve-llama"]["max_batch"])
    assert predictor["model"]["modelFormat"] == {"name": "huggingface"}
    scale = custom.get_namespaced_custom_object_scale(E2E_GROUP, "v1", ns, "scalers", "scaled")
    assert scale["spec"]["replicas"] == decisions["scaled"]["replicas"] > 1, scale
    scaled_action = next(a for a in report["actions"] if a["deployment"] == "scaled")
    assert any(
        "replicas only: Scaler is scaled through its /scale subresource" in r
        for r in scaled_action["reasons"]
    )

    skipped = report["collected"]["skipped"]
    assert (
        f"Widget: widgets.{E2E_GROUP} has no /scale subresource: it cannot be scaled; nothing is patched"
        in skipped
    )
    assert any(
        line.startswith("rollouts.argoproj.io: rollouts.argoproj.io/v1alpha1 is not served")
        for line in skipped
    ), skipped
    assert "unscalable" not in decisions and all(a["deployment"] != "unscalable" for a in report["actions"])
    widget_after = custom.get_namespaced_custom_object(E2E_GROUP, "v1", ns, "widgets", "unscalable")
    assert widget_after["metadata"]["resourceVersion"] == widget_before["metadata"]["resourceVersion"]


@pytest.fixture
def targets_sa_kubeconfig(local_cluster: LocalCluster, addon_files: dict[str, Any]) -> Iterator[Path]:
    """The shipped RBAC plus the targets component's ClusterRole, and a token of the ServiceAccount."""
    namespace, name = apply_rbac(local_cluster)
    for doc in manifest_documents("components/targets/rbac-targets.yaml"):
        try:
            utils.create_from_dict(local_cluster.api_client, doc)  # type: ignore[no-untyped-call]
        except utils.FailToCreateError as exc:
            if {getattr(e, "status", None) for e in exc.api_exceptions} != {409}:
                raise
    yield local_cluster.serviceaccount_kubeconfig(namespace, name)
    core = client.CoreV1Api(local_cluster.api_client)
    for cm in (STATIC_CONFIGMAP, DYNAMIC_CONFIGMAP):
        try:
            core.delete_namespaced_config_map(cm, namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def status_of(call: Callable[[], Any]) -> int:
    try:
        call()
    except client.ApiException as exc:
        return int(exc.status)
    return 200


def test_serviceaccount_manages_the_new_kinds_with_least_privilege(
    scenario: Scenario, targets_sa_kubeconfig: Path
) -> None:
    ns = scenario.ns
    admin = client.CustomObjectsApi(scenario.cluster.api_client)
    admin.create_namespaced_custom_object(*LWS[:2], ns, LWS[2], lws_body("rbac-lws", ns, rpm=30))
    admin.create_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], isvc_body("rbac-isvc", ns, rpm=3000))
    api = client_for(targets_sa_kubeconfig)
    try:
        custom = client.CustomObjectsApi(api)
        label = {"metadata": {"labels": {"rbac-check": "yes"}}}
        allowed: dict[str, Callable[[], Any]] = {
            "list leaderworkersets (all namespaces)": lambda: custom.list_custom_object_for_all_namespaces(
                *LWS
            ),
            "get leaderworkerset": lambda: custom.get_namespaced_custom_object(
                *LWS[:2], ns, LWS[2], "rbac-lws"
            ),
            "patch leaderworkerset": lambda: custom.patch_namespaced_custom_object(
                *LWS[:2], ns, LWS[2], "rbac-lws", label
            ),
            "list inferenceservices": lambda: custom.list_namespaced_custom_object(*ISVC[:2], ns, ISVC[2]),
            "patch inferenceservice": lambda: custom.patch_namespaced_custom_object(
                *ISVC[:2], ns, ISVC[2], "rbac-isvc", label
            ),
        }
        forbidden: dict[str, Callable[[], Any]] = {
            "create leaderworkerset": lambda: custom.create_namespaced_custom_object(
                *LWS[:2], ns, LWS[2], lws_body("copy", ns, rpm=1)
            ),
            "delete leaderworkerset": lambda: custom.delete_namespaced_custom_object(
                *LWS[:2], ns, LWS[2], "rbac-lws"
            ),
            "patch leaderworkersets/scale": lambda: custom.patch_namespaced_custom_object_scale(
                *LWS[:2], ns, LWS[2], "rbac-lws", {"spec": {"replicas": 3}}
            ),
            "delete inferenceservice": lambda: custom.delete_namespaced_custom_object(
                *ISVC[:2], ns, ISVC[2], "rbac-isvc"
            ),
            "create inferenceservice": lambda: custom.create_namespaced_custom_object(
                *ISVC[:2], ns, ISVC[2], isvc_body("copy", ns, rpm=1)
            ),
            "list widgets (a kind not granted)": lambda: custom.list_namespaced_custom_object(
                E2E_GROUP, "v1", ns, "widgets"
            ),
        }
        got_allowed = {what: status_of(call) for what, call in allowed.items()}
        got_forbidden = {what: status_of(call) for what, call in forbidden.items()}
    finally:
        api.close()  # type: ignore[no-untyped-call]
    assert got_allowed == dict.fromkeys(allowed, 200)
    assert got_forbidden == dict.fromkeys(forbidden, 403)

    # the whole cycle with the ServiceAccount's rights patches the InferenceService
    scenario.config_namespace = "inferno"  # the Role grants its two ConfigMaps there only
    scenario.add_nodes("L4", count=10, gpus_per_node=2)  # room for both servers and a surge
    scenario.apply_data()
    autoscaler = scenario.start_autoscaler(
        kubeconfig=targets_sa_kubeconfig,
        prometheus_url="",
        INFERNO_TARGET_KINDS="LeaderWorkerSet,InferenceService",
    )
    report = autoscaler.invoke_until(
        lambda r: applied(r, "rbac-isvc"), "the InferenceService patched by the SA"
    )
    assert not report["errors"], report["errors"]
    wanted = next(d for d in report["decisions"] if d["server"] == "rbac-isvc")["replicas"]
    predictor = admin.get_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], "rbac-isvc")["spec"]["predictor"]
    assert predictor["minReplicas"] == predictor["maxReplicas"] == wanted > 1
    admin.delete_namespaced_custom_object(*LWS[:2], ns, LWS[2], "rbac-lws")
