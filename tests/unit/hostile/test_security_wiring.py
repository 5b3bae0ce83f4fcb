"""Security wiring of the four services and the shipped manifests.

- Without a token every guarded endpoint (``/invoke``, ``/collect``, ``/optimize``, ``/update``)
  refuses a caller that is not on loopback (403, JSON), whatever address the service binds; the
  probes stay open.
- In the manifests, a container is given the token file only if its caller sends the token:
  people call ``/invoke`` with it and the controller sends it to the actuator only
  (``controller.cycle.HttpStages``); a token on the collector or optimizer would lock the
  controller out. All containers non-root, read-only root filesystem, no privilege escalation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import structlog
import yaml  # type: ignore[import-untyped]
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from plumbing.logs import REDACTED, _scrub, configure_logging, register_secret
from plumbing.settings import read_secret_file
from tests.conftest import REPO
from tests.unit.hostile.services import SERVICES

PROBES = {"controller": "/healthz", "collector": "/healthz", "optimizer": "/healthz", "actuator": "/healthz"}


def _request_from(app: web.Application, method: str, path: str, peer: str) -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default
    )
    return make_mocked_request(method, path, app=app, transport=transport)


async def _call(app: web.Application, method: str, path: str, peer: str) -> web.StreamResponse:
    request = _request_from(app, method, path, peer)
    match = await app.router.resolve(request)
    match.add_app(app)  # what aiohttp's server does before calling the handler
    match.freeze()
    request._match_info = match
    return await match.handler(request)


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize("peer", ["10.244.1.7", "192.168.0.2", "fd00::5", "::ffff:10.0.0.1", "::1:5", "127"])
async def test_without_a_token_only_loopback_callers_are_served(service: str, peer: str) -> None:
    build, method, path = SERVICES[service]
    app = build(None)
    response = await _call(app, method, path, peer)
    assert isinstance(response, web.Response) and response.status == 403
    assert "localhost" in json.loads(response.text or "{}")["error"]
    probe = await _call(app, "GET", PROBES[service], peer)
    assert probe.status != 403


def _containers() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((REPO / "manifests/deployment.yaml").read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_only_services_whose_callers_send_the_token_get_a_token_file() -> None:
    with_token = {
        name
        for name, container in _containers().items()
        if any(env["name"].endswith("_TOKEN_FILE") for env in container.get("env", []))
    }
    assert with_token == {"controller", "actuator"}
    cycle = (REPO / "controller/cycle.py").read_text()
    assert 'JsonClient(settings.url("actuator"), token=token)' in cycle  # the controller sends it there
    assert (
        'JsonClient(settings.url("collector"))' in cycle and 'JsonClient(settings.url("optimizer"))' in cycle
    )


def test_containers_are_non_root_read_only_without_escalation() -> None:
    for name, container in _containers().items():
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert "privileged" not in sc or sc["privileged"] is False, name


def test_a_token_file_is_read_and_redacted(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret-value-42\n")
    assert read_secret_file(path) == "s3cret-value-42"
    assert _scrub("upstream said token=s3cret-value-42.") == f"upstream said token={REDACTED}."


def test_standard_library_log_records_are_redacted_json(capsys: pytest.CaptureFixture[str]) -> None:
    """What the kubernetes client or aiohttp log goes through the same redaction in a service."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("actuator", "DEBUG")  # no stream: the services' path
        register_secret("k8s-sa-token-0123")
        logging.getLogger("kubernetes.client.rest").debug(
            "request headers: {'authorization': 'Bearer abc.def.ghi'} token k8s-sa-token-0123"
        )
    finally:
        root.handlers, root.level = saved
        structlog.reset_defaults()
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "request headers" in x]
    assert line["logger"] == "kubernetes.client.rest" and line["service"] == "actuator"
    assert "abc.def.ghi" not in line["event"] and "k8s-sa-token-0123" not in line["event"]
    assert line["event"].count(REDACTED) == 2
