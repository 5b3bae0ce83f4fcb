"""The data ConfigMaps -> validated documents, with errors naming ConfigMap, key, entry and field.

Called by :mod:`collector.core` every cycle with the ``data`` of the two ConfigMaps:

- static (``inferno-static-data``): ``accelerator-data.json`` and ``model-data.json`` (required),
  ``serviceclass-data.json``, ``optimizer-data.json`` (optional, inferno defaults), and
  ``placement-data.json`` = ``{"placement": [Placement...]}`` (required with node-derived capacity).
- dynamic (``inferno-dynamic-data``): ``capacity-data.json`` (required with ``capacity_source=
  configmap``; not read otherwise) and ``calibration-data.json`` (optional: what online
  calibration learned, :class:`contract.calibration.CalibrationData`, written by the controller;
  a broken one is an error in the result and is ignored, never a failed collect).

Anything wrong raises :class:`ConfigDataError`; the collect then fails as a whole and the controller
skips acting, e.g.::

    ConfigMap inferno/inferno-static-data key model-data.json: models[3] (name='granite_13b',
    acc='A100'): perfParms.alpha: Input should be greater than or equal to 0 (got -1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from collector.settings import CollectorSettings
from contract.calibration import CalibrationData
from contract.collect import Placement
from contract.data.loader import DataError, format_validation_error, load_system, parse_json
from contract.data.system import SystemData

STATIC_KEYS = ("accelerator-data.json", "model-data.json", "serviceclass-data.json", "optimizer-data.json")
REQUIRED_STATIC_KEYS = ("accelerator-data.json", "model-data.json")
PLACEMENT_KEY = "placement-data.json"
CAPACITY_KEY = "capacity-data.json"
CALIBRATION_KEY = "calibration-data.json"


class ConfigDataError(Exception):
    """A data ConfigMap is missing or broken; the message says which, where and why."""


class PlacementData(BaseModel):
    placement: list[Placement]


@dataclass(frozen=True)
class StaticData:
    """Parsed documents keyed by inferno file name, their validated form, and the placement."""

    documents: dict[str, Any]
    system: SystemData
    placement: list[Placement]
    calibration: CalibrationData | None = None
    calibration_error: str = ""


def _where(settings: CollectorSettings, name: str) -> str:
    return f"ConfigMap {settings.config_namespace}/{name}"


def _parse(data: dict[str, str], key: str, where: str) -> Any:
    try:
        return parse_json(data[key], f"{where} key {key}")
    except DataError as exc:
        raise ConfigDataError(str(exc)) from None


def parse_static(
    static_cm: dict[str, str] | None, dynamic_cm: dict[str, str] | None, settings: CollectorSettings
) -> StaticData:
    """Validate the ConfigMaps' JSON (without servers); raises :class:`ConfigDataError`."""
    static_where = _where(settings, settings.static_configmap)
    if static_cm is None:
        raise ConfigDataError(f"{static_where} not found")
    documents: dict[str, Any] = {}
    for key in STATIC_KEYS:
        if key in static_cm:
            documents[key] = _parse(static_cm, key, static_where)
        elif key in REQUIRED_STATIC_KEYS:
            raise ConfigDataError(f"{static_where}: key {key} is missing")
    if settings.capacity_source == "configmap":
        dynamic_where = _where(settings, settings.dynamic_configmap)
        if dynamic_cm is None:
            raise ConfigDataError(f"{dynamic_where} not found (needed with capacity_source=configmap)")
        if CAPACITY_KEY not in dynamic_cm:
            raise ConfigDataError(f"{dynamic_where}: key {CAPACITY_KEY} is missing")
        documents[CAPACITY_KEY] = _parse(dynamic_cm, CAPACITY_KEY, dynamic_where)
    # With capacity from Nodes the card counts come later; a placeholder lets the catalog validate
    # now (the limited-mode rule rejects an empty capacity). The real counts are validated then.
    placeholder = {CAPACITY_KEY: {"count": [{"type": "placeholder", "count": 1}]}}
    system = validate_documents({**placeholder, **documents}, settings)
    placement = _placement(static_cm, static_where, required=settings.capacity_source == "nodes")
    calibration, error = _calibration(dynamic_cm, _where(settings, settings.dynamic_configmap))
    return StaticData(documents, system, placement, calibration, error)


def _calibration(dynamic_cm: dict[str, str] | None, where: str) -> tuple[CalibrationData | None, str]:
    """The learned performance, or None and why not (an absent key is no error)."""
    if dynamic_cm is None or CALIBRATION_KEY not in dynamic_cm:
        return None, ""
    try:
        document = _parse(dynamic_cm, CALIBRATION_KEY, where)
        return CalibrationData.model_validate(document), ""
    except ConfigDataError as exc:
        return None, f"{exc}: ignored"
    except ValidationError as exc:
        message = format_validation_error(exc, document, f"{where} key {CALIBRATION_KEY}", by_file=False)
        return None, f"{message}: ignored"


def validate_documents(documents: dict[str, Any], settings: CollectorSettings) -> SystemData:
    """``load_system`` with each error line prefixed by the ConfigMap its file came from."""
    try:
        ns = settings.config_namespace
        both = f"ConfigMaps {ns}/{settings.static_configmap} and {ns}/{settings.dynamic_configmap}"
        return load_system(documents, source=both)
    except DataError as exc:
        lines = []
        for line in str(exc).splitlines():
            file_name = line.split(":", 1)[0]
            if file_name == CAPACITY_KEY:
                lines.append(f"{_where(settings, settings.dynamic_configmap)} key {line}")
            elif file_name in STATIC_KEYS:
                lines.append(f"{_where(settings, settings.static_configmap)} key {line}")
            else:
                lines.append(line)
        raise ConfigDataError("\n".join(lines)) from None


def _placement(static_cm: dict[str, str], where: str, *, required: bool) -> list[Placement]:
    if PLACEMENT_KEY not in static_cm:
        if required:
            raise ConfigDataError(f"{where}: key {PLACEMENT_KEY} is missing (needed for capacity from nodes)")
        return []
    document = _parse(static_cm, PLACEMENT_KEY, where)
    try:
        return PlacementData.model_validate(document).placement
    except ValidationError as exc:
        message = format_validation_error(exc, document, f"{where} key {PLACEMENT_KEY}", by_file=False)
        raise ConfigDataError(message) from None
