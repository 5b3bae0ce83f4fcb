"""The step-cost schema in model data: loading, the iteration schema's exact mapping, KV capacity."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from benchmarks.systems import SAMPLES_LARGE
from contract.data.catalog import ModelData, ModelPerfEntry
from contract.data.loader import dump_system, load_system_dir, validate_system
from contract.data.perf import IterationPerf, StepPerf, as_step_perf
from optimizer.model.service_time import service_model

STEP = {"fixed": 20.0, "perDecode": 0.3, "perPrefillToken": 0.05, "perContextToken": 0.001}


def _entry(**extra: Any) -> ModelPerfEntry:
    return ModelPerfEntry.model_validate({"name": "m", "acc": "A100", "maxBatchSize": 64, **extra})


def test_step_parms_load_as_step_perf_and_win_over_older_schemas() -> None:
    entry = _entry(stepParms=STEP, perfParms={"alpha": 1, "beta": 1, "gamma": 1})
    assert entry.perf == StepPerf(20.0, 0.3, 0.05, 0.001)


@pytest.mark.parametrize(
    ("decodes", "prefill_tokens", "context_tokens"), [(0, 512, 512), (32, 0, 19200), (7, 300, 4000)]
)
def test_iteration_schema_maps_onto_step_cost_exactly(
    decodes: int, prefill_tokens: int, context_tokens: int
) -> None:
    iteration = IterationPerf(alpha_ms=20.58, beta_ms=0.041, gamma_ms=0.00128125)
    direct_ms = 20.58 + 0.041 * (decodes + prefill_tokens) + 0.00128125 * context_tokens
    assert as_step_perf(iteration).step_ms(decodes, prefill_tokens, context_tokens) == pytest.approx(
        direct_ms
    )


def test_a_separate_decode_cost_reaches_the_model() -> None:
    cheap = service_model(StepPerf(20.0, 0.05, 0.05, 0.001), in_tokens=512, out_tokens=256)
    dear = service_model(StepPerf(20.0, 0.30, 0.05, 0.001), in_tokens=512, out_tokens=256)
    assert dear.service_ms(8) > cheap.service_ms(8)
    assert dear.prefill_coef[0] == pytest.approx(
        cheap.prefill_coef[0]
    )  # the prefill step has no decode of its own


def test_kv_capacity_is_the_data_field_only() -> None:
    assert _entry(stepParms=STEP, kvCacheTokens=32_000).kv_capacity_tokens == 32_000
    assert _entry(stepParms=STEP, kvCacheTokens=32_000).kv_capacity_blocks == 2_000
    assert _entry(stepParms=STEP, atTokens=512).kv_capacity_tokens is None  # the profile is a lower bound
    assert _entry(stepParms=STEP).kv_capacity_blocks is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"kvCacheTokens": 8}, "less than one KV block"),
        ({"kvCacheTokens": 1000, "atTokens": 2048}, "cannot hold one request"),
        ({"kvBlockTokens": 0}, "kvBlockTokens must be >= 1"),
        ({"stepParms": {**STEP, "perDecode": -0.1}}, "greater than or equal to 0"),
    ],
)
def test_bad_kv_or_negative_costs_are_rejected_naming_the_entry(extra: dict[str, Any], message: str) -> None:
    body = {"models": [{"name": "granite", "acc": "L4", "maxBatchSize": 8, "stepParms": STEP, **extra}]}
    with pytest.raises(ValidationError) as caught:
        ModelData.model_validate(body)
    text = str(caught.value)
    assert message in text
    assert "granite" in text or "models.0" in text


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ("servers", ("servers", 0, "maxBatchSize")),
        ("servers", ("servers", 0, "currentAlloc", "maxBatch")),
        ("models", ("models", 0, "maxBatchSize")),
    ],
)
def test_an_absurd_batch_is_rejected_before_it_reaches_the_queue(section: str, path: tuple[Any, ...]) -> None:
    """A batch of 3.4e9 (seen from a mutated file) would allocate a 25 GiB state vector."""
    data = dump_system(load_system_dir(SAMPLES_LARGE))
    node: Any = data[section]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 3_391_382_119
    with pytest.raises(ValueError, match="less than or equal to 65536"):
        validate_system(data, "mutated")
