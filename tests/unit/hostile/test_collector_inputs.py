"""Hostile Deployment metadata and metric values through the collector (hypothesis).

- Labels and annotations: ``parse_server_labels`` returns range-checked values or raises a
  ``LabelError`` naming the key; through a whole collection a bad Deployment is *skipped with a
  reason*, never an exception, never in the optimizer's input.
- Metric values (NaN, +-Inf, negative, 1e308, 5e-324, garbage strings, several series per pod):
  the collection never fails; every number it hands on is finite; a server whose load metrics are
  unusable is untrusted with a note saying why, and the actuator then skips it, so it is never
  scaled (down or otherwise) on bad data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from actuator.plan import plan_updates
from collector import labels as lbl
from collector.core import Ports, collect
from collector.labels import LabelError, parse_server_labels
from collector.ports import DeploymentInfo
from collector.settings import CollectorSettings
from contract.data.loader import validate_system
from contract.update import ActionKind
from tests.unit.actuator import fakes as actuator_fakes
from tests.unit.collector.fakes import NOW_S, NS, FakeKube, FakeMetrics, deployment, healthy_answers, sample
from tests.unit.hostile.profile import HOSTILE, count

LABEL_KEYS = [lbl.NAME, lbl.MODEL, lbl.CLASS, lbl.ACCELERATOR, lbl.MAX_BATCH, lbl.LOAD_RPM,
              lbl.LOAD_NUM_TOKENS, lbl.LOAD_IN_TOKENS, lbl.LOAD_OUT_TOKENS]  # fmt: skip
ANNOTATION_KEYS = [lbl.MODEL_ANNOTATION, lbl.MIN_REPLICAS, lbl.MAX_REPLICAS, lbl.KEEP_ACCELERATOR,
                   lbl.MAX_BATCH_CAP, lbl.ACCELERATOR_CHANGED_AT]  # fmt: skip
ODD_VALUES = st.sampled_from(
    ["", " ", "NaN", "nan", "Inf", "-Inf", "infinity", "-1", "-0", "+5", "1e308", "1e3", "0x10", "1_000",
     "１２", "٣", "²", "6\n", "6\x00", " 60 ", "60.", ".5", "9" * 40, "1.0000000001", "true", "TRUE", "yes",
     "granite_13b", "A100", "Premium", "x" * 300, "a/b", "-leading", "trailing-", "2026-11-23T11:50:05Z",
     "2026-13-45T99:99:99Z", "😀"]
)  # fmt: skip
VALUES = ODD_VALUES | st.text(max_size=20) | st.integers(-(10**12), 10**12).map(str) | st.floats().map(str)
METADATA = st.dictionaries(st.sampled_from(LABEL_KEYS) | st.text(max_size=12), VALUES, max_size=6)
ANNOTATIONS = st.dictionaries(st.sampled_from(ANNOTATION_KEYS) | st.text(max_size=12), VALUES, max_size=4)


def _all_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


@HOSTILE
@given(labels=METADATA, annotations=ANNOTATIONS)
def test_label_parsing_is_checked_or_names_the_key(
    labels: dict[str, str], annotations: dict[str, str]
) -> None:
    count("collector: labels and annotations")
    base = {lbl.MODEL: "granite_13b", lbl.CLASS: "Premium"}
    try:
        parsed = parse_server_labels("dep", {**base, **labels}, annotations)
    except LabelError as exc:
        message = str(exc)
        assert any(key in message for key in (*labels, *annotations, *LABEL_KEYS, *ANNOTATION_KEYS)), message
        return
    for value in (parsed.load.arrival_rpm, parsed.load.avg_in_tokens, parsed.load.avg_out_tokens):
        assert value is None or (math.isfinite(value) and value >= 0)
    assert parsed.load.arrival_rpm is None or parsed.load.arrival_rpm <= lbl.MAX_RPM
    assert 0 <= parsed.min_replicas <= lbl.MAX_COUNT and 0 <= parsed.max_replicas <= lbl.MAX_COUNT
    assert not parsed.max_replicas or parsed.max_replicas >= parsed.min_replicas
    assert parsed.server.strip() == parsed.server and parsed.model.strip() == parsed.model


def _collect(deployments: list[DeploymentInfo], answers: dict[str, Any], settings: CollectorSettings) -> Any:
    metrics = FakeMetrics(settings, answers) if settings.prometheus_enabled else None
    kube = FakeKube(deployments)
    return asyncio.run(collect(NOW_S, Ports(kube, kube, metrics), settings, {}))


@HOSTILE
@given(labels=METADATA, annotations=ANNOTATIONS)
def test_a_deployment_with_bad_metadata_is_skipped_with_a_reason(
    labels: dict[str, str], annotations: dict[str, str]
) -> None:
    count("collector: metadata through a collection")
    odd = deployment("odd", replicas=3, annotations=annotations)
    odd = dataclasses.replace(odd, labels={**odd.labels, **labels})
    fine = deployment("fine", load__rpm="60", load__intokens="100", load__outtokens="200")
    out = _collect([odd, fine], {}, CollectorSettings())
    result = out.result
    validate_system(result.system)
    assert _all_finite(json.loads(json.dumps(result.model_dump(mode="json"))))
    skipped = {s.deployment: s.reason for s in result.skipped}
    servers = {s.deployment for s in result.servers}
    assert ("odd" in skipped) != ("odd" in servers), (skipped, servers)
    if "odd" in skipped:
        assert skipped["odd"].strip()
        assert (
            all(s["name"] != "odd" for s in result.system.model_dump(mode="json")["servers"]["servers"])
            or "odd" in servers
        )


BAD_NUMBERS = st.sampled_from(
    ["NaN", "+Inf", "-Inf", "-1", "-1e-9", "1e308", "-1e308", "5e-324", "1e999", "garbage", "", "0x1p3"]
)
ALL_QUERIES = ["completions", "queue_growth", "prompt_tokens", "generation_tokens", "running", "waiting",
               "ttft_sum", "ttft_count", "itl_sum", "itl_count", "last_sample"]  # fmt: skip
MUST_UNTRUST = {"completions", "prompt_tokens", "generation_tokens", "last_sample"}
SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090")


def _is_bad(text: str) -> bool:
    """NaN, infinite, negative or not a number at all (what the collector must reject)."""
    try:
        value = float(text)
    except ValueError:
        return True
    return not math.isfinite(value) or value < 0


@HOSTILE
@given(
    bad=st.dictionaries(st.sampled_from(ALL_QUERIES), BAD_NUMBERS, min_size=1, max_size=4),
    series=st.integers(1, 3),
)
def test_bad_metric_values_never_scale_a_server(bad: dict[str, str], series: int) -> None:
    count("collector: metric values")
    answers = healthy_answers([(NS, "granite")])
    for query, value in bad.items():
        # several series for one Deployment (one per pod): merged by sum or max
        answers[query] = [sample(NS, "granite", value, pod=f"p{i}") for i in range(series)]
    out = _collect([deployment("granite", replicas=4)], answers, SETTINGS)
    result = out.result
    assert _all_finite(result.model_dump(mode="json")), result.model_dump(mode="json")
    validate_system(result.system)
    (server,) = result.servers
    # the rate and the token sizes need these; this Deployment has no load labels to fall back on
    needed = {q for q, v in bad.items() if q in MUST_UNTRUST and _is_bad(v)}
    if server.trusted:
        assert server.arrival_rpm is not None and math.isfinite(server.arrival_rpm)
        assert server.arrival_rpm <= lbl.MAX_RPM
    if not server.trusted:
        assert server.notes, "an untrusted server says why"
        solution = actuator_fakes.solution(actuator_fakes.decision(name=server.server, replicas=1))
        (action,) = plan_updates(
            solution, [server], actuator_fakes.PLACEMENT, {}, actuator_fakes.settings(), NOW_S
        )
        assert action.kind is ActionKind.SKIP and "not trusted" in action.reasons[0]
    assert not (needed and server.trusted), (bad, server)
