"""Environment variables onto a pydantic settings model: the one place names are mapped.

Every service declares a frozen pydantic model whose fields have a default and a description
(with the unit and how to turn the feature off), then calls::

    settings = load_settings(ActuatorSettings, prefix="INFERNO_ACTUATOR_")

A field ``dry_run`` is read from ``INFERNO_ACTUATOR_DRY_RUN``. A field may name its variable
explicitly with ``Field(json_schema_extra={"env": "INFERNO_CONTROL_PERIOD"})``; a model that
inherits fields from a model that knows nothing of the environment (the optimizer's core settings)
names their variables in a class attribute ``env_names = {"field": "VARIABLE"}``. Values are the
strings pydantic parses (``"true"``, ``"2.5"``); list fields take comma-separated strings. Invalid
values fail at start-up with a message naming the variable.

:class:`ServiceSettings` is the base of the four services' models: the fields every service has
(``host``, ``port``, ``token_file``, ``log_level``) are declared here once; a service sets its own
default port with :func:`port_field` and names its guarded endpoint with :func:`token_file_field`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import EllipsisType
from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plumbing.logs import register_secret

ModelT = TypeVar("ModelT", bound=BaseModel)


class SettingsError(ValueError):
    """A setting could not be parsed; the message names the environment variable."""


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def port_field(default: int | EllipsisType = ...) -> Any:
    """The ``port`` field of a service that listens on ``default`` unless told otherwise (``...``:
    no default, as in the base model)."""
    return Field(default=default, ge=1, le=65535, description="TCP port to listen on")


def token_file_field(endpoint: str, note: str = "") -> Any:
    """The ``token_file`` field of a service whose ``endpoint`` requires the bearer token;
    ``note`` follows the first clause of the description."""
    return Field(
        default="",
        description=f"file holding the bearer token that {endpoint} requires (a mounted Secret)"
        f"{note}; empty: no token, {endpoint} accepts only callers on localhost",
    )


class ServiceSettings(BaseModel):
    """The settings every service has: where it listens, its bearer token, its log level.

    A service's model inherits these and sets its own default port (controller 3300, collector
    3301, optimizer 3302, actuator 3303) with :func:`port_field`, and names its guarded endpoint
    in ``token_file`` with :func:`token_file_field`.
    """

    model_config = ConfigDict(frozen=True)

    host: str = Field(
        default="127.0.0.1",
        description="address to listen on (0.0.0.0: every interface); the pod's containers share "
        "localhost, and without a token the guarded endpoint answers localhost callers only",
    )
    port: int = port_field()
    token_file: str = token_file_field("the service's guarded endpoint")
    log_level: LogLevel = Field(
        default="INFO", description="lowest level logged: DEBUG, INFO, WARNING or ERROR (any case)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper().strip() if isinstance(value, str) else value


def env_name(model: type[BaseModel], field: str, prefix: str) -> str:
    """The environment variable a field is read from."""
    named = getattr(model, "env_names", None)
    if isinstance(named, Mapping) and isinstance(named.get(field), str):
        return str(named[field])
    extra = model.model_fields[field].json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("env"), str):
        return str(extra["env"])
    return f"{prefix}{field.upper()}"


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) in (list, tuple, frozenset, set):
        return True
    return any(_is_list(arg) for arg in get_args(annotation))


def load_settings(model: type[ModelT], prefix: str, environ: Mapping[str, str] | None = None) -> ModelT:
    """Build ``model`` from the environment (``os.environ`` unless ``environ`` is given)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for field, info in model.model_fields.items():
        name = env_name(model, field, prefix)
        names[field] = name
        raw = env.get(name)
        if raw is None:
            continue
        if _is_list(info.annotation):
            values[field] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values[field] = raw.strip()
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a check across fields: name every variable that was set
                given = ", ".join(f"{names[f]}={v!r}" for f, v in values.items()) or "defaults only"
                problems.append(f"{given}: {err['msg']}")
                continue
            field = str(err["loc"][0])
            problems.append(f"{names.get(field, field)}={values.get(field)!r}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def read_secret_file(path: str | os.PathLike[str] | None) -> str | None:
    """The stripped content of a mounted Secret file; None when unset, missing or empty.

    The value is registered with :func:`plumbing.logs.register_secret`: no log line
    will show it, even inside an upstream's error text.
    """
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    register_secret(text)
    return text or None


def settings_table(model: type[BaseModel], prefix: str) -> str:
    """A Markdown table of variables, defaults and docs, for ``--help-settings`` and the README."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field, info in model.model_fields.items():
        default = info.get_default(call_default_factory=True)
        doc = (info.description or "").replace("|", "/")
        rows.append(f"| `{env_name(model, field, prefix)}` | `{default!r}` | {doc} |")
    return "\n".join(rows)
