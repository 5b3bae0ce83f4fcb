"""Labels and annotations of a managed Deployment -> a typed :class:`ServerLabels`.

Called by :mod:`collector.assemble` once per Deployment per cycle. Every value is checked here;
a bad one raises :class:`LabelError` whose message names the key and the value, and the
Deployment is then skipped (never scaled). References to the static data (model, class,
accelerator) are checked later, against the ConfigMap of the cycle.

Labels (``inferno.server.*``) carry what the actuator also writes back; annotations
(``inferno.server/*``) carry bounds and names that are not valid label values (label values are at
most 63 characters of ``[A-Za-z0-9._-]``, so a model such as ``meta-llama/Llama-3.1-8B`` can only
be named by the ``inferno.server/model`` annotation). The full table is in collector/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contract.labels import (
    ACCELERATOR,
    ACCELERATOR_CHANGED_AT,
    CLASS,
    DEFAULT_CLASS,
    KEEP_ACCELERATOR,
    LOAD_IN_TOKENS,
    LOAD_NUM_TOKENS,
    LOAD_OUT_TOKENS,
    LOAD_RPM,
    MAX_BATCH,
    MAX_BATCH_CAP,
    MAX_REPLICAS,
    MIN_REPLICAS,
    MODEL,
    MODEL_ANNOTATION,
    NAME,
)

# Plausibility caps: a finite value above these is garbage, not a workload.
MAX_RPM = 1e9
MAX_TOKENS = 1e7
MAX_COUNT = 100_000

_DECIMAL = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?$")
_INTEGER = re.compile(r"^[0-9]{1,9}$")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")
_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$")


class LabelError(ValueError):
    """A label or annotation is unusable; the message names it and its value."""


class LabelLoad(BaseModel):
    """Load declared by labels. ``None``: that label is absent."""

    model_config = ConfigDict(frozen=True)

    arrival_rpm: float | None = None
    avg_in_tokens: float | None = None
    avg_out_tokens: float | None = None


class ServerLabels(BaseModel):
    """What one Deployment's labels and annotations say, typed and range-checked."""

    model_config = ConfigDict(frozen=True)

    server: str = Field(min_length=1)
    model: str = Field(min_length=1)
    service_class: str = Field(min_length=1)
    accelerator: str = Field(default="", description="current accelerator unit; '' = none yet")
    current_max_batch: int = Field(default=0, ge=0)
    max_batch_cap: int = Field(default=0, ge=0, description="0: from model data")
    min_replicas: int = Field(default=0, ge=0)
    max_replicas: int = Field(default=0, ge=0, description="0: no limit")
    keep_accelerator: bool = False
    accelerator_changed_at_s: float | None = Field(
        default=None, description="unix time the actuator last changed the accelerator; None: never"
    )
    load: LabelLoad = LabelLoad()


def _name(source: Mapping[str, str], key: str, default: str) -> str:
    value = source.get(key, default).strip()
    if not _NAME.match(value):
        raise LabelError(f"{key}={value!r}: expected a name of letters, digits, '.', '_' or '-'")
    return value


def _decimal(source: Mapping[str, str], key: str, cap: float) -> float | None:
    """A non-negative decimal such as ``60`` or ``2.5``; no signs, exponents, NaN or Inf."""
    raw = source.get(key)
    if raw is None:
        return None
    value = raw.strip()
    if not _DECIMAL.match(value):
        raise LabelError(f"{key}={raw!r}: expected a non-negative decimal number such as 60 or 2.5")
    number = float(value)
    if number > cap:
        raise LabelError(f"{key}={raw!r}: larger than the plausible maximum {cap:g}")
    return number


def _integer(source: Mapping[str, str], key: str, cap: int = MAX_COUNT) -> int | None:
    raw = source.get(key)
    if raw is None:
        return None
    value = raw.strip()
    if not _INTEGER.match(value) or int(value) > cap:
        raise LabelError(f"{key}={raw!r}: expected a whole number from 0 to {cap}")
    return int(value)


def _boolean(source: Mapping[str, str], key: str) -> bool:
    raw = source.get(key)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise LabelError(f"{key}={raw!r}: expected true or false")
    return value == "true"


def _timestamp(source: Mapping[str, str], key: str) -> float | None:
    """An RFC 3339 UTC time (``Z``, optional fraction) as unix seconds; None when absent."""
    raw = source.get(key)
    if raw is None:
        return None
    value = raw.strip()
    try:
        if not _TIMESTAMP.match(value):
            raise ValueError(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise LabelError(f"{key}={raw!r}: expected a UTC time such as 2026-11-23T11:50:05Z") from None


def _model(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    if MODEL_ANNOTATION in annotations:
        value = annotations[MODEL_ANNOTATION].strip()
        if not value or len(value) > 253 or any(c.isspace() for c in value):
            raise LabelError(f"{MODEL_ANNOTATION}={annotations[MODEL_ANNOTATION]!r}: expected a model name")
        return value
    if MODEL not in labels:
        raise LabelError(f"label {MODEL} is missing (or set the annotation {MODEL_ANNOTATION})")
    return _name(labels, MODEL, "")


def parse_server_labels(
    deployment: str, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> ServerLabels:
    """Parse one Deployment's metadata; raises :class:`LabelError` on the first bad value."""
    in_tokens = _decimal(labels, LOAD_IN_TOKENS, MAX_TOKENS)
    out_tokens = _decimal(labels, LOAD_OUT_TOKENS, MAX_TOKENS)
    num_tokens = _decimal(labels, LOAD_NUM_TOKENS, MAX_TOKENS)
    load = LabelLoad(
        arrival_rpm=_decimal(labels, LOAD_RPM, MAX_RPM),
        avg_in_tokens=in_tokens,
        # numtokens is the oldest single "tokens per request" label (inferno's avgLength): output.
        avg_out_tokens=out_tokens if out_tokens is not None else num_tokens,
    )
    min_replicas = _integer(annotations, MIN_REPLICAS) or 0
    max_replicas = _integer(annotations, MAX_REPLICAS) or 0
    if max_replicas and max_replicas < min_replicas:
        raise LabelError(f"{MAX_REPLICAS}={max_replicas} is below {MIN_REPLICAS}={min_replicas}")
    accelerator = labels.get(ACCELERATOR, "").strip()
    return ServerLabels(
        server=_name(labels, NAME, deployment),
        model=_model(labels, annotations),
        service_class=_name(labels, CLASS, DEFAULT_CLASS),
        accelerator=_name(labels, ACCELERATOR, "") if accelerator else "",
        current_max_batch=_integer(labels, MAX_BATCH) or 0,
        max_batch_cap=_integer(annotations, MAX_BATCH_CAP) or 0,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        keep_accelerator=_boolean(annotations, KEEP_ACCELERATOR),
        accelerator_changed_at_s=_timestamp(annotations, ACCELERATOR_CHANGED_AT),
        load=load,
    )
