"""Unit tier: no network. Loading a kube config is made to fail so no test reaches a cluster."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import config


@pytest.fixture(autouse=True)
def _no_kube_config(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("unit tests must not load a kube config; use a fake port")

    monkeypatch.setattr(config, "load_kube_config", refuse)
    monkeypatch.setattr(config, "load_incluster_config", refuse)
