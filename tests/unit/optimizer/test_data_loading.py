"""The inferno data files: every published generation loads unchanged; bad input names the item."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from contract.data.catalog import SaturationPolicy
from contract.data.loader import DataError, dump_system, load_system, load_system_dir, validate_system
from contract.data.perf import DecodeOnlyPerf, IterationPerf, PrefillDecodePerf
from tests.conftest import REFERENCE_SETS, SAMPLES

if not REFERENCE_SETS and os.environ.get("CI") == "true":
    raise RuntimeError("CI must have ../shared/reference-data beside the clone")

EXPECTED_PERF = {"v0.1.0": DecodeOnlyPerf, "v0.6.0": PrefillDecodePerf, "v0.7.0": IterationPerf}


@pytest.mark.parametrize("directory", REFERENCE_SETS, ids=lambda p: f"{p.parent.name}-{p.name}")
def test_reference_sets_load_unchanged_and_round_trip(directory: Path) -> None:
    system = load_system_dir(directory)
    raw_servers = json.loads((directory / "server-data.json").read_text())["servers"]
    assert [s.name for s in system.servers.servers] == [s["name"] for s in raw_servers]
    perf_kind = EXPECTED_PERF[directory.parent.name]
    assert all(isinstance(m.perf, perf_kind) for m in system.models.models)
    # Every server's (class, model) has targets in every published set.
    classes = system.class_by_name()
    for server in system.servers.servers:
        assert classes[server.service_class].target_for(server.model) is not None, server.name
    assert validate_system(dump_system(system)) == system


@pytest.mark.parametrize(
    "directory", sorted(p for p in SAMPLES.iterdir() if p.is_dir()), ids=lambda p: p.name
)
def test_shipped_samples_load(directory: Path) -> None:
    system = load_system_dir(directory)
    assert system.servers.servers
    assert system.capacity.cards_by_type()


def _minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "accelerators": {"accelerators": [{"name": "A100", "type": "A100", "multiplicity": 1, "cost": 40}]},
        "capacity": {"count": [{"type": "A100", "count": 8}]},
        "models": {
            "models": [
                {
                    "name": "m",
                    "acc": "A100",
                    "accCount": 1,
                    "maxBatchSize": 32,
                    "atTokens": 512,
                    "alpha": 20.58,
                    "beta": 0.41,
                }
            ]
        },
        "serviceClasses": {
            "serviceClasses": [
                {"name": "Premium", "priority": 1, "modelTargets": [{"model": "m", "slo-itl": 40}]}
            ]
        },
        "servers": {
            "servers": [
                {
                    "name": "s",
                    "class": "Premium",
                    "model": "m",
                    "currentAlloc": {"load": {"arrivalRate": 60, "avgOutTokens": 128}},
                }
            ]
        },
    }
    data.update(overrides)
    return data


def test_keys_match_ignoring_case_like_inferno() -> None:
    data = _minimal(optimizer={"optimizer": {"MILPSOLVER": True, "saturationpolicy": "priorityroundrobin"}})
    data["servers"]["servers"][0]["currentAlloc"]["load"] = {
        "ArrivalRate": 30,
        "AvgInTokens": 64,
        "AVGOUTTOKENS": 9,
    }
    system = validate_system({"spec": data})
    spec = system.optimizer.optimizer
    assert spec.milp_solver and spec.solver_name == "milp"
    assert spec.saturation_policy is SaturationPolicy.PRIORITY_ROUND_ROBIN
    load = system.servers.servers[0].load
    assert (load.arrival_rate_rpm, load.in_tokens, load.out_tokens) == (30, 64, 9)


def test_flat_and_nested_class_forms_agree() -> None:
    flat = _minimal(
        serviceClasses={
            "serviceClasses": [
                {"name": "Premium", "model": "m", "priority": 1, "slo-itl": 40, "slo-ttw": 500},
                {"name": "Premium", "model": "n", "priority": 1, "slo-itl": 80},
            ]
        }
    )
    nested = _minimal(
        serviceClasses={
            "serviceClasses": [
                {
                    "name": "Premium",
                    "priority": 1,
                    "modelTargets": [
                        {"model": "m", "slo-itl": 40, "slo-ttw": 500},
                        {"model": "n", "slo-itl": 80},
                    ],
                }
            ]
        }
    )
    assert validate_system(flat).service_classes == validate_system(nested).service_classes


@pytest.mark.parametrize(
    ("priority", "expected"),
    [(1, 1), (100, 100), (0, 100), (101, 100), (None, 100), ("high", 100), (2.5, 100), (math.nan, 100)],
    ids=["highest", "lowest", "zero", "above", "missing", "text", "fraction", "nan"],
)
def test_priority_out_of_range_means_lowest(priority: Any, expected: int) -> None:
    entry: dict[str, Any] = {"name": "Gold", "modelTargets": []}
    if priority is not None:
        entry["priority"] = priority
    system = validate_system(_minimal(serviceClasses={"serviceClasses": [entry]}))
    assert system.service_classes.service_classes[0].priority == expected


def test_server_without_class_is_free() -> None:
    data = _minimal()
    del data["servers"]["servers"][0]["class"]
    assert validate_system(data).servers.servers[0].service_class == "Free"


def test_acc_count_zero_or_negative_means_one() -> None:
    data = _minimal()
    data["models"]["models"][0]["accCount"] = 0
    assert validate_system(data).models.models[0].acc_count == 1


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = data
    keys = path.split("/")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    node[keys[-1]] = value
    return data


BAD_INPUT = [
    (
        "nan-load",
        "servers/servers/0/currentAlloc/load/arrivalRate",
        math.nan,
        ["servers.servers[0] (name='s', model='m').currentAlloc.load.arrivalRate", "finite"],
    ),
    (
        "negative-load",
        "servers/servers/0/currentAlloc/load/arrivalRate",
        -5,
        ["currentAlloc.load.arrivalRate", "greater than or equal to 0", "-5"],
    ),
    ("unknown-model", "servers/servers/0/model", "llama_9000", ["'s'", "unknown model 'llama_9000'"]),
    ("unknown-accelerator", "models/models/0/acc", "H200", ["unknown accelerator 'H200'"]),
    ("empty-capacity", "capacity", {"count": []}, ["capacity is empty in limited mode"]),
    ("no-perf", "models/models/0/beta", None, ["'m' on 'A100' has no complete performance data"]),
    (
        "negative-cost",
        "accelerators/accelerators/0/cost",
        -1,
        ["accelerators.accelerators[0] (name='A100'", "cost"],
    ),
    ("duplicate-server", "servers/servers/1", {"name": "s", "model": "m"}, ["duplicate server 's'"]),
]


@pytest.mark.parametrize(
    ("path", "value", "fragments"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_names_the_item(path: str, value: Any, fragments: list[str]) -> None:
    data = _minimal()
    if path.endswith("/1"):
        data["servers"]["servers"].append(value)
    else:
        _set(data, path, value)
    with pytest.raises(DataError) as info:
        validate_system(data)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_errors_name_the_file_when_loading_files(tmp_path: Path) -> None:
    for name, part in _minimal().items():
        file = {
            "accelerators": "accelerator-data",
            "capacity": "capacity-data",
            "models": "model-data",
            "serviceClasses": "serviceclass-data",
            "servers": "server-data",
        }[name]
        (tmp_path / f"{file}.json").write_text(json.dumps(part))
    (tmp_path / "model-data.json").write_text(
        '{"models": [{"name": "m", "acc": "A100", "maxBatchSize": "x"}]}'
    )
    with pytest.raises(
        DataError, match=r"^model-data.json: models\[0\] \(name='m', acc='A100'\).maxBatchSize"
    ):
        load_system_dir(tmp_path)
    (tmp_path / "model-data.json").write_text('{"models": [')
    with pytest.raises(DataError, match=r"model-data.json: malformed JSON at line 1"):
        load_system_dir(tmp_path)


def test_missing_required_file_is_named() -> None:
    with pytest.raises(DataError, match=r"model-data\.json is missing"):
        load_system({"accelerator-data.json": {"accelerators": []}}, "ConfigMap inferno-static-data")
