"""``python -m advisor recommend``: ranked configurations, reasons for rejections, the Deployment.

Runs on the shipped estimates (advisor/data: Llama-3.1-8B on A100-80 and H100, TP 1 and 2).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from advisor.__main__ import main
from advisor.recommend import DATA_DIR, cluster_cards, load_data
from collector.labels import parse_server_labels
from collector.ports import NodeInfo, PodInfo
from contract import labels
from contract.data.catalog import AcceleratorSpec
from optimizer.recommend import Kpi, Question, Rejection, recommend, vllm_default_budget_tokens
from optimizer.settings import OptimizerSettings

QUESTION = Question("llama-3.1-8b", Kpi.COST, 4.0, 512.0, 256.0, ttft_ms=1000.0, itl_ms=40.0)


def _answer(question: Question = QUESTION, cards: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    accelerators, models, _ = load_data(DATA_DIR)
    specs = {a.name: a for a in accelerators.accelerators}
    return recommend(question, models.models, specs, cards, OptimizerSettings())


def test_every_ranked_configuration_meets_the_targets_and_cost_ranks_them() -> None:
    answer = _answer()
    assert {c.card_type for c in answer.ranked} == {"A100-80", "H100"}
    assert {c.cards_per_replica for c in answer.ranked} == {1, 2}
    for c in answer.ranked:
        assert c.ttft_ms <= 1000.0 and c.itl_ms <= 40.0
        assert c.throughput_rps == pytest.approx(4.0, rel=1e-6)
        assert c.replicas * c.max_rate_rps >= 4.0
    costs = [c.cost_per_hour for c in answer.ranked]
    assert costs == sorted(costs)


def test_the_latency_kpi_ranks_by_ttft() -> None:
    answer = _answer(Question("llama-3.1-8b", Kpi.LATENCY, 4.0, 512.0, 256.0, ttft_ms=500.0, itl_ms=25.0))
    ttfts = [round(c.ttft_ms, 1) for c in answer.ranked]
    assert ttfts == sorted(ttfts)
    assert answer.ranked[0].card_type == "H100"


def test_too_few_cards_reject_with_the_count() -> None:
    answer = _answer(cards={"A100-80": 1, "H100": 0})
    assert all(c.card_type == "A100-80" and c.cards <= 1 for c in answer.ranked)
    codes = {(r.accelerator, r.code) for r in answer.rejected}
    assert ("H100", Rejection.NO_CARDS) in codes
    short = [r for r in answer.rejected if r.code == Rejection.NOT_ENOUGH_CARDS]
    assert short and all("the cluster has" in r.reason for r in short)


def test_a_target_missed_at_minimal_load_is_explained() -> None:
    answer = _answer(Question("llama-3.1-8b", Kpi.LATENCY, 4.0, 512.0, 256.0, ttft_ms=1000.0, itl_ms=5.0))
    assert not answer.ranked
    assert {r.code for r in answer.rejected} == {Rejection.TARGET_MISSED}
    assert all("ITL" in r.reason and "> target 5 ms" in r.reason for r in answer.rejected)


def test_the_written_deployment_is_managed_and_sized(tmp_path: Path) -> None:
    out = tmp_path / "llama.yaml"
    code = main(
        [
            "recommend", "--model", "llama-3.1-8b", "--kpi", "cost", "--rate", "4", "--ttft-ms", "1000",
            "--itl-ms", "40", "--cards", "A100-80=8,H100=8", "--write", str(out),
            "--served-model", "meta-llama/Llama-3.1-8B-Instruct",
        ]
    )  # fmt: skip
    assert code == 0
    best = _answer(cards={"A100-80": 8, "H100": 8}).ranked[0]
    doc = yaml.safe_load(out.read_text())
    meta, spec = doc["metadata"], doc["spec"]
    parsed = parse_server_labels(meta["name"], meta["labels"], meta["annotations"])
    assert meta["labels"][labels.MANAGED] == "true"
    assert (parsed.model, parsed.accelerator, parsed.current_max_batch) == (
        "llama-3.1-8b",
        best.accelerator,
        best.batch,
    )
    assert parsed.load.arrival_rpm == 240.0
    assert spec["replicas"] == best.replicas
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == str(best.cards_per_replica)
    assert args[args.index("--max-num-seqs") + 1] == str(best.batch)
    assert args[args.index("--model") + 1] == "meta-llama/Llama-3.1-8B-Instruct"
    assert args[args.index("--max-num-batched-tokens") + 1] == str(best.budget_tokens) == "2048"  # an A100
    assert container["resources"]["requests"]["nvidia.com/gpu"] == str(best.cards_per_replica)
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}


@pytest.mark.parametrize(
    ("name", "card", "multiplicity", "mem_gb", "budget"),
    [
        ("A100-80", "A100-80", 1, 80, 2048),  # vLLM keeps A100s at the small default
        ("H100", "H100", 1, 80, 8192),
        ("2xH100", "H100", 2, 160, 8192),  # the unit's memory over its cards
        ("MI300X", "MI300X", 1, 192, 16384),
        ("L4", "L4", 1, 24, 2048),
        ("G2", "G2", 1, 0, 2048),  # memory unknown
    ],
)
def test_vllms_default_token_budget_follows_the_card(
    name: str, card: str, multiplicity: int, mem_gb: float, budget: int
) -> None:
    spec = AcceleratorSpec.model_validate(
        {"name": name, "type": card, "multiplicity": multiplicity, "memSize": mem_gb, "cost": 1.0}
    )
    assert vllm_default_budget_tokens(spec) == budget


def test_each_card_is_sized_with_its_own_budget_unless_one_is_asked_for() -> None:
    # Prompts of 6,000 tokens: a 2,048-token budget spreads each over three steps, 8,192 takes it in one.
    long = Question("llama-3.1-8b", Kpi.LATENCY, 1.0, 6000.0, 256.0, ttft_ms=5000.0, itl_ms=100.0)
    by_card = {(c.accelerator, c.batch): c for c in _answer(long).ranked}
    assert {c.budget_tokens for c in by_card.values() if c.card_type == "H100"} == {8192}
    assert {c.budget_tokens for c in by_card.values() if c.card_type == "A100-80"} == {2048}
    asked = {(c.accelerator, c.batch): c for c in _answer(replace(long, budget_tokens=2048)).ranked}
    assert {c.budget_tokens for c in asked.values()} == {2048}
    h100 = [k for k in by_card if k[0] == "H100" and k in asked]
    assert h100 and all(by_card[k].ttft_ms < asked[k].ttft_ms for k in h100)


def test_a_model_the_data_lacks_is_an_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.yaml"
    code = main(["recommend", "--model", "llama-70b", "--kpi", "cost", "--rate", "1", "--write", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "no entry for model 'llama-70b'" in err and "llama-3.1-8b" in err
    assert not out.exists()


class _Nodes:
    """A fake of the collector's Kubernetes adapter: two nodes per type, one of them not Ready."""

    async def list_nodes(self) -> list[NodeInfo]:
        gpu = "nvidia.com/gpu"
        return [
            NodeInfo("a1", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, {gpu: 8.0}),
            NodeInfo("a2", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, {gpu: 8.0}, ready=False),
            NodeInfo("h1", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, {gpu: 4.0}),
            NodeInfo("cpu", {}, {}),
        ]

    async def list_pods(self, namespaces: tuple[str, ...]) -> list[PodInfo]:
        return [PodInfo("ml", "train", node_name="h1", requests={"nvidia.com/gpu": 3.0})]


def test_the_cluster_cards_are_counted_as_the_collector_counts_them() -> None:
    _, _, placement = load_data(DATA_DIR)
    cards, notes = cluster_cards(placement, _Nodes())
    assert cards == {"A100-80": 8, "H100": 1}
    assert any("a2" in n and "not Ready" in n for n in notes)
