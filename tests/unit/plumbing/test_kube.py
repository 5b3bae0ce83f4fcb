"""plumbing.kube: the one kube-config loader and the one API-error classifier."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3
from kubernetes import config
from kubernetes.client.exceptions import ApiException

from plumbing.client import ErrorKind
from plumbing.kube import api_error, api_status, classify_api_error, describe_api_error, load_api_client
from plumbing.main import StartupError


def test_no_configuration_is_a_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*_args: Any, **_kwargs: Any) -> None:
        raise config.ConfigException("not here")

    monkeypatch.setattr(config, "load_incluster_config", missing)
    monkeypatch.setattr(config, "load_kube_config", missing)
    with pytest.raises(StartupError, match="no Kubernetes configuration"):
        load_api_client()


def test_the_kubeconfig_follows_a_missing_in_cluster_config(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str | None] = []

    def missing() -> None:
        raise config.ConfigException("not in a pod")

    monkeypatch.setattr(config, "load_incluster_config", missing)
    monkeypatch.setattr(config, "load_kube_config", lambda config_file=None: loaded.append(config_file))
    api = load_api_client(connection_pool_size=7, config_file="/tmp/kubeconfig")
    assert loaded == ["/tmp/kubeconfig"] and api.configuration.connection_pool_maxsize == 7


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (ApiException(status=409, reason="Conflict"), ErrorKind.CONFLICT, 409),
        (ApiException(status=404, reason="Not Found"), ErrorKind.PERMANENT, 404),
        (ApiException(status=429, reason="Too Many"), ErrorKind.TRANSIENT, 429),
        (ApiException(status=503, reason="Unavailable"), ErrorKind.TRANSIENT, 503),
        (ApiException(status=0, reason="no answer"), ErrorKind.TRANSIENT, None),
        (urllib3.exceptions.MaxRetryError(None, "/apis", "refused"), ErrorKind.TRANSIENT, None),  # type: ignore[arg-type]
        (TimeoutError(), ErrorKind.TRANSIENT, None),
        (ValueError("bad JSON"), ErrorKind.PERMANENT, None),
    ],
    ids=["409", "404", "429", "503", "no-answer", "refused", "timeout", "bad-data"],
)
def test_api_errors_are_classified_once(error: Exception, kind: ErrorKind, status: int | None) -> None:
    assert classify_api_error(error) is kind and api_status(error) == status
    upstream = api_error(error, "patch Deployment a/b")
    assert (upstream.kind, upstream.status) == (kind, status)
    assert upstream.message.startswith("patch Deployment a/b: ")


def test_describe_names_status_and_reason() -> None:
    assert describe_api_error(ApiException(status=403, reason="Forbidden")) == "403 Forbidden"
    assert describe_api_error(TimeoutError("slow")) == "TimeoutError: slow"
