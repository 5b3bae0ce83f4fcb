"""The optimizer's service (POST /optimize) and CLI over the shipped samples and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from contract.data.loader import DATA_FILES, dump_system, load_system_dir
from contract.solution import DecisionStatus, Solution
from optimizer.app import ServiceSettings, make_app
from optimizer.cli import main as cli_main
from optimizer.optimize import optimize
from tests.conftest import SAMPLES


def _system_json(directory: Path) -> dict[str, Any]:
    return dump_system(load_system_dir(directory))


@pytest.fixture
async def client() -> Any:
    async with TestClient(TestServer(make_app(ServiceSettings()))) as c:
        yield c


async def test_optimize_returns_one_decision_per_server(client: TestClient[Any, Any]) -> None:
    body = _system_json(SAMPLES / "small")
    response = await client.post("/optimize", json=body)
    assert response.status == 200, await response.text()
    solution = Solution.model_validate(await response.json())
    names = [s["name"] for s in body["servers"]["servers"]]
    assert [d.server for d in solution.decisions] == names
    assert solution.solver.elapsed_ms > 0
    for d in solution.decisions:
        if d.status is DecisionStatus.UNALLOCATED:
            assert d.allocation is None and d.reasons
        else:
            assert d.allocation is not None and d.allocation.num_replicas >= 1


async def test_spec_wrapper_is_accepted(client: TestClient[Any, Any]) -> None:
    response = await client.post("/optimize", json={"spec": _system_json(SAMPLES / "small")})
    assert response.status == 200


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 422, "request body"),
        (json.dumps({"accelerators": {"accelerators": []}}).encode(), 422, "models"),
    ],
    ids=["malformed", "wrong-type", "missing-models"],
)
async def test_bad_bodies_get_readable_4xx(
    client: TestClient[Any, Any], body: bytes, status: int, fragment: str
) -> None:
    response = await client.post("/optimize", data=body, headers={"Content-Type": "application/json"})
    assert response.status == status
    payload = await response.json()
    assert fragment in payload["error"]
    assert "Traceback" not in payload["error"]


async def test_nan_load_is_named(client: TestClient[Any, Any]) -> None:
    body = _system_json(SAMPLES / "small")
    body["servers"]["servers"][2]["currentAlloc"]["load"]["arrivalRate"] = "NaN"
    response = await client.post("/optimize", json=body)
    assert response.status == 422
    text = (await response.json())["error"]
    assert "servers.servers[2]" in text and "arrivalRate" in text


async def test_healthz(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200


def test_settings_reject_unknown_solver_at_start_up() -> None:
    with pytest.raises(ValueError, match="simplex"):
        ServiceSettings.from_env({"INFERNO_OPTIMIZER_SOLVER": "simplex"})


def test_cli_prints_table_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main([str(SAMPLES / "large")]) == 0
    out = capsys.readouterr().out
    system = load_system_dir(SAMPLES / "large")
    for server in system.servers.servers:
        assert server.name[:26] in out
    assert "total cost" in out and "cards used" in out


def test_cli_json_matches_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main([str(SAMPLES / "small"), "--json"]) == 0
    printed = Solution.model_validate_json(capsys.readouterr().out)
    direct = optimize(load_system_dir(SAMPLES / "small"))
    assert [(d.server, d.status, d.allocation) for d in printed.decisions] == [
        (d.server, d.status, d.allocation) for d in direct.decisions
    ]


def test_cli_bad_directory_is_a_message_not_a_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in DATA_FILES:
        (tmp_path / name).write_text((SAMPLES / "small" / name).read_text())
    (tmp_path / "server-data.json").write_text('{"servers": [{"name": "x", "model": "nope"}]}')
    assert cli_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope'" in err and "Traceback" not in err
