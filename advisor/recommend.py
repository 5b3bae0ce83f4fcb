"""``python -m advisor recommend``: model, KPI and rate in; ranked configurations and a Deployment out.

Reads ``accelerator-data.json``, ``model-data.json`` and ``placement-data.json`` from ``--data``
(default: this package's ``data/``, estimates for Llama-3.1-8B on A100-80 and H100, see its
README). The cards come from ``--cards A100-80=8,H100=4``, or with ``--cluster`` from the Nodes
of the cluster in the kubeconfig, counted as the collector counts them
(:func:`collector.capacity.node_capacity`: Ready, schedulable nodes matching a placement entry,
allocatable GPUs less what running pods request), or are unlimited. The ranking is
:func:`optimizer.recommend.recommend`'s. With ``--write PATH`` the best configuration becomes a
Deployment (:mod:`advisor.deployment`). Exit code 2 with a message on bad input, writing nothing.

Example::

    python -m advisor recommend --model llama-3.1-8b --kpi cost --rate 4 --in 512 --out 256 \\
        --ttft-ms 1000 --itl-ms 40 --cards A100-80=8,H100=8 --write /tmp/llama.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from collector.capacity import node_capacity
from collector.ports import NodeInfo, PodInfo
from contract.collect import Placement
from contract.data.catalog import AcceleratorData, ModelData
from contract.data.loader import DataError, parse_json
from optimizer.recommend import Answer, Kpi, Question, recommend, targets_for
from optimizer.settings import OptimizerSettings

DATA_DIR = Path(__file__).parent / "data"
SHOWN = 12


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model name as in model-data.json")
    p.add_argument("--kpi", required=True, choices=[k.value for k in Kpi])
    p.add_argument("--rate", type=float, required=True, help="requests per second to serve")
    p.add_argument("--in", dest="in_tokens", type=float, default=512.0, help="mean prompt tokens")
    p.add_argument("--out", dest="out_tokens", type=float, default=256.0, help="mean output tokens")
    p.add_argument("--ttft-ms", type=float, help="mean TTFT target (default: the KPI's; 0: none)")
    p.add_argument("--itl-ms", type=float, help="mean ITL target (default: the KPI's; 0: none)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--cluster", action="store_true", help="count the cards of the cluster's Nodes")
    where.add_argument("--cards", help="cards per type, e.g. A100-80=8,H100=4 (default: unlimited)")
    p.add_argument("--data", default=str(DATA_DIR), help="directory of accelerator/model/placement data")
    p.add_argument(
        "--max-num-batched-tokens",
        type=int,
        default=0,
        help="vLLM token budget per step on every card (default: vLLM's own for each card: 2048, 8192 on "
        "cards of 70 GB or more but A100s, 16384 from 160 GB)",
    )
    p.add_argument("--write", help="write the best configuration's Deployment (YAML) here")
    p.add_argument("--image", default="vllm/vllm-openai:v0.10.1", help="vLLM image of the Deployment")
    p.add_argument("--served-model", help="model id vLLM loads (default: --model)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--kubeconfig", help="kubeconfig for --cluster (default: in-cluster, then $KUBECONFIG)")


def parse_cards(text: str) -> dict[str, int]:
    cards: dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = part.partition("=")
        if not sep or not name.strip() or not count.strip().isdigit():
            raise ValueError(f"--cards takes TYPE=COUNT,... (e.g. A100-80=8,H100=4), got {part!r}")
        cards[name.strip()] = cards.get(name.strip(), 0) + int(count)
    return cards


def _load(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: missing")
    return parse_json(path.read_bytes(), str(path))


def load_data(directory: Path) -> tuple[AcceleratorData, ModelData, list[Placement]]:
    try:
        accelerators = AcceleratorData.model_validate(_load(directory / "accelerator-data.json"))
        models = ModelData.model_validate(_load(directory / "model-data.json"))
        placement_path = directory / "placement-data.json"
        placement = (
            [Placement.model_validate(p) for p in _load(placement_path).get("placement", [])]
            if placement_path.exists()
            else []
        )
    except ValidationError as exc:
        raise DataError(f"{directory}: {exc}") from None
    return accelerators, models, placement


class NodeSource(Protocol):
    """What ``--cluster`` reads: the collector's Kubernetes adapter
    (:class:`collector.kube_adapter.KubeAdapter`), or a fake in the tests."""

    async def list_nodes(self) -> list[NodeInfo]: ...
    async def list_pods(self, namespaces: tuple[str, ...]) -> list[PodInfo]: ...


def cluster_source(kubeconfig: str | None) -> NodeSource:
    """The collector's adapter on the cluster of the kubeconfig (in-cluster config first)."""
    from collector.kube_adapter import KubeAdapter  # noqa: PLC0415 - only with --cluster
    from plumbing.kube import load_api_client  # noqa: PLC0415

    return KubeAdapter(load_api_client(config_file=kubeconfig), timeout_s=30.0)


def cluster_cards(placement: list[Placement], source: NodeSource) -> tuple[dict[str, int], list[str]]:
    """Free cards per type on the cluster's Nodes, counted by the collector's own rule
    (:func:`collector.capacity.node_capacity`), with its notes on nodes left out."""
    if not placement:
        raise DataError("--cluster needs placement-data.json (which node label holds which card type)")

    async def read() -> tuple[dict[str, int], list[str]]:
        nodes = await source.list_nodes()
        pods = await source.list_pods(())
        return node_capacity(nodes, pods, placement, set())

    return asyncio.run(read())


def render(answer: Answer, cards: dict[str, int] | None) -> str:
    q = answer.question
    lines = [
        f"{q.model}: {q.rate_rps:g} req/s, {q.in_tokens:g} in / {q.out_tokens:g} out, KPI {q.kpi.value} "
        f"(TTFT <= {q.ttft_ms:g} ms, ITL <= {q.itl_ms:g} ms; 0: none); cards: "
        + ("unlimited" if cards is None else ", ".join(f"{k}={v}" for k, v in sorted(cards.items()))),
        "",
        "rank accelerator  TP batch budget replicas cards  TTFT ms  ITL ms  served req/s  max/replica  "
        "$/h    tok/s/card  limit",
    ]
    for i, c in enumerate(answer.ranked[:SHOWN], start=1):
        lines.append(
            f"{i:>4} {c.accelerator:<12}{c.cards_per_replica:>3} {c.batch:>5} {c.budget_tokens:>6} "
            f"{c.replicas:>8} {c.cards:>5} {c.ttft_ms:>8.1f} {c.itl_ms:>7.2f} {c.throughput_rps:>13.3f} "
            f"{c.max_rate_rps:>12.3f} {c.cost_per_hour:>6.2f} {c.tokens_per_card_s:>11.0f}  {c.limit}"
        )
    if len(answer.ranked) > SHOWN:
        lines.append(f"     ... {len(answer.ranked) - SHOWN} more feasible configurations")
    if answer.rejected:
        lines += ["", "rejected:"]
        lines += [f"  {r.accelerator} batch {r.batch}: {r.code.value}: {r.reason}" for r in answer.rejected]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    try:
        kpi = Kpi(args.kpi)
        if not args.rate > 0:
            raise ValueError(f"--rate must be > 0 req/s, got {args.rate}")
        if not (args.in_tokens >= 0 and args.out_tokens >= 1):
            raise ValueError("--in must be >= 0 and --out >= 1 tokens")
        ttft, itl = targets_for(kpi, args.ttft_ms, args.itl_ms)
        if args.max_num_batched_tokens < 0:
            raise ValueError(f"--max-num-batched-tokens must be >= 0, got {args.max_num_batched_tokens}")
        question = Question(
            args.model, kpi, args.rate, args.in_tokens, args.out_tokens, ttft, itl,
            budget_tokens=args.max_num_batched_tokens,
        )  # fmt: skip
        accelerators, models, placement = load_data(Path(args.data))
        notes: list[str] = []
        cards: dict[str, int] | None = None
        if args.cards:
            cards = parse_cards(args.cards)
        elif args.cluster:
            cards, notes = cluster_cards(placement, cluster_source(args.kubeconfig))
        settings = OptimizerSettings()
        specs = {a.name: a for a in accelerators.accelerators}
        answer = recommend(question, models.models, specs, cards, settings)
    except (ValueError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the cluster: unreachable API server, no kubeconfig
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print("\n".join([*notes, render(answer, cards)]))
    if not answer.ranked:
        print("error: no configuration meets the targets within the cards; nothing written", file=sys.stderr)
        return 3
    if args.write:
        best = answer.ranked[0]
        where = next((p for p in placement if p.type == best.card_type), None)
        if where is None:
            print(
                f"error: placement-data.json has no {best.card_type} entry; nothing written",
                file=sys.stderr,
            )
            return 2
        from advisor.deployment import deployment  # noqa: PLC0415

        manifest = deployment(
            best,
            question,
            where,
            image=args.image,
            served_model=args.served_model or args.model,
            namespace=args.namespace,
            budget_tokens=best.budget_tokens,
        )
        Path(args.write).write_text(yaml.safe_dump(manifest, sort_keys=False))
        print(
            f"wrote {args.write}: {best.replicas} x {best.accelerator} "
            f"(TP {best.cards_per_replica}), batch {best.batch}"
        )
    return 0
