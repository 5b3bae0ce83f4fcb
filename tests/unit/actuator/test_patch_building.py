"""Patch building as a table (via plan_updates), then idempotence: plan, apply, plan again -> no patch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from actuator.plan import plan_updates
from contract.update import ActionKind
from tests.unit.actuator.fakes import PLACEMENT, apply_patch, decision, deployment, server, settings, solution

RV = {"resourceVersion": "10"}
# The plan runs at now_s = 1000: an accelerator change stamps the type-change hold-down annotation.
CHANGED_AT = {"inferno.server/accelerator-changed-at": "1970-01-01T00:16:40Z"}


@dataclass
class Case:
    id: str
    dep: dict[str, Any]
    dec: Any
    expected_patch: dict[str, Any] | None
    rolls: bool = False
    opts: dict[str, Any] = field(default_factory=dict)


def _container(**fields: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "vllm", **fields}]}}}}


def _batch_label(batch: int) -> dict[str, Any]:
    return {"labels": {"inferno.server.allocation.maxbatchsize": str(batch)}}


ARGS = ["--model", "m"]
CASES = [
    Case(
        "replicas-only",
        deployment(replicas=2),
        decision(replicas=3),
        {"metadata": RV, "spec": {"replicas": 3}},
    ),
    Case("nothing-to-do", deployment(replicas=3), decision(replicas=3), None),
    Case(
        "gpu-type-change",
        deployment(accelerator="L4"),
        decision(replicas=2, accelerator="2xA100", cards=2, acc_type="A100"),
        {
            "metadata": {
                **RV,
                "labels": {"inferno.server.allocation.accelerator": "2xA100"},
                "annotations": CHANGED_AT,
            },
            "spec": {
                "template": {
                    "spec": {
                        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
                        "containers": [
                            {
                                "name": "vllm",
                                "resources": {
                                    "requests": {"nvidia.com/gpu": "2"},
                                    "limits": {"nvidia.com/gpu": "2"},
                                },
                            }
                        ],
                    }
                }
            },
        },
        rolls=True,
    ),
    Case(
        "amd-type",
        deployment(),
        decision(replicas=2, accelerator="MI300X"),
        {
            "metadata": {
                **RV,
                "labels": {"inferno.server.allocation.accelerator": "MI300X"},
                "annotations": CHANGED_AT,
            },
            "spec": {
                "template": {
                    "spec": {
                        "nodeSelector": {
                            "amd.com/gpu.product": "AMD-Instinct-MI300X",
                            "nvidia.com/gpu.product": None,
                        },
                        "containers": [
                            {
                                "name": "vllm",
                                "resources": {
                                    "requests": {"amd.com/gpu": "1", "nvidia.com/gpu": None},
                                    "limits": {"amd.com/gpu": "1", "nvidia.com/gpu": None},
                                },
                            }
                        ],
                    }
                }
            },
        },
        rolls=True,
    ),
    Case(
        "batch-space-form",
        deployment(),
        decision(replicas=2, batch=128),
        {
            "metadata": {**RV, **_batch_label(128)},
            **_container(args=[*ARGS[:1], "meta-llama/Llama-2-13b", "--max-num-seqs", "128"]),
        },
        rolls=True,
    ),
    Case(
        "batch-equals-form",
        deployment(args=[*ARGS, "--max-num-seqs=64"]),
        decision(replicas=2, batch=32),
        {"metadata": {**RV, **_batch_label(32)}, **_container(args=[*ARGS, "--max-num-seqs=32"])},
        rolls=True,
    ),
    Case(
        "batch-added",
        deployment(args=ARGS),
        decision(replicas=2, batch=32),
        {"metadata": {**RV, **_batch_label(32)}, **_container(args=[*ARGS, "--max-num-seqs", "32"])},
        rolls=True,
    ),
    Case(
        "batch-in-command",
        deployment(args=[], command=["vllm", "serve", "m", "--max-num-seqs", "64"]),
        decision(replicas=2, batch=16),
        {
            "metadata": {**RV, **_batch_label(16)},
            **_container(command=["vllm", "serve", "m", "--max-num-seqs", "16"]),
        },
        rolls=True,
    ),
    Case(
        "batch-env-var",
        deployment(env=[{"name": "MAX_SEQS", "value": "64"}]),
        decision(replicas=2, batch=8),
        {"metadata": {**RV, **_batch_label(8)}, **_container(env=[{"name": "MAX_SEQS", "value": "8"}])},
        rolls=True,
        opts={"batch_env_var": "MAX_SEQS"},
    ),
    Case(
        "batch-env-var-added",
        deployment(),
        decision(replicas=2, batch=64),
        _container(env=[{"name": "MAX_SEQS", "value": "64"}]) | {"metadata": RV},
        rolls=True,
        opts={"batch_env_var": "MAX_SEQS"},
    ),
    Case("no-args-no-command-leaves-batch", deployment(args=[]), decision(replicas=2, batch=8), None),
    Case("batch-disabled", deployment(), decision(replicas=2, batch=8), None, opts={"manage_batch": False}),
    Case(
        "selector-disabled",
        deployment(accelerator="L4"),
        decision(replicas=2, accelerator="L4"),
        None,
        opts={"manage_node_selector": False},
    ),
]


def _plan(dep: dict[str, Any], dec: Any, **opts: Any) -> Any:
    (action,) = plan_updates(
        solution(dec),
        [server()],
        PLACEMENT,
        {("team-a", "llama"): dep},
        settings(**opts),
        1000.0,
    )
    return action


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_patch_table(case: Case) -> None:
    action = _plan(case.dep, case.dec, **case.opts)
    assert action.patch == case.expected_patch, action.reasons
    assert action.kind is (ActionKind.UPDATE if case.expected_patch else ActionKind.NOOP)
    assert action.rolls_pods is case.rolls
    assert action.reasons and action.reasons[0].startswith("solution: allocated")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_second_plan_after_applying_is_empty(case: Case) -> None:
    action = _plan(case.dep, case.dec, **case.opts)
    applied = apply_patch(case.dep, action.patch or {})
    again = _plan(applied, case.dec, **case.opts)
    assert again.patch is None, again.reasons
    assert again.kind is ActionKind.NOOP


def test_replicas_change_does_not_touch_the_template() -> None:
    action = _plan(deployment(replicas=5), decision(replicas=7))
    assert "template" not in action.patch["spec"]
    assert [c.field for c in action.changes] == ["replicas"]
    assert action.reasons[-1] == "replicas: 5 -> 7"


def test_no_args_note_says_how_to_fix() -> None:
    action = _plan(deployment(args=[]), decision(replicas=2, batch=8))
    assert any("INFERNO_ACTUATOR_BATCH_ENV_VAR" in r for r in action.reasons)


def test_named_container_is_patched() -> None:
    dep = deployment()
    dep["spec"]["template"]["spec"]["containers"].reverse()
    action = _plan(dep, decision(replicas=2, batch=8), container_name="vllm")
    assert action.patch["spec"]["template"]["spec"]["containers"][0]["name"] == "vllm"
