"""Session fixtures for e2e tests: one real local control plane and one Prometheus per run.

Role: every test under tests/e2e gets the `e2e` marker and may use `local_cluster` and
`local_prometheus` (see cluster/README.md). When the binaries are missing the tests are skipped
with the install command, except on CI (CI=true), where a missing binary is a failure: a CI run
must never pass by skipping its integration tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from .cluster import addons, binaries
from .cluster.local_cluster import LocalCluster
from .cluster.lws import LwsController, install_crds
from .cluster.metrics_adapter import MetricsAdapter
from .cluster.prometheus import LocalPrometheus, find_prometheus
from .harness.scenario import Scenario, scenario_fixture

HERE = Path(__file__).resolve().parent
INSTALL_HINT = "run tests/e2e/cluster/install.sh (builds into ~/.cache/inferno-e2e, ~10-20 min once)"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(what: str) -> NoReturn:
    message = f"e2e: {what} not available; {INSTALL_HINT}"
    if _in_ci():
        pytest.fail(f"{message} [CI is set, so this is a failure, not a skip]", pytrace=False)
    pytest.skip(message)


def _keep_dirs() -> bool:
    # INFERNO_E2E_KEEP=1 leaves logs, certs and kubeconfigs in /tmp for post-mortem debugging.
    return os.environ.get("INFERNO_E2E_KEEP", "") not in {"", "0"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    found, missing = binaries.resolve()
    if missing:
        _unavailable(", ".join(missing))
    cluster = LocalCluster(found, keep_dir=_keep_dirs())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()  # runs on failures and on Ctrl-C (pytest tears fixtures down)


@pytest.fixture(scope="session")
def local_prometheus() -> Iterator[LocalPrometheus]:
    binary = find_prometheus()
    if binary is None:
        _unavailable("prometheus")
    prom = LocalPrometheus(binary, scrape_interval_s=1.0, keep_dir=_keep_dirs())
    try:
        prom.start()
        yield prom
    finally:
        prom.stop()


@pytest.fixture(scope="session")
def addon_files(local_cluster: LocalCluster) -> dict[str, Path]:
    """The add-on binaries and CRD files (cluster/addons.py); the upstream CRDs are installed."""
    found, missing = binaries.resolve_addons()
    if crds := [name for name in missing if name in addons.CRD_FILES]:
        _unavailable(", ".join(crds))
    install_crds(local_cluster, [found["crd-leaderworkersets.yaml"], found["crd-inferenceservices.yaml"]])
    return found


@pytest.fixture(scope="session")
def lws_controller(local_cluster: LocalCluster, addon_files: dict[str, Path]) -> Iterator[LwsController]:
    """The LeaderWorkerSet controller built from sigs.k8s.io/lws, with its webhooks on loopback."""
    if addons.LWS_BINARY not in addon_files:
        _unavailable(addons.LWS_BINARY)
    controller = LwsController(
        local_cluster, addon_files[addons.LWS_BINARY], addon_files["lws-webhooks.yaml"]
    )
    try:
        controller.start()
        yield controller
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def metrics_adapter(
    local_cluster: LocalCluster, local_prometheus: LocalPrometheus, addon_files: dict[str, Path]
) -> Iterator[MetricsAdapter]:
    """prometheus-adapter (built from its module) serving external.metrics.k8s.io on loopback."""
    if addons.PROM_ADAPTER_BINARY not in addon_files:
        _unavailable(addons.PROM_ADAPTER_BINARY)
    adapter = MetricsAdapter(local_cluster, addon_files[addons.PROM_ADAPTER_BINARY], local_prometheus.url)
    try:
        adapter.start()
        yield adapter
    finally:
        adapter.stop()


@pytest.fixture
def scenario(
    local_cluster: LocalCluster, local_prometheus: LocalPrometheus, request: pytest.FixtureRequest
) -> Iterator[Scenario]:
    """One test's namespace, node pool, services and emulator on the shared cluster; all stopped after."""
    yield from scenario_fixture(local_cluster, local_prometheus, request)
