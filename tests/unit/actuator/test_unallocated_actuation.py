"""Optimizer and actuator agree on a server the capacity cannot serve: brought down to its floor,
its cards counted, and the change explained in its reasons and its Event.

The demo's fault: Free ran 13 x G2 when Premium's and Bronze's load grew 3-3.5x; the optimizer left
Free unallocated and gave its cards to the others, the actuator kept Free as it was, and Premium's
new pods sat Pending. Here the real ``optimize`` feeds the real ``plan_updates``.
"""

from __future__ import annotations

import json
from typing import Any

from actuator.executor import event_for
from actuator.plan import plan_updates
from contract.collect import Placement
from contract.data.loader import DATA_FILES, load_system
from contract.solution import DecisionStatus
from contract.update import ActionKind
from optimizer.optimize import optimize
from tests.conftest import SAMPLES
from tests.unit.actuator.fakes import NS, deployment, server, settings

G2_CARDS = 24
RUNNING = {"Premium-llama_13b": 4, "Bronze-llama_13b": 7, "Free-llama_13b": 13}  # 24 cards in use
LOAD_RPM = {"Premium-llama_13b": 180, "Bronze-llama_13b": 420, "Free-llama_13b": 720}  # 3x-3.5x the samples


def documents() -> dict[str, Any]:
    docs = {
        name: json.loads((SAMPLES / "small" / name).read_text())
        for name in DATA_FILES
        if (SAMPLES / "small" / name).exists()
    }
    docs["capacity-data.json"] = {"count": [{"type": "G2", "count": G2_CARDS}]}
    docs["server-data.json"] = {
        "servers": [
            {
                "name": name,
                "class": name.split("-")[0],
                "model": "llama_13b",
                "keepAccelerator": True,
                "minNumReplicas": 1,
                "currentAlloc": {
                    "accelerator": "G2",
                    "numReplicas": replicas,
                    "maxBatch": 64,
                    "load": {"arrivalRate": LOAD_RPM[name], "avgInTokens": 128, "avgOutTokens": 1024},
                },
            }
            for name, replicas in RUNNING.items()
        ]
    }
    return docs


def test_free_is_brought_to_its_floor_and_what_runs_fits_the_cards() -> None:
    solution = optimize(load_system(documents()))
    by_name = solution.by_server()
    free = by_name["Free-llama_13b"]
    assert free.status is DecisionStatus.PARTIAL and free.allocation is not None
    kept = free.allocation.num_replicas  # its floor of 1, plus what the others left over
    assert 1 <= kept < RUNNING["Free-llama_13b"]
    assert any(r.startswith("capacity floor: runs on G2") for r in free.reasons), free.reasons
    assert solution.cards_by_type["G2"] <= G2_CARDS
    assert by_name["Premium-llama_13b"].status is DecisionStatus.ALLOCATED

    placement = [Placement.model_validate({"type": "G2", "nodeLabelValue": "G2"})]
    servers = [
        server(n, model="llama_13b", current_replicas=r, keep_accelerator=True) for n, r in RUNNING.items()
    ]
    batch = {n: d.allocation.max_batch for n, d in by_name.items() if d.allocation}  # replicas only
    deployments = {
        (NS, n): deployment(n, replicas=r, accelerator="G2", batch=batch[n]) for n, r in RUNNING.items()
    }
    for dep in deployments.values():  # already on G2 nodes: only the replicas change
        dep["spec"]["template"]["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "G2"}
    opts = settings()
    actions = plan_updates(solution, servers, placement, deployments, opts, 1000.0)
    targets = {a.server: a.replicas_target for a in actions}
    assert all(a.kind is not ActionKind.SKIP for a in actions), [a.reasons for a in actions]
    assert sum(n for n in targets.values() if n is not None) <= G2_CARDS, targets
    assert targets["Free-llama_13b"] == kept

    (free_action,) = [a for a in actions if a.server == "Free-llama_13b"]
    assert free_action.reasons[1].startswith("optimizer: capacity floor: runs on G2"), free_action.reasons
    event = event_for(free_action, deployments[(NS, "Free-llama_13b")], 1000.0, "c1", opts)
    assert event["reason"] == "InfernoScaled"
    assert f"replicas 13->{kept}" in event["message"] and "capacity floor" in event["message"], event[
        "message"
    ]
