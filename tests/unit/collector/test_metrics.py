"""Parsing Prometheus answers: NaN, Inf, negative, malformed and empty series; pod grouping."""

from __future__ import annotations

import math
from typing import Any

import pytest

from collector.metrics import Buckets, build_snapshot, key_resolver, parse_buckets, parse_vector
from collector.ports import PodInfo, SourceError
from collector.promql import QUERY_BY_NAME
from tests.unit.collector.fakes import NOW_S, sample

BY_DEPLOYMENT = key_resolver("deployment", [])


@pytest.mark.parametrize(
    ("query", "raw", "value", "problem"),
    [
        ("completions", "2.5", 2.5, ""),
        ("completions", "0", 0.0, ""),
        ("completions", "NaN", None, "NaN"),
        ("completions", "+Inf", None, "+Inf"),
        ("completions", "-Inf", None, "-Inf"),
        ("completions", "-3", None, "negative (-3)"),
        ("queue_growth", "-0.5", -0.5, ""),
        ("queue_growth", "NaN", None, "NaN"),
        ("running", "1e308", 1e308, ""),
    ],
    ids=[
        "plain",
        "zero",
        "nan",
        "pos-inf",
        "neg-inf",
        "negative",
        "signed-negative-ok",
        "signed-nan",
        "huge",
    ],
)
def test_values_are_checked_per_series(query: str, raw: str, value: float | None, problem: str) -> None:
    readings, malformed = parse_vector(QUERY_BY_NAME[query], [sample("ns", "d", raw)], BY_DEPLOYMENT)
    assert malformed == 0
    reading = readings[("ns", "d")]
    assert (reading.value, reading.problem, reading.at_s) == (value, problem, NOW_S)


@pytest.mark.parametrize(
    "entry",
    [
        {"metric": {"namespace": "ns"}, "value": [NOW_S, "1"]},
        {"metric": {"namespace": "ns", "deployment": "d"}, "value": [NOW_S]},
        {"metric": {"namespace": "ns", "deployment": "d"}, "value": [NOW_S, "twelve"]},
        {"metric": {"namespace": "ns", "deployment": "d"}, "value": ["NaN", "1"]},
        {"metric": {"namespace": "ns", "deployment": "d"}, "values": [[NOW_S, "1"]]},
        {"metric": "ns/d", "value": [NOW_S, "1"]},
        [NOW_S, "1"],
        None,
    ],
    ids=[
        "no-deployment-label",
        "short-pair",
        "word",
        "nan-timestamp",
        "matrix",
        "metric-str",
        "scalar",
        "null",
    ],
)
def test_malformed_entries_are_counted_and_ignored(entry: Any) -> None:
    readings, malformed = parse_vector(
        QUERY_BY_NAME["completions"], [entry, sample("ns", "ok", 1)], BY_DEPLOYMENT
    )
    assert malformed == 1
    assert set(readings) == {("ns", "ok")}


def test_empty_answer_has_no_readings() -> None:
    assert parse_vector(QUERY_BY_NAME["completions"], [], BY_DEPLOYMENT) == ({}, 0)


def test_pod_series_merge_per_deployment() -> None:
    pods = [PodInfo("ns", "web-7d9f-abcde", deployment="web"), PodInfo("ns", "odd-name", deployment="web")]
    key_of = key_resolver("pod", pods)
    answer = [
        {"metric": {"namespace": "ns", "pod": "web-7d9f-abcde"}, "value": [NOW_S, "1.5"]},
        {"metric": {"namespace": "ns", "pod": "odd-name"}, "value": [NOW_S, "2"]},
        {"metric": {"namespace": "ns", "pod": "api-5c6b7-zzzzz"}, "value": [NOW_S, "4"]},  # not in the list
        {"metric": {"namespace": "ns", "pod": "single"}, "value": [NOW_S, "4"]},  # unmappable
    ]
    readings, malformed = parse_vector(QUERY_BY_NAME["completions"], answer, key_of)
    assert readings[("ns", "web")].value == 3.5
    assert readings[("ns", "api")].value == 4
    assert malformed == 1
    latest, _ = parse_vector(QUERY_BY_NAME["last_sample"], answer[:2], key_of)
    assert latest[("ns", "web")].value == 2  # max, not sum


def test_one_bad_pod_spoils_the_deployment() -> None:
    key_of = key_resolver("pod", [])
    answer = [
        {"metric": {"namespace": "ns", "pod": "web-1-a"}, "value": [NOW_S, "1"]},
        {"metric": {"namespace": "ns", "pod": "web-1-b"}, "value": [NOW_S, "NaN"]},
    ]
    readings, _ = parse_vector(QUERY_BY_NAME["completions"], answer, key_of)
    assert readings[("ns", "web")].value is None and readings[("ns", "web")].problem == "NaN"


def test_snapshot_marks_failed_queries() -> None:
    snap = build_snapshot(
        {"completions": [sample("ns", "d", 1)], "running": SourceError("timeout"), "waiting": {"oops": 1}},  # type: ignore[dict-item]
        BY_DEPLOYMENT,
    )
    assert snap.get("completions", ("ns", "d")) is not None
    assert snap.failed == {"running": "timeout", "waiting": "unexpected answer of type dict"}


def test_histogram_buckets_add_up_over_pods_per_edge() -> None:
    key_of = key_resolver("pod", [])
    answer = [
        {"metric": {"namespace": "ns", "pod": "web-1-a", "le": "100.0"}, "value": [NOW_S, "1"]},
        {"metric": {"namespace": "ns", "pod": "web-1-b", "le": "100.0"}, "value": [NOW_S, "2"]},
        {"metric": {"namespace": "ns", "pod": "web-1-a", "le": "+Inf"}, "value": [NOW_S, "4"]},
        {"metric": {"namespace": "ns", "pod": "web-1-b", "le": "+Inf"}, "value": [NOW_S, "2"]},
        {"metric": {"namespace": "ns", "pod": "web-1-b"}, "value": [NOW_S, "2"]},  # no le
        {"metric": {"namespace": "ns", "pod": "web-1-b", "le": "x"}, "value": [NOW_S, "2"]},
    ]
    histograms, malformed = parse_buckets(answer, key_of)
    assert histograms[("ns", "web")] == Buckets(((100.0, 3.0), (math.inf, 6.0)))
    assert malformed == 2
    snap = build_snapshot({"prompt_buckets": answer[:4]}, key_of)
    assert snap.histogram("prompt_buckets", ("ns", "web")) == histograms[("ns", "web")]
    assert snap.readings == {}


def test_one_bad_bucket_spoils_the_histogram() -> None:
    answer = [
        {"metric": {"namespace": "ns", "deployment": "web", "le": "10"}, "value": [NOW_S, "-1"]},
        {"metric": {"namespace": "ns", "deployment": "web", "le": "+Inf"}, "value": [NOW_S, "3"]},
    ]
    histograms, _ = parse_buckets(answer, BY_DEPLOYMENT)
    assert histograms[("ns", "web")].problem == "bucket le=10: negative (-1)"


def test_a_per_pod_query_keeps_each_pod_beside_the_deployments_sum() -> None:
    from collector.metrics import build_snapshot  # noqa: PLC0415

    def key_of(labels: dict[str, str]) -> tuple[str, str] | None:
        return (labels["namespace"], labels["deployment"]) if "deployment" in labels else None

    dep = {"namespace": "llm", "deployment": "granite"}
    answer = [
        {"metric": {**dep, "pod": "granite-a", "instance": "10.0.0.1:8000"}, "value": [5.0, "3"]},
        {"metric": {**dep, "instance": "127.0.0.2:8000"}, "value": [5.0, "4"]},  # no pod label
        {"metric": {**dep, "pod": "granite-c"}, "value": [5.0, "NaN"]},
    ]
    snap = build_snapshot({"running_avg": answer}, key_of)  # type: ignore[arg-type]
    pods = snap.per_pod("running_avg", ("llm", "granite"))
    assert {p: r.value for p, r in pods.items()} == {
        "granite-a": 3.0,
        "127.0.0.2:8000": 4.0,
        "granite-c": None,
    }
    assert pods["granite-c"].problem == "NaN"
    total = snap.get("running_avg", ("llm", "granite"))
    assert total is not None and total.value is None  # one bad series spoils the sum, as before
