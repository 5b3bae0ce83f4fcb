"""The whole collection over fakes: system data, trust, skips, failures, query count."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector.core import CollectError, Ports, collect
from collector.load import KnownLoad, LoadEstimate
from collector.metrics import Key
from collector.ports import NodeInfo, PodInfo, SourceError
from collector.promql import QUERIES
from collector.settings import CollectorSettings
from contract.collect import CollectResult
from contract.data.loader import validate_system
from tests.unit.collector.fakes import (
    NOW_S,
    NS,
    FakeKube,
    FakeMetrics,
    buckets,
    deployment,
    dynamic_cm,
    healthy_answers,
    static_cm,
)

SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090")


async def run(
    kube: FakeKube,
    metrics: FakeMetrics | None = None,
    settings: CollectorSettings = SETTINGS,
    last_known: dict[Key, KnownLoad] | None = None,
) -> tuple[CollectResult, dict[Key, KnownLoad], list[str]]:
    metrics = metrics if metrics is not None else FakeMetrics(settings)
    out = await collect(NOW_S, Ports(kube, kube, metrics), settings, last_known or {})
    return out.result, out.last_known, out.warnings


def servers_in_system(result: CollectResult) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in result.system.model_dump(mode="json")["servers"]["servers"]}


async def test_healthy_cycle_builds_valid_system_data() -> None:
    kube = FakeKube([deployment("granite", replicas=3, allocation__maxbatchsize="32")])
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "granite")]))
    result, store, _ = await run(kube, metrics)
    validate_system(result.system)
    (server,) = result.servers
    assert server.trusted and server.load_source == "prometheus" and not result.degraded
    assert (server.arrival_rpm, server.observed_ttft_ms, server.observed_itl_ms) == pytest.approx(
        (120, 300, 20)
    )
    entry = servers_in_system(result)["granite"]
    assert entry["currentAlloc"]["accelerator"] == "A100"
    assert entry["currentAlloc"]["numReplicas"] == 3 and entry["currentAlloc"]["maxBatch"] == 32
    assert entry["currentAlloc"]["load"] == {
        "arrivalRate": 120.0,
        "avgInTokens": 200.0,
        "avgOutTokens": 500.0,
        "avgLength": 0.0,
    }
    assert result.system.model_dump(mode="json")["capacity"]["count"] == [
        {"type": t, "count": 64} for t in ("A100", "AIU2", "G2", "L4")
    ]
    assert [p.type for p in result.placement] == ["A100", "AIU2", "G2", "L4"]
    assert store[(NS, "granite")].load == LoadEstimate(120, 200, 500)


async def test_length_spread_from_the_histograms_reaches_the_load() -> None:
    answers = healthy_answers([(NS, "granite")])
    # 200 in, all in (100, 200]: no spread; 500 out, half in (200, 500] and half in (500, 1000].
    answers["prompt_buckets"] = buckets(NS, "granite", [("100", 0.0), ("200", 2.0), ("+Inf", 2.0)])
    answers["generation_buckets"] = buckets(
        NS, "granite", [("200", 0.0), ("500", 1.0), ("1000", 2.0), ("+Inf", 2.0)]
    )
    result, store, _ = await run(FakeKube([deployment("granite")]), FakeMetrics(SETTINGS, answers))
    load = servers_in_system(result)["granite"]["currentAlloc"]["load"]
    # Out: t = (1000 - 700) / 800 = 0.375, points 312.5 and 687.5, cv^2 = 187.5^2 / 500^2.
    assert load["inTokensCv2"] == pytest.approx(0.0)
    assert load["outTokensCv2"] == pytest.approx(187.5**2 / 500**2)
    (spec,) = validate_system(result.system).servers.servers
    assert spec.load.out_tokens_cv2 == pytest.approx(0.140625)
    assert store[(NS, "granite")].load.out_tokens_cv2 == pytest.approx(0.140625)


@pytest.mark.parametrize("count", [1, 500])
async def test_query_count_does_not_grow_with_deployments(count: int) -> None:
    deps = [deployment(f"d{i}") for i in range(count)]
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, d.name) for d in deps]))
    result, _, _ = await run(FakeKube(deps), metrics)
    assert len(metrics.calls) == len(QUERIES) == 30
    assert sorted(metrics.calls) == sorted(q.name for q in QUERIES)
    assert sum(s.trusted for s in result.servers) == count


async def test_untrusted_server_is_left_out_and_keeps_its_cards() -> None:
    deps = [deployment("good"), deployment("dark", replicas=3, allocation__accelerator="4xA100")]
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "good")]))
    result, _, _ = await run(FakeKube(deps, config_maps=None), metrics)
    by_name = {s.server: s for s in result.servers}
    assert not by_name["dark"].trusted and by_name["dark"].load_source == "none"
    assert "no load from any source" in by_name["dark"].notes
    assert set(servers_in_system(result)) == {"good"}
    capacity = {c["type"]: c["count"] for c in result.system.model_dump(mode="json")["capacity"]["count"]}
    assert capacity["A100"] == 64 - 3 * 4  # 3 replicas of one 4xA100 unit each


async def test_label_load_is_an_untrusted_estimate_when_prometheus_is_configured() -> None:
    dep = deployment("g", load__rpm="60", load__intokens="100", load__outtokens="200")
    result, store, _ = await run(FakeKube([dep]))
    (server,) = result.servers
    assert (server.load_source, server.trusted, server.arrival_rpm) == ("labels", False, 60)
    assert servers_in_system(result) == {} and store == {}


async def test_without_prometheus_labels_are_the_trusted_source() -> None:
    dep = deployment("g", load__rpm="60", load__intokens="100", load__outtokens="200")
    kube = FakeKube([dep])
    metrics = FakeMetrics(CollectorSettings())
    result, _, _ = await run(kube, metrics, CollectorSettings())
    assert result.servers[0].trusted and metrics.calls == []
    assert servers_in_system(result)["g"]["currentAlloc"]["load"]["arrivalRate"] == 60


async def test_prometheus_down_degrades_and_falls_back() -> None:
    deps = [deployment("a", load__rpm="30", load__outtokens="100"), deployment("b")]
    last = {(NS, "b"): KnownLoad(LoadEstimate(90, 10, 20), NOW_S - 120)}
    result, store, _ = await run(FakeKube(deps), FakeMetrics(SETTINGS, down=True), last_known=last)
    assert result.degraded and len(result.errors) == 30
    assert {s.server: (s.load_source, s.trusted) for s in result.servers} == {
        "a": ("labels", False),
        "b": ("last-known", False),
    }
    assert servers_in_system(result) == {}
    assert store == last  # kept until it ages out


async def test_skipped_deployments_are_reported_and_never_in_system_data() -> None:
    deps = [
        deployment("bad-rpm", load__rpm="NaN"),
        deployment("bad-model", model="gpt5"),
        deployment("bad-class", service_class="Gold"),
        deployment("bad-acc", allocation__accelerator="H100"),
        deployment("twin", ns="a", annotations=None),
        deployment("twin", ns="b"),
        deployment("fine"),
    ]
    answers = healthy_answers([(d.namespace, d.name) for d in deps])
    result, _, warnings = await run(FakeKube(deps), FakeMetrics(SETTINGS, answers))
    reasons = {f"{s.namespace}/{s.deployment}": s.reason for s in result.skipped}
    assert "NaN" in reasons[f"{NS}/bad-rpm"]
    assert "model 'gpt5' is not in model-data" in reasons[f"{NS}/bad-model"]
    assert "class 'Gold' is not in serviceclass-data" in reasons[f"{NS}/bad-class"]
    assert "accelerator 'H100'" in reasons[f"{NS}/bad-acc"]
    assert "also claimed by b/twin" in reasons["a/twin"] and "a/twin" in reasons["b/twin"]
    assert [s.server for s in result.servers] == ["fine"]
    assert len(warnings) == 6


@pytest.mark.parametrize(
    ("fail", "config_maps", "fragment"),
    [
        ({"list_managed_deployments"}, None, "listing Deployments: Kubernetes API"),
        ({"read_config_map"}, None, "reading the static ConfigMap"),
        (
            set(),
            {("inferno", "inferno-dynamic-data"): dynamic_cm()},
            "ConfigMap inferno/inferno-static-data not found",
        ),
        (
            set(),
            {
                ("inferno", "inferno-static-data"): {**static_cm(), "model-data.json": "[1"},
                ("inferno", "inferno-dynamic-data"): dynamic_cm(),
            },
            "key model-data.json: malformed JSON",
        ),
        (
            set(),
            {
                ("inferno", "inferno-static-data"): static_cm(),
                ("inferno", "inferno-dynamic-data"): dynamic_cm(A100=0),
            },
            "inferno-dynamic-data: Value error, capacity is empty",
        ),
    ],
    ids=["deployments", "configmap-read", "configmap-missing", "configmap-broken", "no-capacity"],
)
async def test_whole_collect_fails_clearly(
    fail: set[str], config_maps: dict[tuple[str, str], dict[str, str]] | None, fragment: str
) -> None:
    kube = FakeKube([deployment("g")], config_maps=config_maps)
    kube.fail = fail
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "g")]))
    with pytest.raises(CollectError) as info:
        await run(kube, metrics)
    assert fragment in str(info.value)


async def test_capacity_reserved_away_fails_clearly() -> None:
    config_maps = {
        ("inferno", "inferno-static-data"): static_cm(),
        ("inferno", "inferno-dynamic-data"): dynamic_cm(A100=4),
    }
    deps = [deployment("good"), deployment("dark", allocation__accelerator="4xA100", replicas=1)]
    kube = FakeKube(deps, config_maps=config_maps)
    with pytest.raises(CollectError, match="no free cards") as info:
        await run(kube, FakeMetrics(SETTINGS, healthy_answers([(NS, "good")])))
    assert "reserved 4 A100 cards held by dark" in str(info.value)


async def test_one_failing_query_degrades_only_what_depends_on_it() -> None:
    answers: dict[str, Any] = healthy_answers([(NS, "g")])
    answers["ttft_sum"] = TimeoutError("read timeout")
    result, _, _ = await run(FakeKube([deployment("g")]), FakeMetrics(SETTINGS, answers))
    assert result.degraded and result.errors == ["prometheus query ttft_sum failed: read timeout"]
    assert result.servers[0].trusted and result.servers[0].observed_ttft_ms is None


async def test_node_capacity_and_pod_grouping() -> None:
    settings = CollectorSettings(
        prometheus_url="http://p:9090", capacity_source="nodes", metrics_grouping="pod"
    )
    nodes = [NodeInfo("n1", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, {"nvidia.com/gpu": 8})]
    pods = [
        PodInfo(NS, "g-5d8-aaaaa", "n1", "g", {"nvidia.com/gpu": 2}),
        PodInfo("ml", "train-0", "n1", None, {"nvidia.com/gpu": 3}),
    ]
    kube = FakeKube(
        [deployment("g", replicas=2)],
        config_maps={("inferno", "inferno-static-data"): static_cm()},
        nodes=nodes,
        pods=pods,
    )
    answers = healthy_answers([(NS, "g")])
    for series in answers.values():
        for entry in series:
            entry["metric"] = {"namespace": NS, "pod": "g-5d8-aaaaa"}
    result, _, _ = await run(kube, FakeMetrics(settings, answers), settings)
    assert result.servers[0].trusted
    assert {c["type"]: c["count"] for c in result.system.model_dump(mode="json")["capacity"]["count"]}[
        "A100"
    ] == 5
    assert ("list_pods", ()) in kube.calls


def _nodes_world(dynamic: dict[str, str] | None) -> tuple[FakeKube, CollectorSettings]:
    settings = CollectorSettings(prometheus_url="http://p:9090", capacity_source="nodes")
    nodes = [NodeInfo("n1", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, {"nvidia.com/gpu": 8})]
    config_maps = {("inferno", "inferno-static-data"): static_cm()}
    if dynamic is not None:
        config_maps[("inferno", "inferno-dynamic-data")] = dynamic
    kube = FakeKube([deployment("g")], config_maps=config_maps, nodes=nodes, pods=[])
    return kube, settings


LEARNED = {"entries": [{"model": "llama_13b", "acc": "A100", "fixedFactor": 1.2, "workFactor": 1.2,
                        "identified": "scale", "confidence": 0.9}]}  # fmt: skip


async def test_with_capacity_from_nodes_the_learned_values_are_still_read_back() -> None:
    kube, settings = _nodes_world({"calibration-data.json": json.dumps(LEARNED)})
    out = await collect(NOW_S, Ports(kube, kube, FakeMetrics(settings)), settings, {})
    assert out.result.calibration is not None and out.result.calibration.entries[0].fixed_factor == 1.2
    kube, settings = _nodes_world(None)  # no dynamic ConfigMap: nothing learned yet, no error
    out = await collect(NOW_S, Ports(kube, kube, FakeMetrics(settings)), settings, {})
    assert out.result.calibration is None and not out.result.errors
    off = await collect(NOW_S, Ports(kube, kube, FakeMetrics(settings)), settings, {}, calibration=False)
    assert off.result.calibration is None
    assert sum(c[:2] == ("read_config_map", ("inferno", "inferno-dynamic-data")) for c in kube.calls) == 1


async def test_with_capacity_from_nodes_a_failed_read_of_the_learned_values_is_a_note() -> None:
    kube, settings = _nodes_world({"calibration-data.json": json.dumps(LEARNED)})
    static_only = kube.read_config_map

    async def failing(namespace: str, name: str) -> dict[str, str] | None:
        if name == "inferno-dynamic-data":
            raise SourceError("connection refused")
        return await static_only(namespace, name)

    kube.read_config_map = failing  # type: ignore[method-assign]
    out = await collect(NOW_S, Ports(kube, kube, FakeMetrics(settings)), settings, {})
    assert out.result.calibration is None and out.result.servers  # the cycle goes on
    assert out.result.errors == ["reading the dynamic ConfigMap (learned performance): connection refused"]


async def test_every_server_untrusted_still_gives_a_valid_empty_system() -> None:
    settings = CollectorSettings(prometheus_url="http://p:9090", capacity_source="nodes")
    nodes = [NodeInfo("n1", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, {"nvidia.com/gpu": 4})]
    pods = [PodInfo(NS, "g-5d8-aaaaa", "n1", "g", {"nvidia.com/gpu": 4})]
    kube = FakeKube(
        [deployment("g")],
        config_maps={("inferno", "inferno-static-data"): static_cm()},
        nodes=nodes,
        pods=pods,
    )
    result, _, _ = await run(kube, FakeMetrics(settings, down=True), settings)
    assert result.degraded and not result.servers[0].trusted
    assert result.system.model_dump(mode="json")["servers"]["servers"] == []
