"""The real-cluster demo's pure parts, without a cluster: objects, scrape targets, state file, options.

Cases: the KWOK nodes hold the demo's cards on loopback addresses in their own pool; the
Deployments roll without surge and stay in the pool; the ConfigMaps live in the demo namespace;
file_sd groups (one per Deployment) and their atomic rewrite; the view over raw listings (Ready
times, Pending-for-capacity counts, a bad body); the state file's errors; ``--cluster-state``
implies cluster mode; the table's predictions come from the cycle report.
"""

from __future__ import annotations

import ipaddress
import json
import math
from pathlib import Path
from typing import Any

import pytest

from contract.data.loader import load_system_dir
from load_emulator.demo.cli import parser, settings_from
from load_emulator.demo.cluster_view import ClusterDemoView, scrape_groups, write_targets
from load_emulator.demo.cluster_world import KWOK_ANNOTATION, POOL_LABEL, cluster_objects
from load_emulator.demo.local_cluster import ClusterState
from load_emulator.demo.loop_state import DemoSettings
from load_emulator.demo.run import DemoLoop, new_engine
from load_emulator.demo.store_view import StoreClusterView
from load_emulator.demo.world import (
    DEFAULT_CARDS,
    DEFAULT_SERVERS,
    NAMESPACE,
    demo_servers,
    deployment_of,
    populate,
)
from load_emulator.engine import catalog_of
from load_emulator.kubeapi import ObjectStore

DATA = Path(__file__).resolve().parents[3] / "samples" / "small"
NS = "demo-x"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
RESOURCES = ("nvidia.com/gpu", "ibm.com/aiu", "habana.ai/gaudi")


def objects() -> Any:
    system = load_system_dir(DATA)
    return cluster_objects(DATA, system, demo_servers(system, DEFAULT_SERVERS), DEFAULT_CARDS, NS)


def test_nodes_hold_the_cards_on_loopback_in_their_own_pool() -> None:
    nodes = objects().nodes
    cards = sum(
        int(n["status"]["allocatable"][r])
        for n in nodes
        for r in RESOURCES
        if r in n["status"]["allocatable"]
    )
    assert cards == sum(DEFAULT_CARDS.values())
    assert len({n["metadata"]["name"] for n in nodes}) == len(nodes)
    assert len({n["spec"]["podCIDR"] for n in nodes}) == len(nodes)
    for n in nodes:
        assert n["metadata"]["name"].startswith(f"{NS}-")
        assert n["metadata"]["annotations"][KWOK_ANNOTATION] == "fake"
        assert n["metadata"]["labels"][POOL_LABEL] == NS
        assert ipaddress.ip_network(n["spec"]["podCIDR"]).subnet_of(LOOPBACK)  # type: ignore[arg-type]
        (internal,) = [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
        assert ipaddress.ip_address(internal) in LOOPBACK
    aiu = [n for n in nodes if "ibm.com/aiu" in n["status"]["allocatable"]]
    assert aiu and all(n["metadata"]["labels"]["ibm.com/aiu.product"] == "IBM-AIU2" for n in aiu)


def test_deployments_roll_without_surge_and_stay_in_the_pool() -> None:
    objs = objects()
    assert len(objs.deployments) == len(DEFAULT_SERVERS)
    for dep in objs.deployments:
        assert dep["metadata"]["namespace"] == NS
        assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
        pod = dep["spec"]["template"]["spec"]
        assert pod["nodeSelector"][POOL_LABEL] == NS and len(pod["nodeSelector"]) == 2
        assert pod["terminationGracePeriodSeconds"] == 0
        assert dep["metadata"]["labels"]["inferno.server.managed"] == "true"
    system = load_system_dir(DATA)
    (server,) = demo_servers(system, DEFAULT_SERVERS[:1])
    in_memory = deployment_of(server, {"nodeLabelKey": "k", "nodeLabelValue": "v", "resource": "r"})
    assert "strategy" not in in_memory["spec"]  # the in-memory world is left as it was


def test_configmaps_live_in_the_demo_namespace() -> None:
    cms = {cm["metadata"]["name"]: cm for cm in objects().config_maps}
    assert {cm["metadata"]["namespace"] for cm in cms.values()} == {NS}
    counts = json.loads(cms["inferno-dynamic-data"]["data"]["capacity-data.json"])["count"]
    assert {c["type"]: c["count"] for c in counts} == DEFAULT_CARDS
    assert "model-data.json" in cms["inferno-static-data"]["data"]


def test_scrape_groups_and_atomic_rewrite(tmp_path: Path) -> None:
    groups = scrape_groups("127.0.0.1:9000", [("ns", "mistral"), ("ns", "llama"), ("ns", "llama")])
    assert groups[0] == {
        "targets": ["127.0.0.1:9000"],
        "labels": {"__metrics_path__": "/metrics/ns/llama", "namespace": "ns", "deployment": "llama"},
    }
    assert len(groups) == 2  # one target per Deployment, however many pods it has
    path = tmp_path / "ns.json"
    assert write_targets(path, groups) is True
    assert write_targets(path, groups) is False  # unchanged: Prometheus is not made to re-read it
    assert json.loads(path.read_text()) == groups
    assert write_targets(path, groups[:1]) is True and len(json.loads(path.read_text())) == 1
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["ns.json"]


class _Listing:
    def __init__(self, items: list[dict[str, Any]] | None) -> None:
        body = {"kind": "List", "items": items} if items is not None else {"kind": "Status"}
        self.data = json.dumps(body).encode()


class _FakeApi:
    """Answers the two list calls as ``_preload_content=False`` does: raw JSON bytes."""

    def __init__(self, deployments: list[dict[str, Any]], pods: list[dict[str, Any]] | None) -> None:
        self.deployments, self.pods, self.calls = deployments, pods, []  # type: ignore[var-annotated]

    def list_namespaced_deployment(self, ns: str, **kwargs: Any) -> _Listing:
        self.calls.append(("deployments", ns, kwargs))
        return _Listing(self.deployments)

    def list_namespaced_pod(self, ns: str, **kwargs: Any) -> _Listing:
        self.calls.append(("pods", ns, kwargs))
        return _Listing(self.pods)


def _pod(name: str, app: str, *conditions: dict[str, str], deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "labels": {"app.kubernetes.io/name": app}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    args = ["--model", "m", "--max-num-seqs", "7"]
    return {
        "metadata": meta,
        "spec": {"containers": [{"args": args}]},
        "status": {"conditions": list(conditions)},
    }


READY = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"}
UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}


def test_cluster_view_reads_raw_listings_like_the_store() -> None:
    dep = objects().deployments[0]
    app = dep["metadata"]["name"]
    pods = [_pod(f"{app}-a", app, READY), _pod(f"{app}-b", app, UNSCHEDULABLE),
            _pod(f"{app}-c", app, READY, deleting=True), _pod("other-x", "other", UNSCHEDULABLE)]  # fmt: skip
    view = ClusterDemoView(None, NS, origin_wall_s=1767225600.0)  # type: ignore[arg-type]  # 2026-01-01T00:00Z
    fake = _FakeApi([dep], pods)
    view.apps = view.core = fake
    assert view.deployments(0.0) == [] and view.unschedulable() == {}
    view.refresh(0.0)
    assert [c[0] for c in fake.calls] == ["deployments", "pods"]
    assert fake.calls[0][2]["label_selector"] == "inferno.server.managed=true"
    assert all(c[2]["_preload_content"] is False for c in fake.calls)
    (state,) = view.deployments(0.0)
    assert state.server == dep["metadata"]["labels"]["inferno.server.name"]
    assert [p.name for p in state.pods] == [f"{app}-a", f"{app}-b", f"{app}-c"]
    assert [p.ready_since_s for p in state.pods] == [
        10.0,
        None,
        None,
    ]  # Pending and terminating serve nothing
    assert state.pods[0].max_batch == 7
    assert view.unschedulable() == {app: 1, "other": 1}


def test_cluster_view_rejects_a_body_without_items() -> None:
    view = ClusterDemoView(None, NS, origin_wall_s=0.0)  # type: ignore[arg-type]
    view.apps = view.core = _FakeApi([], None)
    with pytest.raises(ValueError, match="list of Pod answered"):
        view.refresh(0.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "JSONDecodeError"),
        (json.dumps({"kubeconfig": "k"}), "KeyError"),
        (
            json.dumps({"kubeconfig": "k", "prometheus": None, "prometheus_targets_dir": None}),
            "no Prometheus",
        ),
    ],
    ids=["not-json", "missing-key", "no-prometheus"],
)
def test_state_file_errors_are_clear(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        ClusterState.read(path)


def test_state_file_read(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    doc = {"kubeconfig": "/k", "prometheus": "http://127.0.0.1:9090", "prometheus_targets_dir": "/t"}
    path.write_text(json.dumps(doc))
    assert ClusterState.read(path) == ClusterState(Path("/k"), "http://127.0.0.1:9090", Path("/t"))


def test_cluster_options() -> None:
    memory = settings_from(parser().parse_args([]))
    assert not memory.cluster and memory.first_cycle_s == 2.0
    attach = settings_from(parser().parse_args(["--cluster-state", "/s.json", "--namespace", "n1"]))
    assert attach.cluster and attach.cluster_state == Path("/s.json") and attach.namespace == "n1"
    assert attach.first_cycle_s == 12.0
    own = settings_from(parser().parse_args(["--cluster", "--first-cycle-s", "5"]))
    assert own.cluster and own.cluster_state is None and own.first_cycle_s == 5.0


def test_rows_take_predictions_from_the_cycle_report() -> None:
    system = load_system_dir(DATA)
    servers = demo_servers(system, DEFAULT_SERVERS[:2])
    store = ObjectStore()
    populate(store, DATA, system, servers, DEFAULT_CARDS)
    view = StoreClusterView(store, NAMESPACE, 0.0)
    loop = DemoLoop(DemoSettings(), servers, view, out=None)  # type: ignore[arg-type]
    engine = new_engine(catalog_of(system), view, loop)
    first, second = servers
    report = {"decisions": [{"server": first.name, "ttft_ms": 123.0, "itl_ms": 21.5, "cost": 46.0}]}
    rows = {r.server: r for r in loop.rows(engine, 0.0, report)}
    assert (rows[first.name].ttft_pred_ms, rows[first.name].itl_pred_ms) == (123.0, 21.5)
    assert rows[first.name].cost_per_hour == 46.0
    assert math.isnan(rows[second.name].ttft_pred_ms) and math.isnan(rows[second.name].cost_per_hour)
