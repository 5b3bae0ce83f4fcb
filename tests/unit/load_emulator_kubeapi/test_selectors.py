"""Label and field selectors as the client sends them, matched as Kubernetes does."""

from __future__ import annotations

import pytest

from load_emulator.kubeapi import ApiError
from load_emulator.kubeapi.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
)

LABELS = {"app": "llama", "tier": "gold", "inferno.server.managed": "true"}

LABEL_CASES = [
    ("", True),
    ("app=llama", True),
    ("app==llama", True),
    ("app!=llama", False),
    ("missing!=x", True),
    ("app in (llama, granite)", True),
    ("app in (granite)", False),
    ("app notin (granite)", True),
    ("missing notin (x)", True),
    ("inferno.server.managed", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=llama,tier in (gold,silver),!missing", True),
    ("app=llama,tier=silver", False),
]


@pytest.mark.parametrize(("selector", "expected"), LABEL_CASES, ids=[c[0] or "empty" for c in LABEL_CASES])
def test_label_selectors(selector: str, expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), LABELS) is expected


@pytest.mark.parametrize(
    "selector", ["app in llama", "a=b=c", "(x)"], ids=["no-parens", "double-eq", "parens"]
)
def test_unreadable_label_selectors_are_400(selector: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(selector)
    assert err.value.code == 400


def test_label_selector_objects() -> None:
    sel = {
        "matchLabels": {"app": "llama"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}],
    }
    assert labels_match(selector_from_label_selector(sel), LABELS)
    assert not labels_match(selector_from_label_selector(sel), {"app": "llama"})


POD = {
    "metadata": {"name": "p", "namespace": "n"},
    "spec": {"nodeName": "node-1"},
    "status": {"phase": "Running"},
}
FIELD_CASES = [
    ("metadata.name=p", True),
    ("metadata.namespace==other", False),
    ("status.phase!=Succeeded,status.phase!=Failed", True),
    ("spec.nodeName=", False),
    ("spec.missing=", True),
]


@pytest.mark.parametrize(("selector", "expected"), FIELD_CASES, ids=[c[0] for c in FIELD_CASES])
def test_field_selectors(selector: str, expected: bool) -> None:
    assert fields_match(parse_field_selector(selector), POD) is expected
