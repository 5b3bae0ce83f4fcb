"""Controller settings: one pydantic model, read from ``INFERNO_CONTROLLER_*`` (and the issue's
``INFERNO_CONTROL_PERIOD``) by :func:`plumbing.settings.load_settings`.

``python -m controller --help-settings`` prints the table of variables, defaults and meanings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from controller.forecast import ForecastPolicy
from controller.window import WindowPolicy
from plumbing.settings import ServiceSettings, load_settings, port_field, token_file_field

ENV_PREFIX = "INFERNO_CONTROLLER_"


class ControllerSettings(ServiceSettings):
    host: str = Field(
        default="127.0.0.1",
        description="address to listen on (0.0.0.0: every interface); /metrics and the probes are "
        "open, GET /invoke needs the token or a localhost caller",
    )
    port: int = port_field(3300)
    token_file: str = token_file_field("GET /invoke", ", also sent to the actuator's POST /update")
    collector_host: str = Field(default="127.0.0.1", description="address of the collector container")
    collector_port: int = Field(default=3301, ge=1, le=65535, description="TCP port of the collector")
    optimizer_host: str = Field(default="127.0.0.1", description="address of the optimizer container")
    optimizer_port: int = Field(default=3302, ge=1, le=65535, description="TCP port of the optimizer")
    actuator_host: str = Field(default="127.0.0.1", description="address of the actuator container")
    actuator_port: int = Field(default=3303, ge=1, le=65535, description="TCP port of the actuator")
    control_period_s: float = Field(
        default=60.0,
        ge=0,
        description="seconds between timed cycles; 0: only on demand (GET /invoke)",
        json_schema_extra={"env": "INFERNO_CONTROL_PERIOD"},
    )
    collect_timeout_s: float = Field(default=30.0, gt=0, description="GET /collect timeout, seconds")
    optimize_timeout_s: float = Field(default=60.0, gt=0, description="POST /optimize timeout, seconds")
    update_timeout_s: float = Field(default=60.0, gt=0, description="POST /update timeout, seconds")
    dry_run: bool = Field(default=False, description="ask the actuator to only report; false: act")
    invoke_rate_per_s: float = Field(
        default=1.0, ge=0, description="GET /invoke token-bucket refill, calls per second; 0: no limit"
    )
    invoke_burst: int = Field(
        default=5, ge=1, description="GET /invoke token-bucket size, calls (the burst allowed at once)"
    )
    invoke_wait_s: float = Field(
        default=300.0, gt=0, description="longest an /invoke caller waits for its cycle, seconds (then 504)"
    )
    shutdown_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="on SIGTERM, how long a running cycle may run on before it is cancelled, seconds; "
        "0: cancel it at once",
    )
    scale_down_window_s: float = Field(
        default=300.0,
        ge=0,
        description="scale-down stabilisation window, seconds: a server keeps the highest "
        "count it needed within it (the optimizer holds those replicas on spare cards); 0: off",
    )
    scale_down_window_by_class_s: dict[str, float] = Field(
        default_factory=dict,
        description="scale-down window of the named service classes, seconds, as Class=seconds "
        "pairs separated by commas (e.g. Free=0 for a best-effort class); other classes use "
        "scale_down_window_s; empty: none",
    )
    # --- online calibration (controller/calibrate.py, the calibration package) --------------------
    calibration: Literal["off", "observe", "apply"] = Field(
        default="observe",
        description="online calibration of the performance data from vLLM's metrics: off; observe "
        "(learn and report in /invoke, size with the static data); apply (size with the learned "
        "values once confident)",
    )
    calibration_min_confidence: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="apply: the learned values replace the static data from this confidence on "
        "(0-1: one minus the factors' relative standard error over 10%)",
    )
    calibration_max_step_ratio: float = Field(
        default=1.5, ge=0, description="a learned factor moves at most this many times per cycle; 0: no bound"
    )
    calibration_max_total_ratio: float = Field(
        default=4.0,
        ge=0,
        description="a learned factor stays within this many times of the static data; 0: no bound",
    )
    calibration_min_requests: float = Field(
        default=50.0, ge=0, description="fewest completions a rate window needs to be evidence"
    )
    calibration_configmap: str = Field(
        default="",
        description="ConfigMap whose calibration-data.json keeps what calibration learned (the "
        "collector's dynamic one, inferno-dynamic-data, in the manifests; needs configmaps patch); "
        "empty: kept in memory only",
    )
    calibration_namespace: str = Field(
        default="inferno",
        min_length=1,
        description="namespace of that ConfigMap (the collector's config namespace)",
    )
    # --- forecast (classes with forecastQuantile > 0); see controller/lookahead.py -------------
    load_history_configmap: str = Field(
        default="",
        description="ConfigMap (in lease_namespace) whose load-history.json keeps the load history the "
        "forecast reads, so it survives a restart and a leader change; empty: kept in this process only",
    )
    forecast_default_startup_s: float = Field(
        default=120.0,
        ge=0,
        description="start-up time of a new pod, seconds, when model-data has no startupS for the "
        "pair and none was measured; the forecast looks this + one control period ahead",
    )
    forecast_min_history_s: float = Field(
        default=600.0,
        gt=0,
        description="history a forecast needs, seconds; until then the class is sized on the measured "
        "load and its servers are held (no scale-down)",
    )
    # --- leader election (two replicas, only the leader acts); see controller/leader.py -----------
    leader_election: bool = Field(
        default=False,
        description="hold a coordination.k8s.io Lease and act only while leader (the manifests run two "
        "replicas with it on); false: this process always acts, so run exactly one",
    )
    lease_name: str = Field(default="inferno-autoscaler", min_length=1, description="the Lease's name")
    lease_namespace: str = Field(
        default="inferno", min_length=1, description="the Lease's namespace (the pod's own, in the manifests)"
    )
    pod_name: str = Field(
        default="",
        description="holder identity in the Lease (the pod name, downward API); empty: host name-pid",
    )
    lease_duration_s: float = Field(
        default=15.0, gt=0, description="a Lease not renewed for this long may be taken over, seconds"
    )
    renew_deadline_s: float = Field(
        default=10.0,
        gt=0,
        description="the leader stops acting when it could not renew for this long (< lease duration), "
        "seconds",
    )
    retry_period_s: float = Field(
        default=2.0, gt=0, description="between Lease reads/renewals (< renew deadline), seconds"
    )

    @field_validator("scale_down_window_by_class_s", mode="before")
    @classmethod
    def _class_windows(cls, value: Any) -> Any:
        """``Free=0,Bronze=120`` (the environment's form) as a mapping; a mapping passes as is."""
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            name, sep, seconds = part.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"{part!r} is not Class=seconds")
            pairs[name.strip()] = seconds.strip()
        return pairs

    @field_validator("scale_down_window_by_class_s")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(name for name, seconds in value.items() if not seconds >= 0)
        if negative:
            raise ValueError(f"a window is seconds >= 0 (not for {', '.join(negative)})")
        return value

    def forecast_policy(self) -> ForecastPolicy:
        """How :mod:`controller.forecast` computes and :mod:`controller.history` keeps the history."""
        return ForecastPolicy(min_history_s=self.forecast_min_history_s)

    def window_policy(self) -> WindowPolicy:
        """The scale-down window lengths, as :mod:`controller.window` takes them."""
        return WindowPolicy(self.scale_down_window_s, dict(self.scale_down_window_by_class_s))

    @model_validator(mode="after")
    def _lease_timings_ordered(self) -> ControllerSettings:
        if not self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError(
                "need retry_period_s < renew_deadline_s < lease_duration_s (a leader must step down "
                f"before its Lease can expire for others); got {self.retry_period_s:g} / "
                f"{self.renew_deadline_s:g} / {self.lease_duration_s:g}"
            )
        return self

    def url(self, service: str) -> str:
        host = str(getattr(self, f"{service}_host"))
        port = int(getattr(self, f"{service}_port"))
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    @property
    def stuck_after_s(self) -> float:
        """A cycle running longer than this means the loop is stuck: /healthz fails."""
        return self.collect_timeout_s + self.optimize_timeout_s + self.update_timeout_s + 60.0


def load_controller_settings() -> ControllerSettings:
    return load_settings(ControllerSettings, ENV_PREFIX)
