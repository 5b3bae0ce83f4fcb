"""Patch semantics: RFC 7386 merge, RFC 6902 JSON patch, and the strategic merge subset."""

from __future__ import annotations

from typing import Any

import pytest

from load_emulator.kubeapi import ApiError
from load_emulator.kubeapi.patches import apply_patch, json_patch, merge_patch
from load_emulator.kubeapi.strategic import strategic_merge

DOC: dict[str, Any] = {
    "metadata": {"labels": {"a": "1", "b": "2"}},
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "nodeSelector": {"gpu": "A100", "zone": "z1"},
                "tolerations": [{"key": "t1"}],
                "containers": [
                    {"name": "vllm", "args": ["--max-num-seqs", "64"], "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "args": ["x"]},
                ],
            }
        },
    },
}


def test_merge_patch_merges_maps_deletes_nulls_replaces_lists() -> None:
    out = merge_patch(DOC, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"template": {"spec": {
        "containers": [{"name": "only"}]}}}})  # fmt: skip
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "only"}]
    assert DOC["metadata"]["labels"] == {"a": "1", "b": "2"}  # input untouched


JSON_CASES = [
    ("replace", [{"op": "replace", "path": "/spec/replicas", "value": 3}], ("spec", "replicas"), 3),
    ("add-key", [{"op": "add", "path": "/metadata/labels/x~1y", "value": "v"}],
     ("metadata", "labels", "x/y"), "v"),
    ("remove", [{"op": "remove", "path": "/metadata/labels/a"}], ("metadata", "labels"), {"b": "2"}),
    ("test-then-replace", [{"op": "test", "path": "/spec/replicas", "value": 1},
                           {"op": "replace", "path": "/spec/replicas", "value": 2}], ("spec", "replicas"), 2),
    ("append", [{"op": "add", "path": "/spec/template/spec/tolerations/-", "value": {"key": "t2"}}],
     ("spec", "template", "spec", "tolerations"), [{"key": "t1"}, {"key": "t2"}]),
    ("copy", [{"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/z"}],
     ("metadata", "labels", "z"), "1"),
    ("move", [{"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/m"}],
     ("metadata", "labels"), {"b": "2", "m": "1"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("ops", "path", "expected"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES]
)
def test_json_patch(ops: list[dict[str, Any]], path: tuple[str, ...], expected: Any) -> None:
    node: Any = json_patch(DOC, ops)
    for part in path:
        node = node[part]
    assert node == expected


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ([{"op": "test", "path": "/spec/replicas", "value": 9}], 422),
        ([{"op": "replace", "path": "/spec/missing", "value": 1}], 422),
        ([{"op": "remove", "path": "/nope/deeper"}], 422),
        ([{"op": "frobnicate", "path": "/spec"}], 400),
        ([{"path": "/spec"}], 400),
        ({"op": "add"}, 400),
    ],
    ids=["test-fails", "replace-missing", "remove-missing", "unknown-op", "no-op", "not-a-list"],
)
def test_json_patch_errors(ops: Any, code: int) -> None:
    with pytest.raises(ApiError) as err:
        json_patch(DOC, ops)
    assert err.value.code == code


def _pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


def test_strategic_merges_containers_by_name_and_keeps_the_others() -> None:
    vllm_patch = {"name": "vllm", "args": ["--max-num-seqs", "256"], "env": [{"name": "B", "value": "2"}]}
    out = strategic_merge(DOC, _pod_spec({"containers": [vllm_patch]}))
    assert out is not None
    vllm, sidecar = out["spec"]["template"]["spec"]["containers"]
    assert vllm["args"] == ["--max-num-seqs", "256"]  # a list without a merge key is replaced
    assert vllm["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]  # merged by name
    assert sidecar == {"name": "sidecar", "args": ["x"]}


def test_strategic_null_deletes_and_unkeyed_lists_are_replaced() -> None:
    out = strategic_merge(
        DOC, _pod_spec({"nodeSelector": {"zone": None, "gpu": "H100"}, "tolerations": [{"key": "t9"}]})
    )
    assert out is not None
    assert out["spec"]["template"]["spec"]["nodeSelector"] == {"gpu": "H100"}
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "t9"}]


def test_strategic_directives() -> None:
    replaced = strategic_merge(
        DOC, {"spec": {"template": {"spec": {"nodeSelector": {"$patch": "replace", "gpu": "L4"}}}}}
    )
    assert replaced is not None and replaced["spec"]["template"]["spec"]["nodeSelector"] == {"gpu": "L4"}
    deleted = strategic_merge(DOC, {"metadata": {"labels": {"$patch": "delete"}}})
    assert deleted is not None and "labels" not in deleted["metadata"]
    order = [{"name": "vllm"}]
    dropped = strategic_merge(
        DOC,
        _pod_spec(
            {"containers": [{"name": "sidecar", "$patch": "delete"}], "$setElementOrder/containers": order}
        ),
    )
    assert dropped is not None and [c["name"] for c in dropped["spec"]["template"]["spec"]["containers"]] == [
        "vllm"
    ]
    whole = strategic_merge(
        DOC, {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "new"}]}}}}
    )
    assert whole is not None and whole["spec"]["template"]["spec"]["containers"] == [{"name": "new"}]


def test_apply_patch_dispatches_on_media_type() -> None:
    body = {"spec": {"replicas": 5}}
    assert apply_patch("application/merge-patch+json", DOC, body)["spec"]["replicas"] == 5
    assert (
        apply_patch("application/strategic-merge-patch+json; charset=utf-8", DOC, body)["spec"]["replicas"]
        == 5
    )
    with pytest.raises(ApiError) as err:
        apply_patch("application/apply-patch+yaml", DOC, body)
    assert err.value.code == 415
    with pytest.raises(ApiError) as err:
        apply_patch("application/merge-patch+json", DOC, [1])
    assert err.value.code == 400
