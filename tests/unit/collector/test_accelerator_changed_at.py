"""The actuator's ``inferno.server/accelerator-changed-at`` annotation: parsed, passed on as an age."""

from __future__ import annotations

import pytest

from collector.core import Ports, collect
from collector.labels import LabelError, parse_server_labels
from collector.settings import CollectorSettings
from contract.labels import ACCELERATOR_CHANGED_AT, format_timestamp
from tests.unit.collector.fakes import NOW_S, NS, FakeKube, FakeMetrics, deployment, healthy_answers

BASE = {"inferno.server.managed": "true", "inferno.server.model": "granite_13b"}
SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090")


@pytest.mark.parametrize(
    ("raw", "unix_s"),
    [
        ("2026-11-23T11:50:05Z", 1795434605.0),
        ("1970-01-01T00:10:00.5Z", 600.5),
        (" 1970-01-01T00:00:00Z", 0.0),
    ],
    ids=["whole-seconds", "fraction", "padded"],
)
def test_timestamp_parses_to_unix_seconds(raw: str, unix_s: float) -> None:
    labels = parse_server_labels("d", BASE, {ACCELERATOR_CHANGED_AT: raw})
    assert labels.accelerator_changed_at_s == pytest.approx(unix_s)


@pytest.mark.parametrize(
    "raw", ["1700000000", "2026-11-23 11:50:05", "2026-11-23T11:50:05+01:00", "2026-13-45T11:50:05Z", ""]
)
def test_bad_timestamp_is_a_label_error_naming_the_key(raw: str) -> None:
    with pytest.raises(LabelError, match="accelerator-changed-at"):
        parse_server_labels("d", BASE, {ACCELERATOR_CHANGED_AT: raw})


def test_absent_means_never_changed_and_format_round_trips() -> None:
    assert parse_server_labels("d", BASE, {}).accelerator_changed_at_s is None
    stamp = format_timestamp(1795434605.7)
    assert stamp == "2026-11-23T11:50:05Z"
    assert (
        parse_server_labels("d", BASE, {ACCELERATOR_CHANGED_AT: stamp}).accelerator_changed_at_s == 1795434605
    )


@pytest.mark.parametrize(
    ("ago_s", "age_s"), [(120, 120.0), (-30, 0.0), (None, None)], ids=["past", "skew", "none"]
)
async def test_collect_gives_the_optimizer_the_age(ago_s: int | None, age_s: float | None) -> None:
    annotations = {} if ago_s is None else {ACCELERATOR_CHANGED_AT: format_timestamp(NOW_S - ago_s)}
    kube = FakeKube([deployment("granite", annotations=annotations)])
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "granite")]))
    result = (await collect(NOW_S, Ports(kube, kube, metrics), SETTINGS, {})).result
    (entry,) = result.system.model_dump(mode="json")["servers"]["servers"]
    (server,) = result.servers
    assert entry.get("acceleratorAgeS") == (None if age_s is None else pytest.approx(age_s, abs=1))
    assert (server.accelerator_changed_at_s is None) == (ago_s is None)
