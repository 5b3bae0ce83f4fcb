"""``planned_on_moved``: which writes since the read invalidate a plan (and so stay a 409)."""

from __future__ import annotations

import copy
from typing import Any

from actuator.deployment import planned_on_moved
from tests.unit.actuator.fakes import deployment


def _moved(change: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> list[str]:
    read = deployment()
    fresh = copy.deepcopy(read)
    fresh["metadata"].update(resourceVersion="99", managedFields=[{"manager": "kube-controller-manager"}])
    fresh["metadata"].update(change or {})
    fresh["status"] = status or {}
    return planned_on_moved(read, fresh)


def test_status_annotations_and_bookkeeping_do_not_move_a_plan() -> None:
    assert _moved(status={"readyReplicas": 2, "conditions": [{"type": "Progressing"}]}) == []
    assert _moved({"annotations": {"deployment.kubernetes.io/revision": "4"}, "generation": 9}) == []


def test_identity_labels_deletion_and_spec_do() -> None:
    assert _moved({"uid": "other"}) == ["uid"]
    assert _moved({"labels": {"inferno.server.managed": "true"}}) == ["labels"]
    assert _moved({"deletionTimestamp": "2026-12-07T07:00:00Z"}) == ["deletionTimestamp"]
    fresh = deployment(replicas=5)
    assert planned_on_moved(deployment(), fresh) == ["spec"]
    assert planned_on_moved(deployment(), deployment(accelerator="L4", replicas=5)) == ["labels", "spec"]


def test_a_plan_made_without_the_object_always_moved() -> None:
    assert planned_on_moved(None, deployment()) == ["the object"]
