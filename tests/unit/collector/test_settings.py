"""Settings from INFERNO_* variables: names, defaults, parsing and errors naming the variable."""

from __future__ import annotations

import pytest

from collector.settings import CollectorSettings
from plumbing.settings import SettingsError


def test_defaults() -> None:
    s = CollectorSettings.from_env({})
    assert (s.namespaces, s.prometheus_enabled, s.port, s.host) == ((), False, 3301, "127.0.0.1")
    assert (s.static_configmap, s.dynamic_configmap, s.config_namespace) == (
        "inferno-static-data",
        "inferno-dynamic-data",
        "inferno",
    )


def test_environment_is_mapped() -> None:
    s = CollectorSettings.from_env(
        {
            "INFERNO_NAMESPACES": "team-b, team-a,team-b",
            "INFERNO_PROMETHEUS_URL": "http://prom:9090/",
            "INFERNO_COLLECTOR_RATE_WINDOW_S": "300",
            "INFERNO_COLLECTOR_CAPACITY_SOURCE": "nodes",
            "INFERNO_COLLECTOR_METRICS_GROUPING": "pod",
            "INFERNO_COLLECTOR_PORT": "4000",
        }
    )
    assert s.namespaces == ("team-a", "team-b")
    assert s.prometheus_url == "http://prom:9090" and s.prometheus_enabled
    assert (s.rate_window_s, s.capacity_source, s.metrics_grouping, s.port) == (300, "nodes", "pod", 4000)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"INFERNO_NAMESPACES": "Bad_NS"}, "INFERNO_NAMESPACES"),
        ({"INFERNO_PROMETHEUS_URL": "prom:9090"}, "INFERNO_PROMETHEUS_URL"),
        ({"INFERNO_COLLECTOR_PROMETHEUS_TIMEOUT_S": "0"}, "INFERNO_COLLECTOR_PROMETHEUS_TIMEOUT_S"),
        ({"INFERNO_COLLECTOR_KUBE_TIMEOUT_S": "1e9"}, "INFERNO_COLLECTOR_KUBE_TIMEOUT_S"),
        ({"INFERNO_COLLECTOR_CAPACITY_SOURCE": "guess"}, "INFERNO_COLLECTOR_CAPACITY_SOURCE"),
        ({"INFERNO_COLLECTOR_RATE_WINDOW_S": "5"}, "INFERNO_COLLECTOR_RATE_WINDOW_S"),
    ],
    ids=["namespace", "url", "timeout-zero", "timeout-unbounded", "capacity-source", "window-short"],
)
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        CollectorSettings.from_env(env)
