"""Recommend a serving configuration: a model, a KPI and a rate in; ranked configurations out.

Role: the pure core of ``python -m advisor recommend`` (which reads the data files, the cluster's
cards and writes the Deployment). For every model-data entry of the model (an accelerator unit:
GPU type, cards per replica = tensor parallelism) and every batch size up to the entry's
``maxBatchSize``, the optimizer's sizing (:func:`optimizer.model.sizing.size_rates`) gives the
largest rate one replica serves within the KPI's targets; replicas, cards and cost follow, and
:func:`optimizer.model.predict.predict_requests` gives TTFT, ITL and throughput at the rate each
replica then carries. A configuration is rejected, with the reason, when a target is missed even
at minimal load, when it needs more cards of its type than there are, or when the type has none.

KPIs (default targets; each can be overridden):

| KPI | TTFT ms | ITL ms | ranked by |
| --- | --- | --- | --- |
| latency | 500 | 25 | predicted mean TTFT, then ITL, then cost |
| throughput | 5000 | 100 | output tokens/s one card serves at the largest feasible rate (most first) |
| cost | 1000 | 50 | cost per hour, then cards |

Example: Llama-3.1-8B at 4 req/s, 512 in / 256 out, TTFT 1000 ms and ITL 40 ms, on the
estimates of ``planner/data``: one H100 at batch 256 (ITL ~ 13 ms) is cheaper than an A100.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from contract.data.catalog import AcceleratorSpec, ModelPerfEntry
from optimizer.model.predict import predict_requests
from optimizer.model.service_time import LengthSpread, service_model
from optimizer.model.sizing import SizingRequest, Targets, size_rates
from optimizer.settings import OptimizerSettings

FIXED_LENGTHS = LengthSpread(in_cv2=0.0, out_cv2=0.0)
"""The default spread of a question: every request of the stated lengths (llm-d-planner's rows too)."""


class Kpi(StrEnum):
    LATENCY = "latency"
    THROUGHPUT = "throughput"
    COST = "cost"


DEFAULT_TARGETS: dict[Kpi, tuple[float, float]] = {
    Kpi.LATENCY: (500.0, 25.0),
    Kpi.THROUGHPUT: (5000.0, 100.0),
    Kpi.COST: (1000.0, 50.0),
}
"""(TTFT ms, ITL ms) per KPI."""


class Rejection(StrEnum):
    TARGET_MISSED = "target-missed"
    NOT_ENOUGH_CARDS = "not-enough-cards"
    NO_CARDS = "no-cards-of-type"
    UNKNOWN_ACCELERATOR = "unknown-accelerator"


@dataclass(frozen=True, slots=True)
class Question:
    model: str
    kpi: Kpi
    rate_rps: float
    in_tokens: float
    out_tokens: float
    ttft_ms: float
    itl_ms: float
    spread: LengthSpread = FIXED_LENGTHS
    budget_tokens: int = 0
    """The token budget per step (``--max-num-batched-tokens``) on every card; 0: vLLM's default
    for each card (:func:`vllm_default_budget_tokens`)."""


@dataclass(frozen=True, slots=True)
class Config:
    accelerator: str
    card_type: str
    cards_per_replica: int
    """Tensor parallelism: the unit's cards times ``accCount``."""
    batch: int
    replicas: int
    max_rate_rps: float
    """Largest rate one replica serves within the targets."""
    ttft_ms: float
    itl_ms: float
    throughput_rps: float
    cost_per_hour: float
    tokens_per_card_s: float
    """Output tokens/s one card serves at the replica's largest feasible rate."""
    limit: str
    budget_tokens: int = 0
    """The token budget per step it was sized with (the Deployment's ``--max-num-batched-tokens``)."""

    @property
    def cards(self) -> int:
        return self.replicas * self.cards_per_replica


@dataclass(frozen=True, slots=True)
class Rejected:
    accelerator: str
    batch: int
    code: Rejection
    reason: str


@dataclass(frozen=True, slots=True)
class Answer:
    question: Question
    ranked: tuple[Config, ...]
    rejected: tuple[Rejected, ...]


def vllm_default_budget_tokens(spec: AcceleratorSpec) -> int:
    """``vllm serve``'s default token budget per step on a card of ``spec``.

    vLLM picks it by the device's memory and name (``EngineArgs.
    _set_default_max_num_seqs_and_batched_tokens_args``, 0.33.0; the emulator's
    :mod:`load_emulator.sched_config` documents the same): 16384 on cards of 160 GB or more, 8192
    on cards of 70 GB or more but A100s, 2048 otherwise. The memory is the unit's over its cards;
    an unknown memory (0) reads as a small card. E.g. H100 (80 GB) 8192, A100-80 2048, MI300X
    (192 GB) 16384, L4 (24 GB) 2048.
    """
    per_card_gb = spec.mem_size_gb / spec.multiplicity
    if per_card_gb >= 160:
        return 16384
    if per_card_gb >= 70 and "A100" not in f"{spec.name} {spec.type}".upper():
        return 8192
    return 2048


def targets_for(kpi: Kpi, ttft_ms: float | None, itl_ms: float | None) -> tuple[float, float]:
    """The KPI's default targets with the given overrides (None: the default; 0: not set)."""
    ttft, itl = DEFAULT_TARGETS[kpi]
    return (ttft if ttft_ms is None else ttft_ms, itl if itl_ms is None else itl_ms)


def batch_sizes(max_batch: int) -> list[int]:
    """Powers of two below ``max_batch``, and ``max_batch``: 1, 2, 4, ..., 128, 200."""
    sizes = [1 << k for k in range(20) if 1 << k < max_batch]
    return [*sizes, max_batch]


def recommend(
    question: Question,
    entries: Sequence[ModelPerfEntry],
    accelerators: Mapping[str, AcceleratorSpec],
    cards: Mapping[str, int] | None,
    settings: OptimizerSettings,
) -> Answer:
    """Ranked configurations and rejections (ValueError when no entry is for the model, naming
    the models the data has). ``cards``: available per card type; None: unlimited."""
    mine = [e for e in entries if e.name == question.model]
    if not mine:
        known = sorted({e.name for e in entries})
        raise ValueError(f"the model data has no entry for model {question.model!r}; it has {known}")
    targets = Targets(itl_ms=question.itl_ms, ttft_ms=question.ttft_ms)
    rejected: list[Rejected] = []
    rows: list[tuple[ModelPerfEntry, AcceleratorSpec, SizingRequest]] = []
    for entry in mine:
        spec = accelerators.get(entry.acc)
        if spec is None:
            reason = f"accelerator {entry.acc!r} is not in accelerator-data"
            rejected.append(Rejected(entry.acc, 0, Rejection.UNKNOWN_ACCELERATOR, reason))
            continue
        if cards is not None and cards.get(spec.type, 0) <= 0:
            reason = f"the cluster has no {spec.type} cards"
            rejected.append(Rejected(entry.acc, 0, Rejection.NO_CARDS, reason))
            continue
        model = service_model(
            entry.perf,
            question.in_tokens,
            question.out_tokens,
            spread=question.spread,
            budget_tokens=question.budget_tokens or vllm_default_budget_tokens(spec),
        )
        kv = float(entry.kv_cache_tokens or 0)
        cap = settings.max_batch_cap or entry.max_batch_size
        for batch in batch_sizes(min(entry.max_batch_size, cap)):
            room = settings.max_queue_factor * batch
            rows.append(
                (entry, spec, SizingRequest(model, batch, room, targets, settings.throughput_rate_cap, kv))
            )
    sized = size_rates([r for _, _, r in rows])
    feasible: list[tuple[ModelPerfEntry, AcceleratorSpec, SizingRequest, float, str]] = []
    for (entry, spec, request), result in zip(rows, sized, strict=True):
        if not result.feasible:
            rejected.append(Rejected(entry.acc, request.batch, Rejection.TARGET_MISSED, result.reason))
            continue
        feasible.append((entry, spec, request, result.max_rate_rps, result.limit))
    replicas = [max(1, math.ceil(question.rate_rps / rate * (1 - 1e-9))) for *_, rate, _ in feasible]
    predictions = predict_requests(
        [request for _, _, request, _, _ in feasible], [question.rate_rps / n for n in replicas]
    )
    configs: list[Config] = []
    for (entry, spec, request, rate, limit), n, p in zip(feasible, replicas, predictions, strict=True):
        per_replica = entry.acc_count * spec.multiplicity
        config = Config(
            accelerator=entry.acc,
            card_type=spec.type,
            cards_per_replica=per_replica,
            batch=request.batch,
            replicas=n,
            max_rate_rps=rate,
            ttft_ms=p.ttft_ms,
            itl_ms=p.itl_ms,
            throughput_rps=p.throughput_rps * n,
            cost_per_hour=n * entry.acc_count * spec.cost,
            tokens_per_card_s=rate * question.out_tokens / per_replica,
            limit=limit,
            budget_tokens=question.budget_tokens or vllm_default_budget_tokens(spec),
        )
        available = None if cards is None else cards.get(spec.type, 0)
        if available is not None and config.cards > available:
            reason = (
                f"{n} replica(s) of {per_replica} {spec.type} card(s) need {config.cards}; "
                f"the cluster has {available}"
            )
            rejected.append(Rejected(entry.acc, request.batch, Rejection.NOT_ENOUGH_CARDS, reason))
            continue
        configs.append(config)
    return Answer(question, tuple(sorted(configs, key=_rank_key(question.kpi))), tuple(rejected))


def _rank_key(kpi: Kpi) -> Callable[[Config], tuple[float, ...]]:
    if kpi == Kpi.LATENCY:
        return lambda c: (round(c.ttft_ms, 1), round(c.itl_ms, 2), c.cost_per_hour, c.batch)
    if kpi == Kpi.THROUGHPUT:
        return lambda c: (-c.tokens_per_card_s, c.cost_per_hour, -c.batch)
    return lambda c: (round(c.cost_per_hour, 6), c.cards, round(c.ttft_ms, 1), c.batch)
