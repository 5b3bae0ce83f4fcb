"""The collector's settings: one frozen model, read from ``INFERNO_*`` environment variables.

Who reads it: :mod:`collector.app` at start-up (``CollectorSettings.from_env()``), then every part
of a cycle gets the same frozen object. The variable of each field is ``INFERNO_COLLECTOR_<FIELD>``
unless the field names another (``json_schema_extra={"env": ...}``), e.g. the Prometheus URL and
the watched namespaces, which other services read too. ``python -m collector --help-settings``
prints the table of variables, defaults and meanings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator
from pydantic.config import JsonDict

from contract.labels import ManagedSelection
from contract.targets import DEPLOYMENT, TargetRef, UnknownTargetKindError, parse_target
from plumbing.settings import ServiceSettings, load_settings, port_field, token_file_field

ENV_PREFIX = "INFERNO_COLLECTOR_"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _env(name: str) -> JsonDict:
    return {"env": name}


class CollectorSettings(ServiceSettings, ManagedSelection):
    port: int = port_field(3301)
    token_file: str = token_file_field("GET /collect")
    namespaces: tuple[str, ...] = Field(
        default=(),
        json_schema_extra=_env("INFERNO_NAMESPACES"),
        description="comma-separated namespaces to watch for managed Deployments; empty: all namespaces",
    )
    targets: tuple[TargetRef, ...] = Field(
        default=(DEPLOYMENT,),
        json_schema_extra=_env("INFERNO_TARGET_KINDS"),
        description="comma-separated kinds of scale target to manage: Deployment, LeaderWorkerSet, "
        "InferenceService, or <plural>.<group>/<version> for any resource with a /scale subresource "
        "(replicas only); an unknown name fails at start-up",
    )
    prometheus_url: str = Field(
        default="",
        json_schema_extra=_env("INFERNO_PROMETHEUS_URL"),
        description="Prometheus base URL (http://prometheus.monitoring:9090); empty: no Prometheus, "
        "the load labels are the load source and are trusted",
    )
    prometheus_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="timeout of one PromQL query, seconds"
    )
    prometheus_concurrency: int = Field(
        default=4, ge=1, le=16, description="PromQL queries in flight at once (a cycle sends 23)"
    )
    rate_window_s: int = Field(
        default=240,
        ge=10,
        le=3600,
        description="window of rate()/deriv(), seconds; keep it at least 4 scrape intervals; a "
        "shorter one sees a rise sooner, but its noise, held by the scale-down window, "
        "costs replicas and rollouts (benchmark 4 in the top README compares windows)",
    )
    token_window_s: int = Field(
        default=600,
        ge=10,
        le=3600,
        description="window of the token-length means (prompt and generation tokens per request), "
        "seconds: request sizes drift slowly, and a short window's noise moves the batch size",
    )
    metrics_grouping: Literal["deployment", "pod"] = Field(
        default="deployment",
        description="deployment: series carry namespace+deployment labels (see README relabeling); "
        "pod: series carry namespace+pod, mapped to Deployments through the pod list",
    )
    check_reporting_pods: bool = Field(
        default=True,
        description="compare the pods that report metrics (query reporting_pods) with the pods "
        "Ready for a whole rate window (a pod list per cycle): fewer reporting holds the server (no "
        "scale-down, GPU-type or batch change) and scales its load up to the Ready pods; false "
        "turns the check off (for a scrape that does not see each pod)",
    )
    staleness_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="a server whose newest vllm:num_requests_running sample is older than this, "
        "seconds, has stale metrics and falls back",
    )
    backlog_drain_s: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="a standing queue of W waiting requests adds W / this to the arrival rate, so "
        "the server is sized to drain it within this many seconds (a queue that stopped growing "
        "adds nothing to the completion rate otherwise); a queue already shrinking by D req/s adds "
        "only max(0, W / this - D); 0 turns it off",
    )
    last_known_max_age_s: float = Field(
        default=600.0,
        ge=0,
        le=86400,
        description="how long a server's last Prometheus load may stand in for missing data, "
        "seconds (as an untrusted estimate); 0 turns the fallback off",
    )
    capacity_source: Literal["configmap", "nodes"] = Field(
        default="configmap",
        description="configmap: capacity-data.json of the dynamic ConfigMap; nodes: derived from "
        "Ready, schedulable Nodes through placement-data.json",
    )
    config_namespace: str = Field(default="inferno", description="namespace of the two ConfigMaps")
    static_configmap: str = Field(
        default="inferno-static-data",
        description="name of the ConfigMap with accelerator, model, class, optimizer and placement data",
    )
    dynamic_configmap: str = Field(
        default="inferno-dynamic-data", description="name of the ConfigMap with capacity-data.json"
    )
    kube_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="timeout of one Kubernetes API call, seconds"
    )
    demand_default_tokens: tuple[float, float] = Field(
        default=(512.0, 256.0),
        description="mean input and output tokens assumed when a server wakes from zero replicas on "
        "its demand query and neither its labels nor its last known load give them",
    )
    collect_timeout_s: float = Field(
        default=30.0, gt=0, le=300, description="deadline of a whole GET /collect, seconds (then 503)"
    )

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("namespaces")
    @classmethod
    def _dns_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _DNS_LABEL.match(name):
                raise ValueError(f"namespace {name!r} is not a valid Kubernetes namespace name")
        return tuple(sorted(set(value)))

    @field_validator("targets", mode="before")
    @classmethod
    def _parse_targets(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            try:
                refs = [parse_target(v) for v in value]
            except UnknownTargetKindError as exc:
                raise ValueError(str(exc)) from None
            return tuple(dict.fromkeys(refs)) or (DEPLOYMENT,)
        return value

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL {value!r} must start with http:// or https://")
        return value

    @property
    def prometheus_enabled(self) -> bool:
        return bool(self.prometheus_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CollectorSettings:
        """Read the environment; a bad value raises ``SettingsError`` naming the variable."""
        return load_settings(cls, prefix=ENV_PREFIX, environ=environ)
