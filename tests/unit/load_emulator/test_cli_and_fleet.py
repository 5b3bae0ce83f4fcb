"""The fleet builder over the shipped samples and the ``simulate`` command."""

from __future__ import annotations

import json

import pytest

from contract.data.loader import load_system_dir
from load_emulator.cli import main
from load_emulator.fleet import build_fleet, deployment_name
from tests.conftest import SAMPLES


def test_deployment_names_are_dns_labels() -> None:
    assert deployment_name("Premium-llama_13b") == "premium-llama-13b"
    assert deployment_name("__") == "server"
    assert len(deployment_name("x" * 100)) == 63


def test_large_sample_builds_27_deployments() -> None:
    system = load_system_dir(SAMPLES / "large")
    fleet = build_fleet(system, limited=False, startup_delay_s=0)
    states = fleet.cluster.deployments(0.0)
    assert len(states) == len(fleet.workloads) == 27
    assert {s.server for s in states} == {s.name for s in system.servers.servers}
    assert all(s.ready_replicas == s.replicas >= 1 for s in states)
    models = {s.name: s.model for s in system.servers.servers}
    perf = {(e.name, e.acc) for e in system.models.models}
    assert all((models[a.server], a.accelerator) in perf for a in fleet.allocations)
    assert all(s.labels["inferno.server.managed"] == "true" for s in states)


def test_simulate_prints_a_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(SAMPLES / "small"), "--duration-s", "120", "--warmup-s", "30",
                 "--startup-delay-s", "0", "--no-limited"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "ttft95" in out and "Premium-granite_13b" in out and "virtual hours per wall second" in out
    assert main(["simulate", str(SAMPLES / "small"), "--duration-s", "60", "--warmup-s", "0",
                 "--window-s", "30", "--json", "--pattern", "ramp", "--param", "t1_s=60"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert len(report["servers"]) == 15 and len(report["windows"]) == 2
    assert {"ttft_p95_ms", "itl_p95_ms", "slo_attainment"} <= set(report["servers"][0]["stats"])


def test_simulate_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(SAMPLES / "small"), "--param", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["simulate", str(SAMPLES / "small"), "--pattern", "ramp", "--param", "speed=1"]) == 2
    assert main(["simulate", "/nonexistent"]) == 2
