"""Scale targets other than Deployments, end to end through the actuator with a fake API server:
LeaderWorkerSet (groups, GPUs split over the group's pods), InferenceService (RawDeployment,
min = max replicas), /scale-only kinds (replicas alone) and the kinds that cannot be used at all."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Collection
from typing import Any

import pytest

from actuator.app import Actuator
from actuator.executor import ObjectPort
from actuator.targets import merge_diff
from contract.targets import INFERENCE_SERVICE, LEADER_WORKER_SET, Shape, TargetRef
from contract.update import Outcome, ServerAction, UpdateRequest
from plumbing.client import ErrorKind, UpstreamError
from tests.unit.actuator.fakes import (
    NS,
    PLACEMENT,
    FakeKube,
    decision,
    deployment,
    server,
    settings,
    solution,
)

ROLLOUTS = TargetRef(
    kind="Rollout", group="argoproj.io", version="v1alpha1", resource="rollouts", shape=Shape.SCALE
)


def merge_apply(obj: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    out = dict(obj) if isinstance(obj, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_apply(out.get(key), value)
    return out


def pod(gpus: int, args: list[str] | None, selector: str = "NVIDIA-A100-SXM4-80GB") -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "vllm",
        "image": "vllm/vllm-openai",
        "resources": {
            "requests": {"cpu": "4", "nvidia.com/gpu": str(gpus)},
            "limits": {"nvidia.com/gpu": str(gpus)},
        },
    }
    if args is not None:
        container["args"] = args
    return {"nodeSelector": {"nvidia.com/gpu.product": selector}, "containers": [container]}


def lws(replicas: int = 2, size: int = 2, gpus: int = 8, leader: bool = True) -> dict[str, Any]:
    template: dict[str, Any] = {"size": size, "workerTemplate": {"spec": pod(gpus, ["--worker"])}}
    if leader:
        template["leaderTemplate"] = {"spec": pod(gpus, ["--model", "m", "--max-num-seqs", "64"])}
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {
            "name": "big",
            "namespace": NS,
            "uid": "uid-big",
            "resourceVersion": "7",
            "labels": {
                "inferno.server.managed": "true",
                "inferno.server.allocation.accelerator": "16xA100",
                "inferno.server.allocation.maxbatchsize": "64",
            },
        },
        "spec": {"replicas": replicas, "leaderWorkerTemplate": template},
    }


def isvc(mode: str = "RawDeployment", autoscaler: str | None = "none") -> dict[str, Any]:
    annotations = {"serving.kserve.io/deploymentMode": mode}
    if autoscaler is not None:
        annotations["serving.kserve.io/autoscalerClass"] = autoscaler
    model = {
        "modelFormat": {"name": "huggingface"},
        "args": ["--model_name", "m", "--max-num-seqs", "64"],
        "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "isvc",
            "namespace": NS,
            "uid": "uid-isvc",
            "resourceVersion": "3",
            "annotations": annotations,
            "labels": {
                "inferno.server.managed": "true",
                "inferno.server.allocation.accelerator": "A100",
                "inferno.server.allocation.maxbatchsize": "64",
            },
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 1,
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
                "model": model,
            }
        },
    }


def scale_obj(replicas: int = 2) -> dict[str, Any]:
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "ro", "namespace": NS, "uid": "uid-ro", "resourceVersion": "5"},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas},
    }


class FakeObjects(FakeKube):
    """FakeKube plus other kinds: merge patches applied as the API server does, with 409s."""

    def __init__(
        self, objects: dict[TargetRef, list[dict[str, Any]]], problems: dict[TargetRef, str]
    ) -> None:
        super().__init__()
        self.by_kind = {
            ref: {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs}
            for ref, objs in objects.items()
        }
        self.problems = problems
        self.object_patches: list[tuple[TargetRef, str, str, dict[str, Any], str, str]] = []

    async def target_problem(self, ref: TargetRef) -> str | None:
        return self.problems.get(ref)

    async def list_objects(
        self, ref: TargetRef, namespaces: Collection[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        return {k: copy.deepcopy(v) for k, v in self.by_kind.get(ref, {}).items() if k[0] in namespaces}

    async def read_object(
        self, ref: TargetRef, namespace: str, name: str, subresource: str = ""
    ) -> dict[str, Any]:
        return copy.deepcopy(self.by_kind[ref][(namespace, name)])

    async def patch_object(
        self,
        ref: TargetRef,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        content_type: str,
        subresource: str = "",
    ) -> None:
        self.object_patches.append((ref, namespace, name, patch, content_type, subresource))
        current = self.by_kind[ref][(namespace, name)]
        if patch["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise UpstreamError(ErrorKind.CONFLICT, "the object has been modified", 409)
        body = copy.deepcopy(patch)
        body["metadata"].pop("resourceVersion")
        merged = merge_apply(current, body)
        merged["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
        self.by_kind[ref][(namespace, name)] = merged


def run(port: Any, servers: list[Any], *decisions: Any, **overrides: Any) -> list[ServerAction]:
    request = UpdateRequest(
        cycle_id="c1", solution=solution(*decisions), servers=servers, placement=PLACEMENT
    )
    actuator = Actuator(port, settings(**overrides), clock=lambda: 1_700_000_000.0)
    return asyncio.run(actuator.update(request)).actions


def containers(obj: dict[str, Any], *path: str) -> dict[str, Any]:
    node: Any = obj
    for key in path:
        node = node[key]
    return node  # type: ignore[no-any-return]


def test_lws_scales_groups_and_splits_cards_over_the_group_pods() -> None:
    port = FakeObjects({LEADER_WORKER_SET: [lws(replicas=2, size=2, gpus=8)]}, {})
    target = server("big", target=LEADER_WORKER_SET, current_replicas=2)
    # 4 groups of 2 pods x 4 cards on L4: cards per replica 8 -> 4 GPUs per pod, batch 32
    (action,) = run(
        port, [target], decision("big", replicas=4, accelerator="8xL4", batch=32, cards=8, acc_type="L4")
    )
    assert action.outcome is Outcome.APPLIED, action.reasons
    (ref, _, _, patch, content_type, subresource) = port.object_patches[0]
    assert (ref, content_type, subresource) == (LEADER_WORKER_SET, "application/merge-patch+json", "")
    assert patch["metadata"]["resourceVersion"] == "7"  # the version as read: a concurrent write is a 409
    assert set(patch["spec"]["leaderWorkerTemplate"]) == {"leaderTemplate", "workerTemplate"}  # no size
    stored = port.by_kind[LEADER_WORKER_SET][(NS, "big")]
    assert stored["spec"]["replicas"] == 4
    leader = containers(stored, "spec", "leaderWorkerTemplate", "leaderTemplate", "spec")
    worker = containers(stored, "spec", "leaderWorkerTemplate", "workerTemplate", "spec")
    for template in (leader, worker):
        assert template["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
        resources = template["containers"][0]["resources"]
        assert resources["requests"] == {"cpu": "4", "nvidia.com/gpu": "4"}  # cpu kept: list sent whole
        assert resources["limits"] == {"nvidia.com/gpu": "4"}
    assert leader["containers"][0]["args"] == ["--model", "m", "--max-num-seqs", "32"]
    assert worker["containers"][0]["args"] == ["--worker"]  # only the serving template takes the batch
    assert stored["metadata"]["labels"]["inferno.server.allocation.accelerator"] == "8xL4"
    # planning again on what is stored changes nothing
    target = server("big", target=LEADER_WORKER_SET, current_replicas=4)
    (again,) = run(
        port, [target], decision("big", replicas=4, accelerator="8xL4", batch=32, cards=8, acc_type="L4")
    )
    assert again.outcome is Outcome.UNCHANGED, again.reasons


def test_lws_without_a_leader_template_serves_from_the_worker_template() -> None:
    obj = lws(leader=False, size=1, gpus=1)
    obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["args"] = [
        "--max-num-seqs=64"
    ]
    port = FakeObjects({LEADER_WORKER_SET: [obj]}, {})
    (action,) = run(port, [server("big", target=LEADER_WORKER_SET)], decision("big", replicas=1, batch=128))
    assert action.outcome is Outcome.APPLIED, action.reasons
    worker = containers(
        port.by_kind[LEADER_WORKER_SET][(NS, "big")], "spec", "leaderWorkerTemplate", "workerTemplate"
    )
    assert worker["spec"]["containers"][0]["args"] == ["--max-num-seqs=128"]
    assert (
        "leaderTemplate" not in port.by_kind[LEADER_WORKER_SET][(NS, "big")]["spec"]["leaderWorkerTemplate"]
    )


def test_lws_cards_that_do_not_split_over_the_group_keep_it_as_it_is() -> None:
    port = FakeObjects({LEADER_WORKER_SET: [lws(size=2)]}, {})
    (action,) = run(port, [server("big", target=LEADER_WORKER_SET)], decision("big", replicas=3, cards=3))
    assert action.outcome is Outcome.SKIPPED
    assert "3 card(s) per replica do not split evenly" in action.reasons[0]
    assert port.object_patches == []


def test_inference_service_sets_min_and_max_replicas_and_the_model_container() -> None:
    port = FakeObjects({INFERENCE_SERVICE: [isvc()]}, {})
    (action,) = run(
        port,
        [server("isvc", target=INFERENCE_SERVICE, current_replicas=1)],
        decision("isvc", replicas=3, batch=96),
    )
    assert action.outcome is Outcome.APPLIED, action.reasons
    predictor = port.by_kind[INFERENCE_SERVICE][(NS, "isvc")]["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (3, 3)
    assert predictor["model"]["args"] == ["--model_name", "m", "--max-num-seqs", "96"]
    assert predictor["model"]["modelFormat"] == {"name": "huggingface"}
    assert "name" not in predictor["model"]  # the default container name is never written into it


@pytest.mark.parametrize(
    ("mode", "autoscaler", "reason"),
    [
        ("Serverless", "none", "not in RawDeployment mode"),
        ("RawDeployment", None, "KServe's own autoscaler is on (serving.kserve.io/autoscalerClass=hpa)"),
        ("RawDeployment", "keda", "KServe's own autoscaler is on"),
    ],
    ids=["knative", "default-hpa", "keda"],
)
def test_inference_service_with_another_writer_is_kept(
    mode: str, autoscaler: str | None, reason: str
) -> None:
    port = FakeObjects({INFERENCE_SERVICE: [isvc(mode, autoscaler)]}, {})
    (action,) = run(port, [server("isvc", target=INFERENCE_SERVICE)], decision("isvc", replicas=3))
    assert action.outcome is Outcome.SKIPPED
    assert reason in action.reasons[0]
    assert port.object_patches == []


def test_a_scale_only_kind_gets_replicas_through_its_scale_subresource() -> None:
    port = FakeObjects({ROLLOUTS: [scale_obj(2)]}, {})
    ro = server("ro", target=ROLLOUTS, current_accelerator="A100", current_max_batch=64)
    (action,) = run(port, [ro], decision("ro", replicas=5))
    assert action.outcome is Outcome.APPLIED, action.reasons
    ((_, _, _, patch, content_type, subresource),) = port.object_patches
    assert (patch, content_type, subresource) == (
        {"metadata": {"resourceVersion": "5"}, "spec": {"replicas": 5}},
        "application/merge-patch+json",
        "scale",
    )
    assert any("replicas only: Rollout is scaled through its /scale subresource" in r for r in action.reasons)


def test_a_scale_only_kind_is_never_moved_to_another_gpu_type() -> None:
    port = FakeObjects({ROLLOUTS: [scale_obj(2)]}, {})
    ro = server("ro", target=ROLLOUTS, current_accelerator="A100")
    (action,) = run(port, [ro], decision("ro", replicas=5, accelerator="L4"))
    assert action.outcome is Outcome.SKIPPED
    assert "scaled through /scale only: its GPU type cannot be changed" in action.reasons[0]
    assert port.object_patches == []


@pytest.mark.parametrize(
    "problem",
    [
        "leaderworkersets.leaderworkerset.x-k8s.io/v1 is not served by the API server: is its CRD installed?",
        "rollouts.argoproj.io has no /scale subresource: it cannot be scaled; nothing is patched",
    ],
    ids=["crd-missing", "no-scale"],
)
def test_a_kind_that_cannot_be_used_keeps_its_servers_with_the_reason(problem: str) -> None:
    port = FakeObjects(
        {LEADER_WORKER_SET: [lws()], ROLLOUTS: [scale_obj()]}, {LEADER_WORKER_SET: problem, ROLLOUTS: problem}
    )
    servers = [
        server("big", target=LEADER_WORKER_SET),
        server("ro", target=ROLLOUTS, current_accelerator="A100"),
    ]
    actions = run(
        port,
        servers,
        decision("big", replicas=4, cards=16, accelerator="16xA100"),
        decision("ro", replicas=4),
    )
    assert [a.outcome for a in actions] == [Outcome.SKIPPED, Outcome.SKIPPED]
    assert all(a.reasons[0] == problem for a in actions)
    assert port.object_patches == []


def test_a_port_that_knows_only_deployments_skips_other_kinds_with_the_reason() -> None:
    port = FakeKube()
    assert not isinstance(port, ObjectPort)
    (action,) = run(port, [server("big", target=LEADER_WORKER_SET)], decision("big", replicas=4))
    assert action.outcome is Outcome.SKIPPED
    assert action.reasons[0].startswith("this actuator cannot read leaderworkersets.leaderworkerset.x-k8s.io")


def test_an_object_gone_since_the_collect_is_named_by_its_kind() -> None:
    port = FakeObjects({LEADER_WORKER_SET: []}, {})
    (action,) = run(port, [server("big", target=LEADER_WORKER_SET)], decision("big", replicas=4))
    assert action.reasons[0] == f"LeaderWorkerSet {NS}/big not found"


def test_a_concurrent_writer_makes_the_merge_patch_a_conflict() -> None:
    port = FakeObjects({LEADER_WORKER_SET: [lws()]}, {})
    original = port.list_objects

    async def list_then_bump(
        ref: TargetRef, namespaces: Collection[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        found = await original(ref, namespaces)
        stored = port.by_kind[ref][(NS, "big")]
        stored["spec"]["replicas"] = 9  # someone else scaled it after the read
        stored["metadata"]["resourceVersion"] = "8"
        return found

    port.list_objects = list_then_bump  # type: ignore[method-assign]
    (action,) = run(
        port,
        [server("big", target=LEADER_WORKER_SET)],
        decision("big", replicas=4, cards=16, accelerator="16xA100"),
    )
    assert action.outcome is Outcome.CONFLICT
    assert "spec changed by someone else" in action.reasons[-1]
    assert port.by_kind[LEADER_WORKER_SET][(NS, "big")]["spec"]["replicas"] == 9


@pytest.mark.parametrize(
    ("old", "new", "diff"),
    [
        ({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2}}, {}),
        ({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 2}}, {"b": {"d": None}}),
        ({"l": [1, 2]}, {"l": [1, 3]}, {"l": [1, 3]}),
        ({}, {"x": {"y": 1}}, {"x": {"y": 1}}),
    ],
    ids=["equal", "removed-key", "list-whole", "added"],
)
def test_merge_diff_round_trips_through_merge_apply(
    old: dict[str, Any], new: dict[str, Any], diff: dict[str, Any]
) -> None:
    assert merge_diff(old, new) == diff
    assert merge_apply(old, diff) == new


def test_one_writer_mode_never_writes_replicas_and_publishes_the_desired_count() -> None:
    port = FakeKube(deployment("llama", replicas=2, accelerator="A100", batch=64))
    (action,) = run(port, [server("llama")], decision("llama", replicas=5, batch=32), actuation_mode="hpa")
    assert action.outcome is Outcome.APPLIED, action.reasons
    assert action.replicas_target == 5  # what the controller publishes as inferno_desired_replicas
    ((_, _, patch),) = port.patches
    assert "replicas" not in patch["spec"]
    assert port.objects[(NS, "llama")]["spec"]["replicas"] == 2
    assert port.objects[(NS, "llama")]["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "32"
    assert any("one-writer mode: replicas are the HPA's; desired 5 published" in r for r in action.reasons)


def test_one_writer_advisory_mode_patches_nothing_and_says_what_it_would_change() -> None:
    port = FakeKube(deployment("llama", replicas=2, accelerator="A100", batch=64))
    (action,) = run(
        port,
        [server("llama")],
        decision("llama", replicas=5, batch=32),
        actuation_mode="hpa",
        one_writer_template_changes="advisory",
    )
    assert action.outcome is Outcome.UNCHANGED and port.patches == []
    assert action.replicas_target == 5
    assert "advisory, not patched: max-batch 64 -> 32" in action.reasons
    assert "already in place" not in action.reasons
