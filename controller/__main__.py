"""``python -m controller``: the cycle loop plus /invoke, /healthz, /readyz and /metrics.

``python -m controller --help-settings`` prints the environment variables and their defaults.
"""

from __future__ import annotations

import structlog

from controller.app import make_app, observed
from controller.calibration_kube import KubeCalibrationStore
from controller.cycle import CycleRunner, HttpStages, Stages, always_leader
from controller.history import HistoryStore
from controller.history_kube import ConfigMapHistoryStore
from controller.leader import LeaderElector, LeaderGuardedStages
from controller.leader_kube import build_elector
from controller.loop import CycleLoop
from controller.metrics import ControllerMetrics
from controller.settings import ENV_PREFIX, ControllerSettings
from plumbing.kube import load_api_client
from plumbing.main import StartupError, run_service
from plumbing.settings import read_secret_file
from plumbing.web import is_loopback, serve


def _elector(settings: ControllerSettings) -> LeaderElector | None:
    """The Lease elector when leader election is on; a StartupError when there is no kube config."""
    if not settings.leader_election:
        return None
    try:
        return build_elector(settings)
    except StartupError as exc:
        raise StartupError(
            f"leader election is on: {exc}; or set INFERNO_CONTROLLER_LEADER_ELECTION=false"
        ) from None
    except Exception as exc:
        raise StartupError(
            f"leader election is on but no kube config could be loaded ({type(exc).__name__}: {exc}); "
            "run in a pod with a ServiceAccount, set KUBECONFIG, or INFERNO_CONTROLLER_LEADER_ELECTION=false"
        ) from None


def _calibration_store(settings: ControllerSettings) -> KubeCalibrationStore | None:
    """The ConfigMap writer when calibration persists; a StartupError when there is no kube config."""
    if settings.calibration == "off" or not settings.calibration_configmap:
        return None
    try:
        api_client = load_api_client()
    except Exception as exc:
        raise StartupError(
            f"calibration persists to ConfigMap {settings.calibration_configmap} but no kube config could "
            f"be loaded ({type(exc).__name__}: {exc}); or set INFERNO_CONTROLLER_CALIBRATION_CONFIGMAP="
        ) from None
    return KubeCalibrationStore(
        api_client, settings.calibration_namespace, settings.calibration_configmap, settings.update_timeout_s
    )


def _history_store(settings: ControllerSettings) -> HistoryStore | None:
    """The ConfigMap that keeps the load history, when one is named; None: in this process only."""
    if not settings.load_history_configmap:
        return None
    try:
        api_client = load_api_client()
    except StartupError as exc:
        raise StartupError(
            f"load_history_configmap is set: {exc}; or leave INFERNO_CONTROLLER_LOAD_HISTORY_CONFIGMAP empty"
        ) from None
    return ConfigMapHistoryStore(api_client, settings.load_history_configmap, settings.lease_namespace)


async def _run(settings: ControllerSettings) -> None:
    log = structlog.get_logger()
    token = read_secret_file(settings.token_file)
    if not token and not is_loopback(settings.host):
        log.warning("no_token", detail="no token file: /invoke accepts only localhost callers")
    stages = HttpStages(settings, token)
    metrics = ControllerMetrics()
    leader = _elector(settings)
    guarded: Stages = stages if leader is None else LeaderGuardedStages(stages, leader.is_leader)
    runner = CycleRunner(
        guarded,
        settings,
        is_leader=leader.is_leader if leader else always_leader,
        calibration_store=_calibration_store(settings),
        history_store=_history_store(settings),
    )
    loop = CycleLoop(observed(runner, metrics, leader), settings.control_period_s)
    app = make_app(loop, metrics, settings, token, on_cleanup=stages.close, leader=leader)
    log.info(
        "starting",
        host=settings.host,
        port=settings.port,
        period_s=settings.control_period_s,
        dry_run=settings.dry_run,
        leader_election=f"{leader.identity} on {settings.lease_namespace}/{settings.lease_name}"
        if leader
        else "off",
    )
    await serve(app, settings.host, settings.port)


def main(argv: list[str] | None = None) -> int:
    return run_service("controller", ControllerSettings, ENV_PREFIX, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
