"""The calibration window of a Deployment (collector/measured.py) and calibration-data.json read back."""

from __future__ import annotations

import json

import pytest

from collector.measured import measured_window
from collector.metrics import MetricsSnapshot, Reading
from collector.settings import CollectorSettings
from collector.static_data import parse_static
from tests.conftest import SAMPLES

KEY = ("llm", "granite")
VALUES = {
    "completions": 1.5,
    "finished_prompt_tokens": 768.0,
    "finished_output_tokens": 384.0,
    "finished_requests": 1.5,
    "ttft_sum": 0.18,
    "ttft_count": 1.5,
    "itl_sum": 0.062,
    "itl_count": 2.0,
    "running_avg": 28.4,
    "running_var": 6.0,
    "preemptions": 0.0,
    "counter_resets": 0.0,
    "last_sample": 995.0,
    "reporting_pods": 2.0,
    "window_pods": 2.0,
}


def snapshot(values: dict[str, float | None], failed: tuple[str, ...] = ()) -> MetricsSnapshot:
    readings = {name: {KEY: Reading(v, 1000.0, "" if v is not None else "NaN")} for name, v in values.items()}
    return MetricsSnapshot(readings, dict.fromkeys(failed, "boom"))


def test_a_window_from_the_readings() -> None:
    w = measured_window(snapshot(dict(VALUES)), KEY, 240.0)
    assert w is not None
    assert (w.in_tokens, w.out_tokens, w.reporting_pods, w.last_sample_s) == (512.0, 256.0, 2, 995.0)
    assert w.itl_ms == pytest.approx(31.0)
    assert w.ttft_ms == pytest.approx(120.0)
    assert w.running_per_pod == pytest.approx(14.2)
    assert w.running_var_per_pod == pytest.approx(3.0)


@pytest.mark.parametrize("name", ["completions", "itl_sum", "running_avg", "reporting_pods", "last_sample"])
def test_no_window_when_a_needed_quantity_is_rejected_or_missing(name: str) -> None:
    assert measured_window(snapshot({**VALUES, name: None}), KEY, 240.0) is None  # NaN, negative: rejected
    absent = {k: v for k, v in VALUES.items() if k != name}
    assert measured_window(snapshot(absent), KEY, 240.0) is None


def test_absent_counters_read_zero_but_a_failed_query_gives_no_window() -> None:
    absent = {k: v for k, v in VALUES.items() if k not in ("preemptions", "counter_resets", "running_var")}
    w = measured_window(snapshot(absent), KEY, 240.0)
    assert w is not None and (w.preemptions, w.counter_resets, w.running_var_per_pod) == (0.0, 0.0, 0.0)
    assert measured_window(snapshot(absent, failed=("preemptions",)), KEY, 240.0) is None
    assert measured_window(snapshot({**VALUES, "counter_resets": None}), KEY, 240.0) is None


def test_no_window_without_prometheus_or_observations() -> None:
    assert measured_window(None, KEY, 240.0) is None
    assert measured_window(snapshot({**VALUES, "itl_count": 0.0}), KEY, 240.0) is None


def _config_maps() -> tuple[dict[str, str], dict[str, str]]:
    static = {
        name: (SAMPLES / "small" / name).read_text()
        for name in (
            "accelerator-data.json",
            "model-data.json",
            "serviceclass-data.json",
            "optimizer-data.json",
        )
    }
    dynamic = {"capacity-data.json": (SAMPLES / "small" / "capacity-data.json").read_text()}
    return static, dynamic


def test_calibration_data_is_read_back_from_the_dynamic_configmap() -> None:
    static, dynamic = _config_maps()
    entry = {"model": "llama_13b", "acc": "A100", "fixedFactor": 1.9, "workFactor": 0.6, "pinned": True}
    parsed = parse_static(
        static, {**dynamic, "calibration-data.json": json.dumps({"entries": [entry]})}, CollectorSettings()
    )
    assert parsed.calibration is not None and parsed.calibration_error == ""
    [got] = parsed.calibration.entries
    assert (got.model, got.fixed_factor, got.work_factor, got.pinned) == ("llama_13b", 1.9, 0.6, True)
    assert parse_static(static, dynamic, CollectorSettings()).calibration is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("{not json", "calibration-data.json", id="not-json"),
        pytest.param(
            json.dumps({"entries": [{"model": "m", "acc": "A100", "fixedFactor": -1}]}),
            "fixedFactor",
            id="negative",
        ),
        pytest.param(
            '{"entries": [{"model": "m", "acc": "A100", "workFactor": NaN}]}', "workFactor", id="nan"
        ),
    ],
)
def test_a_broken_calibration_data_is_ignored_with_an_error(text: str, says: str) -> None:
    static, dynamic = _config_maps()
    parsed = parse_static(static, {**dynamic, "calibration-data.json": text}, CollectorSettings())
    assert parsed.calibration is None
    assert says in parsed.calibration_error and parsed.calibration_error.endswith("ignored")
    assert any(m.name == "llama_13b" for m in parsed.system.models.models)  # the collect goes on


def test_the_served_model_names_come_from_the_series_labels() -> None:
    from collector.metrics import build_snapshot  # noqa: PLC0415

    def key_of(labels: dict[str, str]) -> tuple[str, str] | None:
        return (labels["namespace"], labels["deployment"]) if "deployment" in labels else None

    answer = [
        {
            "metric": {"namespace": "llm", "deployment": "granite", "model_name": "ibm/granite-13b"},
            "value": [1.0, "2"],
        },
        {
            "metric": {"namespace": "llm", "deployment": "granite", "model_name": "meta/llama-70b"},
            "value": [1.0, "1"],
        },
        {"metric": {"namespace": "llm", "deployment": "other"}, "value": [1.0, "1"]},  # no label: no name
    ]
    parsed = build_snapshot({"served_models": answer}, key_of)  # type: ignore[arg-type]
    assert parsed.labels["served_models"] == {KEY: frozenset({"ibm/granite-13b", "meta/llama-70b"})}
    both = snapshot(dict(VALUES))
    both = MetricsSnapshot(both.readings, both.failed, 0, parsed.labels)
    w = measured_window(both, KEY, 240.0)
    assert w is not None and w.served_models == ["ibm/granite-13b", "meta/llama-70b"]


def _with_cache(values: dict[str, float | None], blocks: set[str], sizes: set[str]) -> MetricsSnapshot:
    base = snapshot(values)
    labels = {"kv_blocks": {KEY: frozenset(blocks)}, "kv_block_size": {KEY: frozenset(sizes)}}
    return MetricsSnapshot(base.readings, base.failed, 0, labels)


def test_the_context_comes_from_the_kv_cache_usage_and_its_size() -> None:
    # Two pods at 0.25 usage each (0.5 summed) of 4,097 blocks of 16 tokens, 14.2 running a pod:
    # 0.25 * 4,096 * 16 = 16,384 tokens a pod, less half a block (7.5 tokens) per running request.
    w = measured_window(_with_cache({**VALUES, "kv_usage_avg": 0.5}, {"4097"}, {"16"}), KEY, 240.0)
    assert w is not None
    assert w.context_tokens_per_pod == pytest.approx(16_384 - 14.2 * 7.5)


@pytest.mark.parametrize(
    ("usage", "blocks", "sizes"),
    [
        (None, {"4097"}, {"16"}),  # usage NaN or negative (rejected as a reading)
        (0.5, set(), {"16"}),  # no vllm:cache_config_info (a vLLM or emulator without it)
        (0.5, {"4097", "2049"}, {"16"}),  # pods of two cache sizes in one Deployment
        (0.5, {"4097"}, {"sixteen"}),  # a label that is not a number
        (0.5, {"inf"}, {"16"}),
        (0.5, {"1"}, {"16"}),  # a pool of only the null block
    ],
)
def test_the_context_is_not_measured_without_a_sound_usage_and_size(
    usage: float | None, blocks: set[str], sizes: set[str]
) -> None:
    w = measured_window(_with_cache({**VALUES, "kv_usage_avg": usage}, blocks, sizes), KEY, 240.0)
    assert w is not None and w.context_tokens_per_pod == 0.0  # the window stands, the lengths stand in
    absent = measured_window(_with_cache(dict(VALUES), {"4097"}, {"16"}), KEY, 240.0)
    assert absent is not None and absent.context_tokens_per_pod == 0.0


def _with_pods(values: dict[str, float | None], pods: dict[str, dict[str, float | None]]) -> MetricsSnapshot:
    """``values`` per Deployment, and per pod ``pods[pod][query]`` for the per-pod queries."""
    base = _with_cache(values, {"4097"}, {"16"})
    per_pod: dict[str, dict[tuple[str, str], dict[str, Reading]]] = {}
    for pod, readings in pods.items():
        for name, v in readings.items():
            per_pod.setdefault(name, {}).setdefault(KEY, {})[pod] = Reading(
                v, 1000.0, "" if v is not None else "NaN"
            )
    return MetricsSnapshot(base.readings, base.failed, 0, base.labels, {}, per_pod)


POD_A = {"pod_completions": 0.75, "pod_itl_sum": 0.031, "pod_itl_count": 1.0, "running_avg": 14.0,
         "running_var": 2.0, "kv_usage_avg": 0.25}  # fmt: skip
POD_B = {**POD_A, "pod_itl_sum": 0.062, "running_avg": 14.4, "running_var": 4.0, "kv_usage_avg": 0.3}


def test_each_reporting_pod_has_its_part_of_the_window() -> None:
    w = measured_window(_with_pods({**VALUES, "kv_usage_avg": 0.55}, {"b": POD_B, "a": POD_A}), KEY, 240.0)
    assert w is not None
    a, b = w.pods
    assert (a.pod, a.completion_rps, a.itl_count_rps, a.running, a.running_var) == ("a", 0.75, 1.0, 14.0, 2.0)
    assert (a.itl_ms, b.itl_ms) == (pytest.approx(31.0), pytest.approx(62.0))
    assert a.context_tokens == pytest.approx(0.25 * 4096 * 16 - 14.0 * 7.5)
    assert b.context_tokens == pytest.approx(0.3 * 4096 * 16 - 14.4 * 7.5)


@pytest.mark.parametrize(
    "pods",
    [
        pytest.param({"a": POD_A}, id="fewer-pods-than-reporting"),
        pytest.param({"a": POD_A, "b": {**POD_B, "pod_itl_sum": None}}, id="a-pod-gap-is-nan"),
        pytest.param(
            {"a": POD_A, "b": {k: v for k, v in POD_B.items() if k != "pod_completions"}}, id="no-rate"
        ),
        pytest.param({"a": POD_A, "b": {**POD_B, "pod_itl_count": 0.0}}, id="no-gap-measured"),
    ],
)
def test_the_pods_are_all_or_nothing(pods: dict[str, dict[str, float | None]]) -> None:
    w = measured_window(_with_pods(dict(VALUES), pods), KEY, 240.0)
    assert w is not None and w.pods == []  # the Deployment's window stands without its pods


def test_an_optional_per_pod_reading_missing_reads_as_unmeasured() -> None:
    bare = {k: v for k, v in POD_A.items() if k not in ("running_var", "kv_usage_avg")}
    w = measured_window(_with_pods(dict(VALUES), {"a": bare, "b": bare}), KEY, 240.0)
    assert w is not None and [(p.running_var, p.context_tokens) for p in w.pods] == [(0.0, 0.0)] * 2
