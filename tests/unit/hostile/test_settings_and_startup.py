"""Hostile settings (hypothesis) and the one start-up of the four services.

Any string in any ``INFERNO_*`` variable either loads or raises ``SettingsError`` naming the
variable; ``run_service`` turns that into exit code 2 and one line on stderr (no trace, no socket
opened), prints the table for ``--help-settings``, and turns a ``StartupError`` (no kube config)
into exit code 2 with a ``startup_failed`` log line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from actuator.settings import ENV_PREFIX as ACTUATOR_PREFIX
from actuator.settings import ActuatorSettings
from collector.settings import ENV_PREFIX as COLLECTOR_PREFIX
from collector.settings import CollectorSettings
from controller.settings import ENV_PREFIX as CONTROLLER_PREFIX
from controller.settings import ControllerSettings
from optimizer.app import ENV_PREFIX as OPTIMIZER_PREFIX
from optimizer.app import ServiceSettings
from plumbing.main import StartupError, run_service
from plumbing.settings import SettingsError, env_name, load_settings
from tests.unit.hostile.profile import HOSTILE, count

MODELS: list[tuple[type[BaseModel], str]] = [
    (ControllerSettings, CONTROLLER_PREFIX),
    (CollectorSettings, COLLECTOR_PREFIX),
    (ServiceSettings, OPTIMIZER_PREFIX),
    (ActuatorSettings, ACTUATOR_PREFIX),
]
ODD = st.sampled_from(["", " ", "-1", "0", "NaN", "inf", "1e999", "true", "yes", "70000", "greedy",
                       "cplex", "http://x", "ftp://x", "a,b,,c", "ns_with_underscore", "\u00e9",
                       "9" * 30])  # fmt: skip


@HOSTILE
@given(index=st.integers(0, len(MODELS) - 1), data=st.data())
def test_any_environment_loads_or_names_the_variable(index: int, data: st.DataObject) -> None:
    model, prefix = MODELS[index]
    names = [env_name(model, field, prefix) for field in model.model_fields]
    environ = data.draw(st.dictionaries(st.sampled_from(names), ODD | st.text(max_size=12), max_size=4))
    count("settings: environment")
    try:
        load_settings(model, prefix, environ)
    except SettingsError as exc:
        assert any(f"{name}=" in str(exc) for name in environ), (environ, str(exc))


async def _never(_settings: Any) -> None:
    raise AssertionError("must not start")


async def _no_kube(_settings: Any) -> None:
    raise StartupError("no Kubernetes configuration: /nonexistent/kubeconfig")


def test_help_settings_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_service("optimizer", ServiceSettings, OPTIMIZER_PREFIX, _never, ["--help-settings"]) == 0
    out = capsys.readouterr().out
    assert "`INFERNO_OPTIMIZER_TIME_LIMIT`" in out and "`INFERNO_OPTIMIZER_TOKEN_FILE`" in out


def test_a_bad_setting_is_exit_2_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFERNO_OPTIMIZER_SOLVER", "cplex")
    assert run_service("optimizer", ServiceSettings, OPTIMIZER_PREFIX, _never, []) == 2
    err = capsys.readouterr().err
    assert err.startswith("optimizer: invalid settings: INFERNO_OPTIMIZER_SOLVER='cplex'")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_startup_error_is_exit_2_and_logged(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFERNO_ACTUATOR_LOG_LEVEL", "INFO")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        assert run_service("actuator", ActuatorSettings, ACTUATOR_PREFIX, _no_kube, []) == 2
    finally:
        root.handlers, root.level = saved  # run_service routed the root logger to stdout
        structlog.reset_defaults()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert any(x["event"] == "startup_failed" and "kubeconfig" in x["error"] for x in lines), lines
