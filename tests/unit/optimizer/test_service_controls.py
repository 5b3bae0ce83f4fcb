"""The loop-control settings reach the optimizer core from the service's environment."""

from __future__ import annotations

import pytest

from optimizer.app import ServiceSettings
from optimizer.settings import OptimizerSettings
from plumbing.settings import SettingsError


def test_env_sets_batch_cap_and_type_change_hold() -> None:
    core = ServiceSettings.from_env(
        {"INFERNO_OPTIMIZER_MAX_BATCH_CAP": "128", "INFERNO_OPTIMIZER_TYPE_CHANGE_HOLD_S": "0"}
    ).optimizer
    assert (core.max_batch_cap, core.type_change_hold_s) == (128, 0.0)
    default, core_default = ServiceSettings.from_env({}).optimizer, OptimizerSettings()
    assert default == core_default  # the service serves the library's defaults
    assert (default.max_batch_cap, default.type_change_hold_s, default.batch_tolerance) == (256, 1800.0, 0.5)
    tolerant = ServiceSettings.from_env({"INFERNO_OPTIMIZER_BATCH_TOLERANCE": "0.1"}).optimizer
    assert tolerant.batch_tolerance == 0.1


@pytest.mark.parametrize(
    "env", [{"INFERNO_OPTIMIZER_MAX_BATCH_CAP": "-1"}, {"INFERNO_OPTIMIZER_TYPE_CHANGE_HOLD_S": "x"}]
)
def test_bad_values_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(env))):
        ServiceSettings.from_env(env)
