"""Valid request bodies with one node made hostile (hypothesis): the optimizer and the actuator
answer 2xx or a clear JSON 4xx, never a 500; and what they accept stays sane: the optimizer
decides once for every server it was sent (in order), and the actuator never patches a Deployment
below one replica nor scales an untrusted server. (The optimizer may size a server with no load
at 0 replicas; the actuator's zero guard is what keeps a Deployment at one.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given

from contract.data.loader import dump_system, load_system_dir, validate_system
from contract.solution import Solution
from contract.update import UpdateRequest
from tests.conftest import SAMPLES
from tests.unit.actuator import fakes
from tests.unit.hostile.profile import HOSTILE, count
from tests.unit.hostile.services import TOKEN, LiveApp, build_actuator, build_optimizer
from tests.unit.hostile.strategies import dumps, mutated
from tests.unit.hostile.test_http_raw import assert_clear

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
SYSTEM = dump_system(load_system_dir(SAMPLES / "small"))
UPDATE = UpdateRequest(
    cycle_id="c-1",
    solution=fakes.solution(fakes.decision(replicas=3)),
    servers=[fakes.server()],
    placement=fakes.PLACEMENT,
).model_dump(mode="json", by_alias=True)


@pytest.fixture(scope="module")
def optimizer() -> Iterator[LiveApp]:
    app = LiveApp(build_optimizer(TOKEN))
    yield app
    app.close()


@pytest.fixture(scope="module")
def actuator() -> Iterator[LiveApp]:
    app = LiveApp(build_actuator(TOKEN))
    yield app
    app.close()


def test_the_unmutated_bodies_are_accepted(optimizer: LiveApp, actuator: LiveApp) -> None:
    assert optimizer.call("POST", "/optimize", data=dumps(SYSTEM), headers=AUTH).status == 200
    answer = actuator.call("POST", "/update", data=dumps(UPDATE), headers=AUTH)
    assert answer.status == 200, answer.text


@HOSTILE
@given(case=mutated(SYSTEM))
def test_optimizer_on_a_mutated_system(optimizer: LiveApp, case: tuple[str, Any]) -> None:
    what, body = case
    count("optimizer: mutated SystemData")
    answer = optimizer.call("POST", "/optimize", data=dumps(body), headers=AUTH)
    assert_clear(answer, what)
    assert answer.status in (200, 400, 422), (what, answer.status, answer.text[:300])
    if answer.status == 200:
        solution = Solution.model_validate_json(answer.text)
        names = [server.name for server in validate_system(body, "accepted body").servers.servers]
        assert [d.server for d in solution.decisions] == names, what


@HOSTILE
@given(case=mutated(UPDATE))
def test_actuator_on_a_mutated_update(actuator: LiveApp, case: tuple[str, Any]) -> None:
    what, body = case
    count("actuator: mutated UpdateRequest")
    answer = actuator.call("POST", "/update", data=dumps(body), headers=AUTH)
    assert_clear(answer, what)
    assert answer.status in (200, 400, 422), (what, answer.status, answer.text[:300])
    if answer.status == 200:
        sent = UpdateRequest.model_validate(body)
        untrusted = {(s.namespace, s.deployment) for s in sent.servers if not s.trusted}
        for action in json.loads(answer.text)["actions"]:
            if action["outcome"] in ("applied", "dry-run", "planned"):
                assert action["replicas_target"] is None or action["replicas_target"] >= 1, (what, action)
                assert (action["namespace"], action["deployment"]) not in untrusted, (what, action)


def test_extreme_model_parameters_leave_every_server_unallocated_with_the_reason(optimizer: LiveApp) -> None:
    """Found by the property above: decodeParms.alpha = 1e308 divided by zero inside sizing (a 500,
    then a 422); now each pair is infeasible and says why, and nothing is allocated."""
    body = json.loads(dumps(SYSTEM))
    for model in body["models"]["models"]:
        model["decodeParms"]["alpha"] = 1e308
    answer = optimizer.call("POST", "/optimize", data=dumps(body), headers=AUTH)
    assert answer.status == 200, answer.text
    decisions = json.loads(answer.text)["decisions"]
    assert decisions and all(d["status"] == "unallocated" for d in decisions), answer.text
    assert all(any("no usable throughput" in s["text"] for s in d["steps"]) for d in decisions), answer.text
