"""Label and annotation parsing: a table of good Deployments and a table of bad ones (skipped)."""

from __future__ import annotations

from typing import Any

import pytest

from collector.labels import LabelError, LabelLoad, parse_server_labels

M = "inferno.server."
BASE = {M + "managed": "true", M + "model": "granite_13b"}


def parse(labels: dict[str, str], annotations: dict[str, str] | None = None) -> Any:
    return parse_server_labels("vllm-granite", {**BASE, **labels}, annotations or {})


@pytest.mark.parametrize(
    ("labels", "annotations", "expected"),
    [
        ({}, {}, {"server": "vllm-granite", "service_class": "Free", "accelerator": "", "load": LabelLoad()}),
        ({M + "name": "premium-granite", M + "class": "Premium"}, {}, {"server": "premium-granite"}),
        (
            {M + "allocation.accelerator": "4xA100", M + "allocation.maxbatchsize": "64"},
            {},
            {"accelerator": "4xA100", "current_max_batch": 64},
        ),
        (
            {M + "load.rpm": "60", M + "load.intokens": "128", M + "load.outtokens": "1024"},
            {},
            {"load": LabelLoad(arrival_rpm=60, avg_in_tokens=128, avg_out_tokens=1024)},
        ),
        (
            {M + "load.rpm": "2.5", M + "load.numtokens": "512"},
            {},
            {"load": LabelLoad(arrival_rpm=2.5, avg_out_tokens=512)},
        ),
        (
            {M + "load.numtokens": "512", M + "load.outtokens": "300"},
            {},
            {"load": LabelLoad(avg_out_tokens=300)},
        ),
        (
            {},
            {
                "inferno.server/min-replicas": "1",
                "inferno.server/max-replicas": "8",
                "inferno.server/keep-accelerator": "True",
                "inferno.server/max-batch-size": "32",
            },
            {"min_replicas": 1, "max_replicas": 8, "keep_accelerator": True, "max_batch_cap": 32},
        ),
        ({}, {"inferno.server/max-replicas": "0", "inferno.server/min-replicas": "3"}, {"max_replicas": 0}),
        ({}, {"inferno.server/model": "meta-llama/Llama-3.1-8B"}, {"model": "meta-llama/Llama-3.1-8B"}),
        ({M + "load.rpm": " 60 "}, {}, {"load": LabelLoad(arrival_rpm=60)}),
    ],
    ids=[
        "defaults",
        "name-and-class",
        "allocation",
        "load-in-out",
        "numtokens-is-output",
        "outtokens-wins-over-numtokens",
        "annotations",
        "max-zero-means-unbounded",
        "model-annotation-with-slash",
        "whitespace-trimmed",
    ],
)
def test_good_labels(labels: dict[str, str], annotations: dict[str, str], expected: dict[str, Any]) -> None:
    parsed = parse(labels, annotations)
    for field, value in expected.items():
        assert getattr(parsed, field) == value, field


@pytest.mark.parametrize(
    ("labels", "annotations", "fragment"),
    [
        ({M + "load.rpm": "sixty"}, {}, "inferno.server.load.rpm='sixty'"),
        ({M + "load.rpm": "NaN"}, {}, "'NaN'"),
        ({M + "load.rpm": "inf"}, {}, "'inf'"),
        ({M + "load.rpm": "-5"}, {}, "non-negative"),
        ({M + "load.rpm": "1e3"}, {}, "decimal"),
        ({M + "load.rpm": "1_000"}, {}, "decimal"),
        ({M + "load.rpm": "999999999999"}, {}, "plausible maximum"),
        ({M + "load.intokens": ""}, {}, "intokens"),
        ({M + "allocation.maxbatchsize": "12.5"}, {}, "whole number"),
        ({M + "allocation.accelerator": "A100 80GB"}, {}, "accelerator"),
        ({M + "name": "-bad-"}, {}, "inferno.server.name"),
        ({M + "class": "Pre/mium"}, {}, "inferno.server.class"),
        ({M + "model": ""}, {}, "inferno.server.model"),
        ({}, {"inferno.server/min-replicas": "-1"}, "min-replicas"),
        ({}, {"inferno.server/max-replicas": "two"}, "max-replicas"),
        ({}, {"inferno.server/min-replicas": "4", "inferno.server/max-replicas": "2"}, "below"),
        ({}, {"inferno.server/min-replicas": "1000000"}, "100000"),
        ({}, {"inferno.server/keep-accelerator": "yes"}, "true or false"),
        ({}, {"inferno.server/model": "two words"}, "inferno.server/model"),
    ],
    ids=[
        "rpm-word",
        "rpm-nan",
        "rpm-inf",
        "rpm-negative",
        "rpm-exponent",
        "rpm-underscore",
        "rpm-huge",
        "intokens-empty",
        "maxbatch-fraction",
        "accelerator-space",
        "name-dashes",
        "class-slash",
        "model-empty",
        "min-negative",
        "max-word",
        "max-below-min",
        "min-huge",
        "keep-yes",
        "model-annotation-space",
    ],
)
def test_bad_labels_raise_naming_key_and_value(
    labels: dict[str, str], annotations: dict[str, str], fragment: str
) -> None:
    with pytest.raises(LabelError, match=None) as info:
        parse(labels, annotations)
    assert fragment in str(info.value)


def test_model_is_required() -> None:
    with pytest.raises(LabelError, match=r"inferno\.server\.model is missing"):
        parse_server_labels("d", {M + "managed": "true"}, {})
