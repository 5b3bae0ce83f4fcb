"""PromQL templates: fixed set, aggregation, selectors with escaped values, window."""

from __future__ import annotations

import pytest

from collector.promql import QUERIES, build_queries, escape_label_value, regex_alternatives, series_selector


def test_every_query_aggregates_by_namespace_and_deployment() -> None:
    queries = build_queries((), 120, "deployment")
    assert set(queries) == {q.name for q in QUERIES}
    assert len(queries) == 30
    for q in QUERIES:
        text = queries[q.name]
        extra = ", le" if q.per_bucket else (f", {q.label}" if q.label else "")
        extra = ", pod, instance" if q.per_pod else extra
        assert text.split(" (", 1)[0].endswith("by") and f"by (namespace, deployment{extra})" in text
        assert "{sel}" not in text and "{w}" not in text


def test_length_histograms_keep_their_buckets_apart_and_merge_pod_copies() -> None:
    text = build_queries(("llm",), 90, "deployment", token_window_s=600)["prompt_buckets"]
    assert text == (
        "sum by (namespace, deployment, le) (max by (namespace, deployment, pod, instance, engine, "
        'model_name, finished_reason, le) (rate(vllm:request_prompt_tokens_bucket{namespace="llm"}[600s])))'
    )


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
    assert windowed == {
        "prompt_tokens",
        "generation_tokens",
        "token_completions",
        "prompt_buckets",
        "generation_buckets",
    }
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
        ("prompt_buckets", "rate(vllm:request_prompt_tokens_bucket"),
        ("generation_buckets", "rate(vllm:request_generation_tokens_bucket"),
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


ONE = "namespace, deployment, pod, instance, engine, model_name, finished_reason"


@pytest.mark.parametrize(
    ("name", "merge"),
    [
        ("completions", f"sum by (namespace, deployment) (max by ({ONE}) (rate("),
        ("token_completions", f"sum by (namespace, deployment) (max by ({ONE}) (rate("),
        ("prompt_tokens", f"sum by (namespace, deployment) (max by ({ONE}) (rate("),
        ("generation_tokens", f"sum by (namespace, deployment) (max by ({ONE}) (rate("),
        ("ttft_sum", f"sum by (namespace, deployment) (max by ({ONE}) (rate("),
        ("ttft_count", f"sum by (namespace, deployment) (max by ({ONE}) (rate("),
        ("itl_sum", f"sum by (namespace, deployment) (max by ({ONE}) (rate("),
        ("itl_count", f"sum by (namespace, deployment) (max by ({ONE}) (rate("),
        ("queue_growth", f"sum by (namespace, deployment) (avg by ({ONE}) (deriv("),
        ("running", f"sum by (namespace, deployment) (avg by ({ONE}) (vllm:"),
        ("waiting", f"sum by (namespace, deployment) (avg by ({ONE}) (vllm:"),
        ("last_sample", f"max by (namespace, deployment) (max by ({ONE}) (timestamp("),
        (
            "reporting_pods",
            "count by (namespace, deployment) (max by (namespace, deployment, pod, instance) (",
        ),
    ],
    ids=str,
)
def test_each_pod_counts_once_whatever_copies_of_its_series_there_are(name: str, merge: str) -> None:
    # Copies (two jobs, an HA pair, federation) differ only in labels outside the inner grouping,
    # so they merge before the per-Deployment sum: counters by max, gauges by avg.
    assert build_queries((), 240, "deployment")[name].startswith(merge)


@pytest.mark.parametrize("suffix", ["sum", "count"])
def test_itl_reads_the_new_name_or_else_the_old_one_per_pod(suffix: str) -> None:
    text = build_queries((), 240, "deployment")[f"itl_{suffix}"]
    new, old = f"vllm:inter_token_latency_seconds_{suffix}", f"vllm:time_per_output_token_seconds_{suffix}"
    assert f"rate({new}[240s]) or rate({old}[240s])" in text
