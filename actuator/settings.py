"""Actuator settings: one pydantic model, read from ``INFERNO_ACTUATOR_*`` environment variables.

Every field has a default, a unit where it has one, and says how to turn the feature off. The
mapping from environment variables is :func:`plumbing.settings.load_settings`; run
``python -m actuator --help-settings`` for the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from contract.labels import ManagedSelection
from plumbing.settings import ServiceSettings, load_settings, port_field, token_file_field

ENV_PREFIX = "INFERNO_ACTUATOR_"


class ActuatorSettings(ServiceSettings, ManagedSelection):
    port: int = port_field(3303)
    token_file: str = token_file_field("POST /update")
    dry_run: bool = Field(default=False, description="plan and report only, never patch; false: act")
    container_name: str = Field(
        default="", description="name of the vLLM container in the pod template; empty: the first container"
    )
    node_label_key: str = Field(
        default="nvidia.com/gpu.product",
        description="node label selecting the card type, used when placement-data does not name one",
    )
    gpu_resource: str = Field(
        default="nvidia.com/gpu",
        description="extended resource per card, when placement-data does not name one",
    )
    amd_type_prefixes: list[str] = Field(
        default_factory=lambda: ["MI", "AMD"],
        description="card types starting with one of these (case-insensitive) are AMD: they use "
        "amd_node_label_key and amd_gpu_resource unless placement-data names others; empty: none",
    )
    amd_node_label_key: str = Field(default="amd.com/gpu.product", description="node label key for AMD cards")
    amd_gpu_resource: str = Field(default="amd.com/gpu", description="extended resource for AMD cards")
    manage_node_selector: bool = Field(
        default=True, description="set the card-type node selector; false: leave it"
    )
    manage_gpu_resources: bool = Field(
        default=True, description="set GPU requests/limits per replica (cards_per_replica); false: leave them"
    )
    manage_batch: bool = Field(default=True, description="set the vLLM batch size; false: leave it")
    batch_arg: str = Field(default="--max-num-seqs", description="vLLM flag carrying the batch size")
    batch_env_var: str = Field(
        default="", description="set the batch size in this env var instead of the flag; empty: use the flag"
    )
    actuation_mode: Literal["patch", "hpa"] = Field(
        default="patch",
        description="patch: the actuator writes replicas; hpa: one writer for replicas, an HPA or "
        "a KEDA ScaledObject reading inferno_desired_replicas (the controller's /metrics): the "
        "actuator never writes them",
        json_schema_extra={"env": "INFERNO_ACTUATION_MODE"},
    )
    one_writer_template_changes: Literal["patch", "advisory"] = Field(
        default="patch",
        description="in hpa mode, GPU type and batch changes: patch them, or only report them in the "
        "decision (advisory); ignored in patch mode",
        json_schema_extra={"env": "INFERNO_ACTUATION_TEMPLATE_CHANGES"},
    )
    allow_scale_to_zero: bool = Field(
        default=False, description="allow 0 replicas for servers whose min_replicas is 0; false: at least 1"
    )
    max_scale_down_replicas: int = Field(
        default=0, ge=0, description="most replicas removed per server per cycle; 0: no limit"
    )
    max_scale_down_percent: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="most replicas removed per cycle, percent of current; 0: no limit",
    )
    max_concurrent_patches: int = Field(
        default=16,
        ge=1,
        le=256,
        description="patches in flight at once (with event_concurrency, it sizes the API client's "
        "threads and connections)",
    )
    event_queue_size: int = Field(
        default=4096,
        ge=0,
        le=1_000_000,
        description="Events waiting to be posted after the answer (off the cycle's critical path); "
        "when full, new ones are dropped and counted; 0: post each Event inside the cycle",
    )
    event_concurrency: int = Field(
        default=4, ge=1, le=64, description="Events posted at once by the background workers"
    )
    event_flush_timeout_s: float = Field(
        default=5.0,
        ge=0,
        description="on SIGTERM, seconds spent posting the queued Events before exiting; the rest "
        "are counted as lost; 0: do not wait",
    )
    conflict_rechecks: int = Field(
        default=2,
        ge=0,
        le=10,
        description="on a 409, re-read the Deployment (up to this many times) and send the same "
        "patch at its new resourceVersion when only what no plan reads moved (status, "
        "annotations); a change to its spec or labels stays a conflict; 0: every 409 waits for "
        "the next cycle",
    )
    kube_timeout_s: float = Field(default=10.0, gt=0, description="timeout of each API-server call, seconds")
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="largest /update body, bytes")
    event_component: str = Field(default="inferno-actuator", description="source of recorded Events")
    hold_event_repeat_s: float = Field(
        default=600.0,
        ge=0,
        description="a held server's Warning Event (InfernoMetricsIncomplete) is posted when the hold "
        "starts or its reason changes, then again every this many seconds while it lasts; 0: every cycle",
    )


MOVED_TO_CONTROLLER = {
    "INFERNO_ACTUATOR_SCALE_DOWN_WINDOW_S": "INFERNO_CONTROLLER_SCALE_DOWN_WINDOW_S",
    "INFERNO_ACTUATOR_SCALE_DOWN_WINDOW_BY_CLASS_S": "INFERNO_CONTROLLER_SCALE_DOWN_WINDOW_BY_CLASS_S",
}
"""Variables the controller reads (it keeps the scale-down window): set on the actuator, they
would do nothing, so start-up refuses them with the name to use."""


def misplaced_variables(environ: Mapping[str, str]) -> list[str]:
    """The controller's variables set here, each with the name to set on the controller instead."""
    return [
        f"{old} (set {new} on the controller)" for old, new in MOVED_TO_CONTROLLER.items() if old in environ
    ]


def load_actuator_settings() -> ActuatorSettings:
    return load_settings(ActuatorSettings, ENV_PREFIX)
