"""Hostile input (hypothesis): odd Deployments never crash the planner; odd bodies get a 4xx, never a 500."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actuator.app import Actuator, make_app
from actuator.plan import plan_updates
from contract.update import ActionKind
from tests.unit.actuator import fakes

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
CONTAINER = st.fixed_dictionaries(
    {"name": st.text(max_size=6)},
    optional={
        "args": st.lists(st.text(max_size=16) | st.integers(), max_size=6) | JSON,
        "command": JSON,
        "env": st.lists(st.dictionaries(st.sampled_from(["name", "value", "valueFrom"]), JSON), max_size=3),
        "resources": st.dictionaries(
            st.sampled_from(["requests", "limits"]), st.dictionaries(st.text(), JSON)
        ),
    },
)
DEPLOYMENT = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"name": st.just("llama"), "namespace": st.just(fakes.NS)},
            optional={
                "labels": st.dictionaries(st.text(max_size=40), st.text(max_size=10)) | JSON,
                "resourceVersion": JSON,
            },
        ),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "replicas": JSON,
                "template": st.fixed_dictionaries(
                    {
                        "spec": st.fixed_dictionaries(
                            {},
                            optional={
                                "containers": st.lists(CONTAINER | JSON, max_size=3),
                                "nodeSelector": JSON,
                            },
                        )
                    }
                ),
            },
        ),
    }
)


@settings(max_examples=300, deadline=None)
@given(dep=DEPLOYMENT, replicas=st.integers(0, 1000), batch=st.integers(1, 4096))
def test_planner_never_crashes_on_odd_deployments(dep: dict[str, Any], replicas: int, batch: int) -> None:
    sol = fakes.solution(fakes.decision(replicas=replicas, batch=batch))
    (action,) = plan_updates(
        sol,
        [fakes.server()],
        fakes.PLACEMENT,
        {(fakes.NS, "llama"): dep},
        fakes.settings(),
        0.0,
    )
    assert action.reasons
    if action.kind is not ActionKind.SKIP:
        assert action.replicas_target is not None and action.replicas_target >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=JSON
    | st.dictionaries(st.sampled_from(["cycle_id", "solution", "servers", "placement", "dry_run"]), JSON)
)
async def test_update_answers_odd_bodies_with_4xx(body: Any) -> None:
    client = TestClient(TestServer(make_app(Actuator(fakes.FakeKube(fakes.deployment()), fakes.settings()))))
    await client.start_server()
    try:
        resp = await client.post("/update", json=body)
        assert resp.status in (400, 422), await resp.text()
        assert "Traceback" not in await resp.text()
    finally:
        await client.close()
