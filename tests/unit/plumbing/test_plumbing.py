"""Shared plumbing: env mapping, secrets, log redaction, token bucket, error kinds, the dispatcher."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog

from actuator.settings import ENV_PREFIX as ACT_PREFIX
from actuator.settings import ActuatorSettings
from controller.settings import ENV_PREFIX, ControllerSettings
from plumbing import entry
from plumbing.client import ErrorKind, classify_status
from plumbing.logs import configure_logging
from plumbing.settings import SettingsError, load_settings, read_secret_file, settings_table
from plumbing.web import TokenBucket, is_loopback


def test_env_vars_map_onto_settings() -> None:
    env = {
        "INFERNO_CONTROL_PERIOD": "0",
        "INFERNO_CONTROLLER_DRY_RUN": "true",
        "INFERNO_CONTROLLER_PORT": "9000",
    }
    settings = load_settings(ControllerSettings, ENV_PREFIX, env)
    assert settings.control_period_s == 0 and settings.dry_run and settings.port == 9000
    assert settings.url("collector") == "http://127.0.0.1:3301"
    act = load_settings(ActuatorSettings, ACT_PREFIX, {"INFERNO_ACTUATOR_AMD_TYPE_PREFIXES": "MI, Radeon"})
    assert act.amd_type_prefixes == ["MI", "Radeon"]
    assert load_settings(ActuatorSettings, ACT_PREFIX, {}).scale_down_window_s == 300


def test_bad_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="INFERNO_CONTROL_PERIOD='-1'"):
        load_settings(ControllerSettings, ENV_PREFIX, {"INFERNO_CONTROL_PERIOD": "-1"})


def test_every_setting_is_documented() -> None:
    for model, prefix in ((ControllerSettings, ENV_PREFIX), (ActuatorSettings, ACT_PREFIX)):
        table = settings_table(model, prefix)
        assert all(info.description for info in model.model_fields.values())
        assert table.count("\n| `INFERNO_") == len(model.model_fields)


def test_secret_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("  abc\n")
    assert read_secret_file(token) == "abc"
    assert read_secret_file(tmp_path / "missing") is None
    assert read_secret_file("") is None


def test_tokens_never_reach_the_log() -> None:
    out = io.StringIO()
    configure_logging("actuator", stream=out)
    try:
        structlog.get_logger().info(
            "calling",
            token="s3cret",
            headers={"Authorization": "Bearer s3cret"},
            detail="sent Bearer s3cret",
            token_file="/var/run/token",
        )
    finally:
        structlog.reset_defaults()
    line = out.getvalue()
    assert "s3cret" not in line
    assert json.loads(line)["token_file"] == "/var/run/token"


def test_token_bucket_with_fake_time() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=2)
    assert [bucket.try_acquire(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.try_acquire(1.0) and not bucket.try_acquire(1.5)
    assert all(TokenBucket(0, 1).try_acquire(0.0) for _ in range(10))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (409, ErrorKind.CONFLICT),
        (429, ErrorKind.TRANSIENT),
        (503, ErrorKind.TRANSIENT),
        (422, ErrorKind.PERMANENT),
    ],
)
def test_status_classification(status: int, kind: ErrorKind) -> None:
    assert classify_status(status) is kind


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("10.0.0.1")
    assert not is_loopback(None)


def test_entry_dispatcher() -> None:
    assert entry.resolve("actuator").__module__ == "actuator.__main__"
    assert entry.resolve("controller").__module__ == "controller.__main__"
    with pytest.raises(ValueError, match="unknown service"):
        entry.resolve("nope")
    assert entry.main(["nope"]) == 2
    assert entry.main([]) == 2


def test_readmes_list_every_setting() -> None:
    root = Path(__file__).resolve().parents[3]
    for model, prefix, readme in (
        (ControllerSettings, ENV_PREFIX, "controller/README.md"),
        (ActuatorSettings, ACT_PREFIX, "actuator/README.md"),
    ):
        assert settings_table(model, prefix) in (root / readme).read_text(), (
            f"regenerate the table in {readme}"
        )
