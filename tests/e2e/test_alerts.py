"""E2e: the monitoring component's alert rules in a real Prometheus, and one firing on a fault.

Role: proves issue 20's "the alert rules load in the real Prometheus; at least one alert is seen
firing in a fault test". The PrometheusRule's `spec` is a rules file: `promtool check rules`
accepts it, the e2e Prometheus loads it and evaluates every rule without error while scraping the
real controller's /metrics. For the fault, the same expressions are loaded a second time with
their `for` durations set to zero (they are minutes long, as a cluster needs): with Prometheus
unreachable for the collector, InfernoUntrustedServers goes from inactive to firing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from .cluster.procs import free_port
from .cluster.prometheus import ScrapeTarget
from .harness.data import REPO, ServerSpec
from .harness.scenario import Scenario

pytestmark = pytest.mark.e2e

RULES = REPO / "manifests" / "components" / "monitoring" / "prometheusrule.yaml"
SERVER = ServerSpec(
    name="alerted-llama", model="llama_13b", service_class="Premium", accelerator="A100",
    replicas=1, cards_per_replica=1, max_batch=16, rpm=300, in_tokens=128, out_tokens=32,
)  # fmt: skip


def shipped_groups() -> list[dict[str, Any]]:
    rule: dict[str, Any] = yaml.safe_load(RULES.read_text())
    assert rule["kind"] == "PrometheusRule"
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def without_for(groups: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    """The same rules at once: every `for` dropped, group names suffixed so both copies load."""
    return [
        {
            **g,
            "name": g["name"] + suffix,
            "rules": [{k: v for k, v in r.items() if k != "for"} for r in g["rules"]],
        }
        for g in groups
    ]


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package (tests/e2e/cluster/install.sh)"
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": shipped_groups()}))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    rules = sum(len(g["rules"]) for g in shipped_groups())
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {rules} rules found" in done.stdout


def firing(scenario: Scenario, alert: str, group_suffix: str) -> bool:
    """The alert is firing in /api/v1/alerts and its rule in the fast group is in state firing."""
    alerts = [
        a
        for a in scenario.prometheus.alerts()
        if a["labels"].get("alertname") == alert and a["state"] == "firing"
    ]
    rules = [
        r
        for g in scenario.prometheus.rule_groups()
        if g["name"].endswith(group_suffix)
        for r in g["rules"]
        if r["name"] == alert and r["state"] == "firing"
    ]
    return bool(alerts and rules)


def test_rules_load_and_an_alert_fires_when_the_load_is_untrusted(scenario: Scenario) -> None:
    prometheus = scenario.prometheus
    scenario.add_nodes("A100", count=1, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(SERVER)
    scenario.start_emulator()
    scenario.wait_load(SERVER.name)
    autoscaler = scenario.start_autoscaler()
    controller = f"127.0.0.1:{autoscaler.ports['controller']}"
    suffix = f"-fast-{scenario.ns}"
    try:
        prometheus.set_targets([ScrapeTarget(controller, {"role": "controller"})], name=scenario.ns)
        prometheus.set_rules(scenario.ns, shipped_groups())
        prometheus.set_rules(scenario.ns + "-fast", without_for(shipped_groups(), suffix))
        report = autoscaler.invoke()
        assert report["outcome"] == "ok", report
        prometheus.wait_target_up(controller)

        def evaluated() -> bool:
            groups = [g for g in prometheus.rule_groups() if g["name"].startswith("inferno-autoscaler")]
            rules = [r for g in groups for r in g["rules"]]
            return len(groups) >= 2 and all(r.get("lastEvaluation", "").startswith("2") for r in rules)

        scenario.wait(evaluated, "both copies of the rules loaded and evaluated", timeout_s=30)
        shipped = [g for g in prometheus.rule_groups() if g["name"] == "inferno-autoscaler"]
        assert len(shipped) == 1 and len(shipped[0]["rules"]) == sum(
            len(g["rules"]) for g in shipped_groups()
        )
        assert all(r["health"] == "ok" for r in shipped[0]["rules"]), shipped[0]["rules"]
        # Healthy: trusted load, a recent successful cycle.
        scenario.wait(
            lambda: prometheus.query_value(f'inferno_untrusted_servers{{instance="{controller}"}}') == 0,
            "the healthy cycle scraped",
            timeout_s=15,
        )
        assert not firing(scenario, "InfernoUntrustedServers", suffix)
        assert not firing(scenario, "InfernoNoSuccessfulCycle", suffix)

        # Fault: the collector's Prometheus stops answering (a closed loopback port).
        autoscaler.restart("collector", INFERNO_PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}")
        degraded = autoscaler.invoke()
        assert degraded["collected"]["trusted"] < degraded["collected"]["servers"], degraded
        scenario.wait(
            lambda: firing(scenario, "InfernoUntrustedServers", suffix) or None,
            "InfernoUntrustedServers firing",
            timeout_s=30,
        )
        assert not firing(scenario, "InfernoNoSuccessfulCycle", suffix)  # degraded cycles still succeed
    finally:
        prometheus.set_rules(scenario.ns, None)
        prometheus.set_rules(scenario.ns + "-fast", None)
        prometheus.set_targets([], name=scenario.ns)
