"""The demo's cluster contents and its store-backed view, without network (store + built-in controller).

Cases: the nodes carry the placement labels and cards; the ConfigMaps hold the data files; each
Deployment is labelled and selectable; the view reports pods as Pending until the controller's
start-up delay passed, then Ready with the pod's own ``--max-num-seqs``; label writes land; the
table renders one row per server and the applied actions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.data.loader import load_system_dir
from load_emulator.demo.loop_state import DemoSettings, make_workloads, replica_changes
from load_emulator.demo.store_view import StoreClusterView
from load_emulator.demo.table import Row, render
from load_emulator.demo.world import CONFIG_NAMESPACE, DEFAULT_CARDS, NAMESPACE, demo_servers, populate
from load_emulator.kubeapi import CONFIGMAPS, NODES, BuiltinController, ControllerSettings, ObjectStore

DATA = Path(__file__).resolve().parents[3] / "samples" / "small"
NAMES = ("Premium-llama_13b", "Free-granite_13b")


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@dataclass
class World:
    store: ObjectStore
    clock: Clock
    view: StoreClusterView
    controller: BuiltinController


@pytest.fixture
def world() -> World:
    system = load_system_dir(DATA)
    store, clock = ObjectStore(), Clock()
    populate(store, DATA, system, demo_servers(system, NAMES), DEFAULT_CARDS)
    controller = BuiltinController(store, clock, ControllerSettings(startup_delay_s=5.0))
    controller.reconcile()
    return World(store, clock, StoreClusterView(store, NAMESPACE, origin_wall_s=0.0), controller)


def test_nodes_and_configmaps_follow_the_data(world: World) -> None:
    store = world.store
    gpus = {}
    for node in store.list(NODES):
        alloc = node["status"]["allocatable"]
        for key in ("nvidia.com/gpu", "ibm.com/aiu", "habana.ai/gaudi"):
            if key in alloc:
                gpus[node["metadata"]["name"]] = int(alloc[key])
    assert sum(gpus.values()) == sum(DEFAULT_CARDS.values())
    static = store.get(CONFIGMAPS, CONFIG_NAMESPACE, "inferno-static-data")["data"]
    assert set(static) >= {"model-data.json", "placement-data.json", "serviceclass-data.json"}
    dynamic = store.get(CONFIGMAPS, CONFIG_NAMESPACE, "inferno-dynamic-data")["data"]
    counts = {c["type"]: c["count"] for c in json.loads(dynamic["capacity-data.json"])["count"]}
    assert counts == DEFAULT_CARDS


def test_view_sees_pods_become_ready_and_label_writes(world: World) -> None:
    view = world.view
    states = {s.server: s for s in view.deployments(0.0)}
    assert set(states) == set(NAMES)
    assert all(s.ready_replicas == 0 and s.pods for s in states.values())
    world.clock.now_s += 6.0
    world.controller.reconcile()
    states = {s.server: s for s in view.deployments(0.0)}
    assert all(s.ready_replicas == s.replicas for s in states.values())
    first = states["Premium-llama_13b"]
    assert first.pods[0].max_batch == first.max_batch > 0
    view.set_labels(NAMESPACE, first.name, {"inferno.server.load.rpm": "42"})
    again = {s.server: s for s in view.deployments(0.0)}["Premium-llama_13b"]
    assert again.labels["inferno.server.load.rpm"] == "42"


def test_updown_pattern_rises_then_falls() -> None:
    system = load_system_dir(DATA)
    servers = demo_servers(system, NAMES)
    workloads = make_workloads(DemoSettings(duration_s=70.0), servers)
    rates = [workloads[NAMES[0]].rate_rpm(t) for t in (1.0, 35.0, 69.0)]
    assert rates[1] > rates[0] > rates[2]


def test_table_and_replica_changes() -> None:
    report = {
        "cycle_id": "c1", "outcome": "ok", "solver": "greedy", "total_cost": 100.0,
        "actions": [
            {"server": "a", "kind": "update", "outcome": "applied",
             "changes": [{"field": "replicas", "old": "1", "new": "3"}], "reasons": ["more load"]},
            {"server": "b", "kind": "noop", "outcome": "unchanged", "changes": []},
        ],
    }  # fmt: skip
    row = Row("a", "Premium", 60, "A100", 1, 3, 16, 120, 100, 150, 1000, 20, 18, 25, 80, 1.0, 80)
    nan = math.nan
    nan_row = Row("b", "Free", 0, "L4", 0, 1, 8, nan, nan, nan, 4000, nan, nan, nan, 320, nan, 6)
    text = render("title", [row, nan_row], report)
    assert "120/100/150/1000" in text and "-/-/-/4000" in text
    assert "replicas 1->3" in text and "b:" not in text
    assert replica_changes(report) == ["a: 1->3"]
