"""The kustomize base and the Dockerfile: least-privilege RBAC, hardened containers, wiring that
matches the settings models, data files in sync with samples/small, sample workloads manageable."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from actuator.deployment import flag_value, view_of
from actuator.settings import ENV_PREFIX as ACTUATOR_PREFIX
from actuator.settings import ActuatorSettings
from collector.settings import ENV_PREFIX as COLLECTOR_PREFIX
from collector.settings import CollectorSettings
from controller.settings import ENV_PREFIX as CONTROLLER_PREFIX
from controller.settings import ControllerSettings
from plumbing.entry import SERVICES
from plumbing.settings import env_name, load_settings

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
PORTS = {"controller": 3300, "collector": 3301, "optimizer": 3302, "actuator": 3303}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base() -> dict[str, list[dict[str, Any]]]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for resource in kustomization["resources"]:
        for doc in _docs(MANIFESTS / resource):
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def _rules(kind: str) -> set[tuple[str, str, str, tuple[str, ...]]]:
    (role,) = _base()[kind]
    return {
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_cluster_role_verbs_are_exactly_the_needed_ones() -> None:
    expected = {("apps", "deployments", v, ()) for v in ("get", "list", "watch", "patch")}
    expected |= {("", r, v, ()) for r in ("nodes", "pods") for v in ("get", "list")}
    expected |= {("", "events", "create", ())}
    assert _rules("ClusterRole") == expected


def test_namespaced_role_reads_its_configmaps_patches_the_dynamic_one_and_holds_its_lease() -> None:
    cms = ("inferno-static-data", "inferno-dynamic-data")
    lease = ("inferno-autoscaler",)
    history = (_env("controller")["INFERNO_CONTROLLER_LOAD_HISTORY_CONFIGMAP"]["value"],)
    assert history == ("inferno-load-history",)
    (shipped,) = [c for c in _base()["ConfigMap"] if c["metadata"]["name"] == history[0]]
    assert not shipped.get("data")  # shipped empty: the controller patches it, never creates it
    assert _rules("Role") == {
        ("", "configmaps", "get", cms),
        ("", "configmaps", "patch", ("inferno-dynamic-data",)),  # calibration-data.json
        ("", "configmaps", "get", history),
        ("", "configmaps", "patch", history),
        ("coordination.k8s.io", "leases", "get", lease),
        ("coordination.k8s.io", "leases", "update", lease),
        ("coordination.k8s.io", "leases", "create", ()),
    }


def test_no_wildcards_no_secrets_no_deployment_create_or_delete() -> None:
    rules = _rules("ClusterRole") | _rules("Role")
    assert not any("*" in (g, r, v) for g, r, v, _ in rules)
    assert not any(r == "secrets" for _, r, _, _ in rules)
    assert not any(r == "deployments" and v in ("create", "delete", "update") for _, r, v, _ in rules)


def _pod() -> dict[str, Any]:
    (deployment,) = _base()["Deployment"]
    return deployment["spec"]["template"]["spec"]


def _env(container: str) -> dict[str, dict[str, Any]]:
    """A container's env entries by variable name."""
    (found,) = [c for c in _pod()["containers"] if c["name"] == container]
    return {e["name"]: e for e in found.get("env", [])}


def test_two_replicas_with_leader_election_on_the_rbac_lease() -> None:
    (deployment,) = _base()["Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    # one pod at a time in a rollout: the other keeps (or takes over) the Lease
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    env = _env("controller")
    assert env["INFERNO_CONTROLLER_LEADER_ELECTION"]["value"] == "true"
    assert env["INFERNO_CONTROLLER_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert (
        env["INFERNO_CONTROLLER_LEASE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"]
        == "metadata.namespace"
    )
    lease_names = {
        names for group, res, verb, names in _rules("Role") if res == "leases" and verb == "update"
    }
    assert lease_names == {(env["INFERNO_CONTROLLER_LEASE_NAME"]["value"],)}
    anti = _pod()["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_disruption_budget_keeps_one_of_the_two_pods() -> None:
    (deployment,) = _base()["Deployment"]
    (pdb,) = _base()["PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1 < deployment["spec"]["replicas"]  # a drain can still proceed
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_pod_and_containers_are_hardened() -> None:
    pod = _pod()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["serviceAccountName"] == "inferno-autoscaler"
    assert [c["name"] for c in pod["containers"]] == list(PORTS)
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["runAsNonRoot"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert "readinessProbe" in container


def test_containers_run_their_service_on_the_default_port() -> None:
    for container in _pod()["containers"]:
        name = container["name"]
        assert container["args"] == [name] and name in SERVICES
        assert container["ports"][0]["containerPort"] == PORTS[name]


def test_env_vars_are_known_settings() -> None:
    known = {
        "controller": {
            env_name(ControllerSettings, f, CONTROLLER_PREFIX) for f in ControllerSettings.model_fields
        },
        "actuator": {env_name(ActuatorSettings, f, ACTUATOR_PREFIX) for f in ActuatorSettings.model_fields},
        "collector": {
            env_name(CollectorSettings, f, COLLECTOR_PREFIX) for f in CollectorSettings.model_fields
        },
        "optimizer": {"INFERNO_OPTIMIZER_HOST", "INFERNO_OPTIMIZER_PORT", "INFERNO_OPTIMIZER_SOLVER"},
    }
    for container in _pod()["containers"]:
        for env in container.get("env", []):
            assert env["name"] in known[container["name"]], (container["name"], env["name"])


def _values(container: str) -> dict[str, str]:
    """The literal values a container's env sets (entries taken from the pod, e.g. its name, left out)."""
    return {name: e["value"] for name, e in _env(container).items() if "value" in e}


def test_shipped_values_load_and_class_windows_name_shipped_classes() -> None:
    controller = load_settings(ControllerSettings, CONTROLLER_PREFIX, _values("controller"))
    collector = load_settings(CollectorSettings, COLLECTOR_PREFIX, _values("collector"))
    actuator = load_settings(ActuatorSettings, ACTUATOR_PREFIX, _values("actuator"))
    assert controller.dry_run is False and actuator.dry_run is False
    assert collector.config_namespace == "inferno"
    classes = json.loads((MANIFESTS / "data/serviceclass-data.json").read_text())["serviceClasses"]
    by_priority = sorted(classes, key=lambda c: c["priority"])
    # a window named for a class the data does not have would silently do nothing
    assert set(controller.scale_down_window_by_class_s) <= {c["name"] for c in classes}
    # only the best-effort (lowest-priority) class gives its replicas back without a window
    assert controller.scale_down_window_by_class_s == {by_priority[-1]["name"]: 0.0}
    policy = controller.window_policy()
    assert policy.window_s(by_priority[0]["name"]) == controller.scale_down_window_s == 300.0


def test_service_exposes_only_the_controller_port() -> None:
    (service,) = _base()["Service"]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(3300, "controller")]
    (policy,) = _base()["NetworkPolicy"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [3300]


def test_configmap_data_matches_samples_small() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    names = {g["name"]: g["files"] for g in kustomization["configMapGenerator"]}
    assert set(names) == {"inferno-static-data", "inferno-dynamic-data"}
    for files in names.values():
        for file in files:
            copy = MANIFESTS / file
            assert json.loads(copy.read_text()) == json.loads(
                (REPO / "samples/small" / copy.name).read_text()
            )


def test_sample_inference_deployments_are_manageable() -> None:
    servers = {
        s["name"] for s in json.loads((REPO / "samples/small/server-data.json").read_text())["servers"]
    }
    docs = [d for d in _docs(MANIFESTS / "samples/inference-deployments.yaml") if d["kind"] == "Deployment"]
    assert len(docs) >= 2
    forms = set()
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["inferno.server.managed"] == "true"
        assert labels["inferno.server.name"] in servers
        view = view_of(doc)
        assert flag_value(view.args, "--max-num-seqs") == labels["inferno.server.allocation.maxbatchsize"]
        forms |= {"equals" if any(a.startswith("--max-num-seqs=") for a in view.args) else "space"}
    assert forms == {"equals", "space"}


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "\nARG BASE_IMAGE=python:3.11-slim\n" in text
    assert text.count("\nFROM ${BASE_IMAGE}") == 2
    assert "USER 10001:10001" in text
    assert 'ENTRYPOINT ["python", "-m", "plumbing.entry"]' in text


def test_dockerfile_fails_on_failures_and_installs_the_lock() -> None:
    """No frontend image to pull, no failure swallowed, dependencies only from requirements.lock."""
    text = (REPO / "Dockerfile").read_text()
    assert "# syntax" not in text
    assert "|| true" not in text and "||true" not in text
    assert "--require-hashes --no-deps --only-binary=:all: --no-compile" in text
    assert "-r requirements.lock" in text
    assert "pip install --no-index --no-deps --no-build-isolation --no-compile ." in text
    for label in ("source", "version", "licenses"):
        assert f"org.opencontainers.image.{label}=" in text


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_renders() -> None:
    for path in (MANIFESTS, MANIFESTS / "samples"):
        out = subprocess.run(
            ["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True, timeout=60
        )
        assert "kind: Deployment" in out.stdout
