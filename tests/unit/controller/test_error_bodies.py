"""Error answers of our own services are classified by their body's kind, and read as their message."""

from __future__ import annotations

import json

import pytest

from plumbing.client import ErrorKind, classify_error_body

CONFIGMAP = "ConfigMap inferno/inferno-static-data key model-data.json: models[3].alpha: got -1"


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (503, json.dumps({"error": CONFIGMAP, "kind": "data"}), ErrorKind.PERMANENT, CONFIGMAP),
        (
            503,
            json.dumps({"error": "prometheus down", "kind": "source"}),
            ErrorKind.TRANSIENT,
            "prometheus down",
        ),
        (503, json.dumps({"error": "busy"}), ErrorKind.TRANSIENT, "busy"),
        (422, json.dumps({"error": "bad system"}), ErrorKind.PERMANENT, "bad system"),
        (409, json.dumps({"error": "conflict", "kind": "data"}), ErrorKind.CONFLICT, "conflict"),
        (502, "<html>bad gateway</html>", ErrorKind.TRANSIENT, "<html>bad gateway</html>"),
        (500, json.dumps(["not", "a", "dict"]), ErrorKind.TRANSIENT, '["not", "a", "dict"]'),
    ],
    ids=[
        "data-503-is-permanent",
        "source-503-transient",
        "no-kind",
        "422",
        "409-stays-conflict",
        "html",
        "list",
    ],
)
def test_error_body_kind_and_message(status: int, body: str, kind: ErrorKind, message: str) -> None:
    assert classify_error_body(status, body) == (kind, message)
