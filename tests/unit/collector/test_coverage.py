"""Pods reporting against pods Ready: the hold, the scaled load, the grace, and the collect around it."""

from __future__ import annotations

from typing import Any

import pytest

from collector.core import Ports, collect
from collector.coverage import PodCounts, Reporting, check, pod_counts, reporting_pods
from collector.metrics import build_snapshot, key_resolver
from collector.ports import PodInfo
from collector.promql import build_queries
from collector.settings import CollectorSettings
from contract.collect import CollectResult
from contract.steps import StepCode
from tests.unit.collector.fakes import NOW_S, NS, FakeKube, FakeMetrics, deployment, healthy_answers, sample

GRACE_S = 240.0
KEY = (NS, "granite")


def pod(i: int, ready_for_s: float | None, dep: str = "granite") -> PodInfo:
    """Pod ``i`` of ``dep``, Ready for ``ready_for_s`` seconds (None: not Ready)."""
    since = None if ready_for_s is None else NOW_S - ready_for_s
    return PodInfo(NS, f"{dep}-7d9f-{i}", deployment=dep, ready_since_s=since)


@pytest.mark.parametrize(
    ("ready_for_s", "expected"),
    [
        ([600, 600, 600, 600], PodCounts(4, 4)),
        ([600, 600, 600, 30], PodCounts(4, 3)),  # one just (re)started: in its grace
        ([600, 600, None], PodCounts(2, 2)),  # one not Ready
        ([GRACE_S, GRACE_S - 1], PodCounts(2, 1)),  # the grace is inclusive
        ([-5.0], PodCounts(1, 0)),  # Ready "in the future" (clock skew): just now
        ([], None),
    ],
    ids=["all-settled", "one-restarted", "one-not-ready", "grace-edge", "clock-skew", "no-pods"],
)
def test_pod_counts(ready_for_s: list[float | None], expected: PodCounts | None) -> None:
    counts = pod_counts([pod(i, s) for i, s in enumerate(ready_for_s)], NOW_S, GRACE_S)
    assert counts.get(KEY) == expected


def test_pods_without_a_deployment_are_not_counted() -> None:
    orphan = PodInfo(NS, "bare", deployment=None, ready_since_s=NOW_S - 600)
    assert pod_counts([orphan], NOW_S, GRACE_S) == {}


@pytest.mark.parametrize(
    ("counts", "reporting", "scale"),
    [
        (PodCounts(4, 4), Reporting(4), None),
        (PodCounts(4, 4), Reporting(3), 4 / 3),  # one dropped out of the scrape: held, x4/3
        (PodCounts(4, 4), Reporting(1), 4.0),
        (PodCounts(4, 3), Reporting(3), None),  # the restarted pod is in its grace: no hold
        (PodCounts(5, 4), Reporting(3), 5 / 3),  # scaled to every Ready pod, young ones too
        (PodCounts(4, 4), Reporting(6), None),  # more than Ready (terminating pods still scraped)
        (PodCounts(4, 4), Reporting(None), None),  # no series: the load stage has it (untrusted)
        (PodCounts(4, 4), Reporting(0), None),
        (PodCounts(4, 4), Reporting(None, "rejected NaN"), 1.0),  # bad data: held, not scaled
        (PodCounts(4, 4), Reporting(None, "query failed: timeout"), 1.0),
        (PodCounts(2, 0), Reporting(None, "rejected NaN"), None),  # nobody expected to report
        (None, Reporting(3), None),  # pods not listed: nothing to compare with
        (PodCounts(0, 0), Reporting(2), None),
    ],
    ids=[
        "all-report",
        "one-missing",
        "three-missing",
        "restarted-in-grace",
        "young-ready-scaled-too",
        "more-reporting",
        "no-series",
        "reporting-zero",
        "count-nan",
        "count-query-failed",
        "bad-count-none-settled",
        "pods-unknown",
        "none-ready",
    ],
)
def test_check(counts: PodCounts | None, reporting: Reporting, scale: float | None) -> None:
    hold = check(counts, reporting, GRACE_S)
    if scale is None:
        assert hold is None
        return
    assert hold is not None and counts is not None
    assert hold.scale == pytest.approx(scale)
    assert hold.step.code is StepCode.UNREPORTED_PODS and hold.step.stage == "collect"
    if reporting.problem:
        assert f"unknown ({reporting.problem})" in hold.step.text
    else:
        assert f"{reporting.pods} of {counts.settled} pod(s)" in hold.step.text


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([sample(*KEY, 3)], Reporting(3)),
        ([sample(*KEY, "NaN")], Reporting(None, "rejected NaN")),
        ([sample(*KEY, -1)], Reporting(None, "rejected negative (-1)")),
        ([], Reporting(None)),
        (RuntimeError("Prometheus unreachable"), Reporting(None, "query failed: Prometheus unreachable")),
    ],
    ids=["three", "nan", "negative", "no-series", "failed"],
)
def test_reporting_pods_reading(answer: Any, expected: Reporting) -> None:
    snapshot = build_snapshot({"reporting_pods": answer}, key_resolver("deployment", []))
    assert reporting_pods(snapshot, KEY) == expected


def test_reporting_pods_per_pod_series_add_up_with_pod_grouping() -> None:
    pods = [pod(i, 600) for i in range(3)]
    answer = [{"metric": {"namespace": NS, "pod": p.name}, "value": [NOW_S, "1"]} for p in pods]
    snapshot = build_snapshot({"reporting_pods": answer}, key_resolver("pod", pods))
    assert reporting_pods(snapshot, KEY) == Reporting(3)


# --- the collect around it -------------------------------------------------------------------
SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090", rate_window_s=int(GRACE_S))
RUNNING = {"allocation__maxbatchsize": "32"}


async def collected(
    ready_for_s: list[float | None],
    reporting: int | None,
    settings: CollectorSettings = SETTINGS,
    annotations: dict[str, str] | None = None,
    **labels: str,
) -> CollectResult:
    answers: dict[str, Any] = healthy_answers([KEY], completions_rps=3.0)  # 180 rpm measured
    if reporting is not None:
        answers["reporting_pods"] = [sample(*KEY, reporting)]
    kube = FakeKube(
        [deployment("granite", replicas=len(ready_for_s), annotations=annotations, **{**RUNNING, **labels})],
        pods=[pod(i, s) for i, s in enumerate(ready_for_s)],
    )
    out = await collect(NOW_S, Ports(kube, kube, FakeMetrics(settings, answers)), settings, {})
    return out.result


def entry_of(result: CollectResult) -> dict[str, Any]:
    (entry,) = result.system.model_dump(mode="json", by_alias=True)["servers"]["servers"]
    return dict(entry)


@pytest.mark.parametrize(
    ("ready_for_s", "reporting", "held", "rpm"),
    [
        ([600] * 4, 4, False, 180.0),
        ([600] * 4, 3, True, 240.0),
        ([600, 600, 600, 20], 3, False, 180.0),
        ([600, 600, 600, 20], 2, True, 360.0),
        ([600, 600, None, 600], 3, False, 180.0),
    ],
    ids=[
        "all-report",
        "one-dropped-from-scrape",
        "pod-restarted-mid-window",
        "restarted-and-another-dropped",
        "one-not-ready",
    ],
)
async def test_a_server_with_pods_missing_from_the_sums_is_held_with_its_load_scaled(
    ready_for_s: list[float | None], reporting: int, held: bool, rpm: float
) -> None:
    result = await collected(ready_for_s, reporting)
    (server,) = result.servers
    assert server.trusted, server.notes
    assert server.arrival_rpm == pytest.approx(rpm)
    entry = entry_of(result)
    assert entry["currentAlloc"]["load"]["arrivalRate"] == pytest.approx(rpm)
    if held:
        assert server.hold is not None and server.hold.code is StepCode.UNREPORTED_PODS
        # planned as it runs, with room to grow only
        assert entry["keepAccelerator"] is True
        assert entry["minNumReplicas"] == len(ready_for_s)
        assert entry["maxBatchSize"] == 32
        assert any("pods not reporting" in n for n in server.notes), server.notes
    else:
        assert server.hold is None
        assert (entry["keepAccelerator"], entry["minNumReplicas"], entry["maxBatchSize"]) == (False, 0, 0)


async def test_a_garbage_count_holds_the_server_at_its_measured_load() -> None:
    answers: dict[str, Any] = healthy_answers([KEY], completions_rps=3.0)
    answers["reporting_pods"] = [sample(*KEY, "NaN")]
    kube = FakeKube([deployment("granite", replicas=4, **RUNNING)], pods=[pod(i, 600) for i in range(4)])
    out = await collect(NOW_S, Ports(kube, kube, FakeMetrics(SETTINGS, answers)), SETTINGS, {})
    (server,) = out.result.servers
    assert server.hold is not None and "unknown (rejected NaN)" in server.hold.text
    assert server.trusted and server.arrival_rpm == pytest.approx(180.0)
    assert entry_of(out.result)["minNumReplicas"] == 4


async def test_a_held_server_never_gets_a_minimum_above_its_maximum() -> None:
    result = await collected([600] * 4, 2, annotations={"inferno.server/max-replicas": "3"})
    assert entry_of(result)["minNumReplicas"] == 3


async def test_a_held_server_whose_running_batch_is_unknown_is_kept_as_it_is() -> None:
    result = await collected([600] * 4, 3, allocation__maxbatchsize="")
    (server,) = result.servers
    assert server.hold is None and not server.trusted  # untrusted says why it is kept as it is
    assert "running GPU type or batch is unknown" in server.notes[-2]
    assert "3 of 4 pod(s)" in server.notes[-1]
    assert result.system.servers.servers == []


async def test_an_untrusted_server_is_not_held_but_notes_the_count() -> None:
    answers: dict[str, Any] = healthy_answers([KEY], age_s=600)  # stale: untrusted
    answers["reporting_pods"] = [sample(*KEY, "NaN")]
    kube = FakeKube([deployment("granite", replicas=4, **RUNNING)], pods=[pod(i, 600) for i in range(4)])
    out = await collect(NOW_S, Ports(kube, kube, FakeMetrics(SETTINGS, answers)), SETTINGS, {})
    (server,) = out.result.servers
    assert not server.trusted and server.hold is None
    assert any("unknown (rejected NaN)" in n for n in server.notes), server.notes


async def test_the_check_can_be_turned_off() -> None:
    off = SETTINGS.model_copy(update={"check_reporting_pods": False})
    result = await collected([600] * 4, 3, settings=off)
    (server,) = result.servers
    assert server.hold is None and server.arrival_rpm == pytest.approx(180.0)


async def test_pods_unreadable_checks_nothing_and_says_so() -> None:
    answers: dict[str, Any] = healthy_answers([KEY])
    answers["reporting_pods"] = [sample(*KEY, 1)]
    kube = FakeKube([deployment("granite", replicas=4, **RUNNING)], pods=[pod(i, 600) for i in range(4)])
    kube.fail.add("list_pods")
    out = await collect(NOW_S, Ports(kube, kube, FakeMetrics(SETTINGS, answers)), SETTINGS, {})
    (server,) = out.result.servers
    assert server.hold is None and server.trusted
    assert out.result.degraded
    assert any("reporting pods not checked" in e for e in out.result.errors), out.result.errors


def test_the_reporting_query_is_one_fixed_query() -> None:
    assert "reporting_pods" in build_queries((), 240, "deployment")
