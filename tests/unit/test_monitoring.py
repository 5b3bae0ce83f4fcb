"""The monitoring component names only series the controller really exports.

Every PromQL expression of the Grafana dashboard and of the PrometheusRule is parsed for the
metric names it reads; each must be a series of the controller's registry (controller/metrics.py,
the /metrics the PodMonitor scrapes), with the suffixes prometheus_client gives counters and
histograms. A renamed metric, or a panel for one that was never exported, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from controller.metrics import ControllerMetrics

MONITORING = Path(__file__).resolve().parents[2] / "manifests" / "components" / "monitoring"
FUNCTIONS_AND_KEYWORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile", "time",
    "absent", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "topk", "bottomk", "clamp_min", "clamp_max", "delta", "deriv", "abs", "timestamp",
}  # fmt: skip
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_series() -> set[str]:
    names = set()
    for family in ControllerMetrics().registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, functions, durations left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings, e.g. in label matchers
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors, $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    text = re.sub(r"\b\d+(\.\d+)?([smhdwy]|e[+-]?\d+)?\b", " ", text)  # numbers, durations
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {w for w in words if w not in FUNCTIONS_AND_KEYWORDS}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (outcome) (rate(inferno_cycles_total[$__rate_interval]))", {"inferno_cycles_total"}),
        ('max by (server) (x_seconds{stage="a}b", le="0.5"}) == 0', {"x_seconds"}),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
        ("(time() - a) > 600\nand on (instance) (b == 1)", {"a", "b"}),
        ("max(c) == 0 or absent(c)", {"c"}),
        ("sum without (kind) (increase(d_total[15m])) > 5", {"d_total"}),
    ],
    ids=["rate", "label-strings", "quantile", "and-on", "absent", "without"],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard: dict[str, Any] = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def rule_exprs() -> list[tuple[str, str]]:
    rule: dict[str, Any] = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [(r["alert"], r["expr"]) for g in rule["spec"]["groups"] for r in g["rules"]]


@pytest.mark.parametrize("source", [dashboard_exprs, rule_exprs], ids=["dashboard", "alerts"])
def test_every_expression_reads_only_exported_series(source: Any) -> None:
    exported = exported_series()
    exprs = source()
    assert exprs
    unknown = {(title, name) for title, expr in exprs for name in metric_names(expr) - exported}
    assert not unknown, f"not exported by the controller: {sorted(unknown)}"
    assert all(metric_names(expr) for _, expr in exprs), "an expression reads no series"


def test_the_dashboard_shows_every_exported_series() -> None:
    shown = {name for _, expr in dashboard_exprs() for name in metric_names(expr)}
    families = {name.removesuffix("_total").removesuffix("_bucket") for name in shown}
    missing = {f.name for f in ControllerMetrics().registry.collect()} - families
    assert not missing, f"exported but on no panel: {sorted(missing)}"


def test_the_alerts_cover_what_the_issue_asks() -> None:
    alerts = {name for name, _ in rule_exprs()}
    assert {
        "InfernoNoSuccessfulCycle",
        "InfernoUntrustedServers",
        "InfernoActionsFailing",
        "InfernoLeaderMissing",
        "InfernoReplicasNotReady",
    } <= alerts


def test_the_component_lists_its_resources() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    assert set(kustomization["resources"]) == {"podmonitor.yaml", "prometheusrule.yaml"}
    monitor = yaml.safe_load((MONITORING / "podmonitor.yaml").read_text())
    deployment = yaml.safe_load_all((MONITORING.parents[1] / "deployment.yaml").read_text())
    [pod] = [d["spec"]["template"] for d in deployment if d and d.get("kind") == "Deployment"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_an_overlay_with_the_component_renders(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(MONITORING.parents[1], tmp_path)],
                "components": [os.path.relpath(MONITORING, tmp_path)],
            }
        )
    )
    out = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path), "--load-restrictor", "LoadRestrictionsNone"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    kinds = [d["kind"] for d in yaml.safe_load_all(out) if d]
    assert {"Deployment", "PodMonitor", "PrometheusRule"} <= set(kinds)
    assert all(d["metadata"].get("namespace", "inferno") == "inferno" for d in yaml.safe_load_all(out) if d)
