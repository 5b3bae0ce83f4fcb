"""PromQL templates: fixed set, aggregation, selectors with escaped values, window."""

from __future__ import annotations

import pytest

from collector.promql import QUERIES, build_queries, escape_label_value, regex_alternatives, series_selector


def test_every_query_aggregates_by_namespace_and_deployment() -> None:
    queries = build_queries((), 120, "deployment")
    assert set(queries) == {q.name for q in QUERIES}
    assert len(queries) == 13
    for text in queries.values():
        assert text.split(" (", 1)[0].endswith("by") and "by (namespace, deployment)" in text
        assert "{sel}" not in text and "{w}" not in text


def test_pod_grouping_and_window() -> None:
    text = build_queries(("llm",), 90, "pod")["completions"]
    assert text == (
        "sum by (namespace, pod) (max by (namespace, pod, instance, engine, model_name, finished_reason) "
        '(rate(vllm:request_success_total{namespace="llm"}[90s])))'
    )
    count = build_queries(("llm",), 90, "pod")["reporting_pods"]
    assert count == (
        "count by (namespace, pod) (max by (namespace, pod, instance) "
        '(vllm:num_requests_running{namespace="llm"}) and max by (namespace, pod, instance) '
        '(vllm:num_requests_running{namespace="llm"} offset 90s))'
    )


def test_token_means_have_their_own_window() -> None:
    queries = build_queries((), 120, "deployment", token_window_s=600)
    windowed = {name for name, text in queries.items() if "[600s]" in text}
    # Numerators and their denominator on the same window, nothing else on it.
    assert windowed == {"prompt_tokens", "generation_tokens", "token_completions"}
    assert queries["token_completions"] == queries["completions"].replace("[120s]", "[600s]")
    assert "[120s]" in queries["completions"] and "[120s]" in queries["queue_growth"]
    # Without a token window every range selector uses the rate window.
    assert all("[600s]" not in text for text in build_queries((), 120, "deployment").values())


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("completions", "vllm:request_success_total"),
        ("token_completions", "vllm:request_success_total"),
        ("queue_growth", "deriv(vllm:num_requests_waiting"),
        ("prompt_tokens", "vllm:prompt_tokens_total"),
        ("generation_tokens", "vllm:generation_tokens_total"),
        ("ttft_sum", "vllm:time_to_first_token_seconds_sum"),
        ("itl_count", "vllm:inter_token_latency_seconds_count"),
        ("itl_sum", "or rate(vllm:time_per_output_token_seconds_sum"),
        ("reporting_pods", "count by (namespace, deployment) (max by (namespace, deployment, pod, instance)"),
        ("last_sample", "timestamp(vllm:num_requests_running"),
    ],
    ids=str,
)
def test_templates_name_vllm_metrics(name: str, metric: str) -> None:
    assert metric in build_queries((), 60, "deployment")[name]


@pytest.mark.parametrize(
    ("namespaces", "expected"),
    [
        ((), ""),
        (("a",), '{namespace="a"}'),
        (("a", "b-c"), '{namespace=~"a|b-c"}'),
    ],
    ids=["all", "one", "several"],
)
def test_series_selector(namespaces: tuple[str, ...], expected: str) -> None:
    assert series_selector(namespaces) == expected


def test_values_are_escaped() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert regex_alternatives(("a.b", "c|d")) == "a\\.b|c\\|d"
    assert series_selector(('x"}) or vector(1) #', "y")).startswith('{namespace=~"x\\"\\\\}\\\\) or')
