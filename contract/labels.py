"""The label and annotation vocabulary of a managed Deployment, and the managed-Deployment selector.

The collector reads these keys (:mod:`collector.labels` parses and range-checks the values); the
actuator writes the allocation labels and the accelerator-change annotation back; the emulated
cluster plays the same keys. Labels (``inferno.server.*``) carry what the actuator also writes
back; annotations (``inferno.server/*``) carry bounds and names that are not valid label values
(at most 63 characters of ``[A-Za-z0-9._-]``). The full table is in collector/README.md.

Which Deployments are managed is one setting, :class:`ManagedSelection`, that the collector and
the actuator both read from ``INFERNO_MANAGED_SELECTOR``: one variable, so the Deployments one
service lists are the ones the other may patch.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

MANAGED = "inferno.server.managed"
NAME = "inferno.server.name"
MODEL = "inferno.server.model"
CLASS = "inferno.server.class"
ACCELERATOR = "inferno.server.allocation.accelerator"
MAX_BATCH = "inferno.server.allocation.maxbatchsize"
LOAD_RPM = "inferno.server.load.rpm"
LOAD_NUM_TOKENS = "inferno.server.load.numtokens"
LOAD_IN_TOKENS = "inferno.server.load.intokens"
LOAD_OUT_TOKENS = "inferno.server.load.outtokens"
MODEL_ANNOTATION = "inferno.server/model"
MIN_REPLICAS = "inferno.server/min-replicas"
MAX_REPLICAS = "inferno.server/max-replicas"
KEEP_ACCELERATOR = "inferno.server/keep-accelerator"
MAX_BATCH_CAP = "inferno.server/max-batch-size"
DEMAND_QUERY = "inferno.server/demand-query"
"""PromQL giving the server's demand in requests/s at its front door, read while it has 0 replicas
(:mod:`collector.wake`): what wakes a server scaled to zero."""
ACCELERATOR_CHANGED_AT = "inferno.server/accelerator-changed-at"
"""Written by the actuator when it changes the accelerator: RFC 3339 UTC, ``2026-11-23T11:50:05Z``."""

DEFAULT_CLASS = "Free"
"""The service class of a Deployment without the class label."""

DEFAULT_MANAGED_SELECTOR = f"{MANAGED}=true"
MANAGED_SELECTOR_ENV = "INFERNO_MANAGED_SELECTOR"


def format_timestamp(unix_s: float) -> str:
    """``1700000000.4`` -> ``'2023-11-14T22:13:20Z'`` (whole seconds, UTC): the annotation's form."""
    return datetime.fromtimestamp(int(unix_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ManagedSelection(BaseModel):
    """The settings field both the collector and the actuator inherit: which Deployments are managed."""

    model_config = ConfigDict(frozen=True)

    managed_selector: str = Field(
        default=DEFAULT_MANAGED_SELECTOR,
        min_length=1,
        description="label selector of the managed Deployments (read by the collector and the "
        "actuator alike)",
        json_schema_extra={"env": MANAGED_SELECTOR_ENV},
    )
