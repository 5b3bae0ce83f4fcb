"""ConfigMap problems fail the collect with a message naming ConfigMap, key, entry and field."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from collector.settings import CollectorSettings
from collector.static_data import ConfigDataError, parse_static
from tests.unit.collector.fakes import dynamic_cm, static_cm

SETTINGS = CollectorSettings()
STATIC = "ConfigMap inferno/inferno-static-data"
DYNAMIC = "ConfigMap inferno/inferno-dynamic-data"


def _edit(key: str, change: Callable[[dict], None]) -> dict[str, str]:  # type: ignore[type-arg]
    data = static_cm()
    doc = json.loads(data[key])
    change(doc)
    data[key] = json.dumps(doc)
    return data


def test_samples_parse() -> None:
    static = parse_static(static_cm(), dynamic_cm(A100=8), SETTINGS)
    assert static.system.capacity.cards_by_type() == {"A100": 8}
    assert {p.type for p in static.placement} == {"A100", "AIU2", "G2", "L4"}
    assert "placement-data.json" not in static.documents


@pytest.mark.parametrize(
    ("static", "dynamic", "expected"),
    [
        (None, dynamic_cm(), f"{STATIC} not found"),
        (
            {k: v for k, v in static_cm().items() if k != "model-data.json"},
            dynamic_cm(),
            f"{STATIC}: key model-data.json is missing",
        ),
        (static_cm(), None, f"{DYNAMIC} not found"),
        (static_cm(), {}, f"{DYNAMIC}: key capacity-data.json is missing"),
        (
            {**static_cm(), "accelerator-data.json": "{oops"},
            dynamic_cm(),
            f"{STATIC} key accelerator-data.json: malformed JSON at line 1 column 2",
        ),
        (
            _edit("model-data.json", lambda d: d["models"][3]["decodeParms"].update(alpha=-1)),
            dynamic_cm(),
            f"{STATIC} key model-data.json: models[3] (name='granite_13b', acc='G2').decodeParms.alpha: "
            "Input should be greater than or equal to 0 (got -1)",
        ),
        (
            _edit("accelerator-data.json", lambda d: d["accelerators"][0].pop("cost")),
            dynamic_cm(),
            f"{STATIC} key accelerator-data.json: accelerators[0] (name='L4', type='L4')."
            "cost: Field required",
        ),
        (
            static_cm(),
            {"capacity-data.json": '{"count": [{"type": "A100", "count": -2}]}'},
            f"{DYNAMIC} key capacity-data.json: count[0] (type='A100').count",
        ),
        (
            _edit("placement-data.json", lambda d: d["placement"][1].pop("nodeLabelValue")),
            dynamic_cm(),
            f"{STATIC} key placement-data.json: placement[1] (type='AIU2').nodeLabelValue: Field required",
        ),
        ({**static_cm(), "placement-data.json": "[]"}, dynamic_cm(), f"{STATIC} key placement-data.json"),
        (
            _edit("model-data.json", lambda d: d["models"][0].update(acc="H100")),
            dynamic_cm(),
            "unknown accelerator 'H100'",
        ),
    ],
    ids=[
        "static-missing",
        "required-key-missing",
        "dynamic-missing",
        "capacity-key-missing",
        "malformed-json",
        "negative-field",
        "missing-field",
        "negative-capacity",
        "placement-missing-field",
        "placement-not-object",
        "dangling-reference",
    ],
)
def test_config_map_errors_are_precise(
    static: dict[str, str] | None, dynamic: dict[str, str] | None, expected: str
) -> None:
    with pytest.raises(ConfigDataError) as info:
        parse_static(static, dynamic, SETTINGS)
    assert expected in str(info.value)


def test_node_capacity_needs_placement_but_not_the_dynamic_map() -> None:
    nodes = CollectorSettings(capacity_source="nodes")
    assert parse_static(static_cm(), None, nodes).placement
    without = {k: v for k, v in static_cm().items() if k != "placement-data.json"}
    with pytest.raises(ConfigDataError, match=r"placement-data\.json is missing"):
        parse_static(without, None, nodes)
    assert parse_static(without, dynamic_cm(), SETTINGS).placement == []


def test_optional_keys_take_defaults_and_unknown_keys_are_ignored() -> None:
    minimal = {k: static_cm()[k] for k in ("accelerator-data.json", "model-data.json")} | {"README": "hello"}
    static = parse_static(minimal, dynamic_cm(), SETTINGS)
    assert static.system.service_classes.service_classes == []
