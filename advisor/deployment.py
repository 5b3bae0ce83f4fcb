"""A ready-to-apply vLLM Deployment for a recommended configuration, labelled for the autoscaler.

Role: the last step of ``python -m advisor recommend``. The Deployment runs vLLM's OpenAI
server (the ``vllm/vllm-openai`` image's entry point; image and model id are arguments) with
``--tensor-parallel-size`` (cards per replica), ``--max-num-seqs`` (the batch) and
``--max-num-batched-tokens`` (the token budget the model assumed), requests that many GPUs,
selects nodes by the placement entry of its card type, and carries the labels and annotations
the collector reads (:mod:`contract.labels`): managed, server name, model, class, accelerator,
batch size and the load it was sized for. The strategy is the samples' ``maxSurge: 0,
maxUnavailable: 1`` (a full GPU pool cannot deadlock a rollout).
"""

from __future__ import annotations

import re
from typing import Any

from contract import labels
from contract.collect import Placement
from optimizer.recommend import Config, Question

SERVICE_CLASS = "Premium"


def dns_name(text: str) -> str:
    """``Llama-3.1-8B`` -> ``llama-3-1-8b``: a valid Deployment name (RFC 1123 label)."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "vllm"


def deployment(
    config: Config,
    question: Question,
    placement: Placement,
    *,
    image: str,
    served_model: str,
    namespace: str,
    service_class: str = SERVICE_CLASS,
    budget_tokens: int,
) -> dict[str, Any]:
    name = dns_name(f"{service_class}-{question.model}")
    gpus = str(config.cards_per_replica)
    args = [
        "--model", served_model,
        "--served-model-name", question.model,
        "--port", "8000",
        "--tensor-parallel-size", gpus,
        "--max-num-seqs", str(config.batch),
        "--max-num-batched-tokens", str(budget_tokens),
    ]  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": name,
                labels.MANAGED: "true",
                labels.NAME: f"{service_class}-{question.model}",
                labels.MODEL: question.model,
                labels.CLASS: service_class,
                labels.ACCELERATOR: config.accelerator,
                labels.MAX_BATCH: str(config.batch),
                labels.LOAD_RPM: f"{question.rate_rps * 60:g}",
                labels.LOAD_IN_TOKENS: f"{question.in_tokens:g}",
                labels.LOAD_OUT_TOKENS: f"{question.out_tokens:g}",
            },
            "annotations": {
                labels.MIN_REPLICAS: "1",
                labels.MAX_REPLICAS: str(max(2 * config.replicas, config.replicas + 1)),
            },
        },
        "spec": {
            "replicas": config.replicas,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {
                    "nodeSelector": {placement.node_label_key: placement.node_label_value},
                    "containers": [
                        {
                            "name": "vllm",
                            "image": image,
                            "args": args,
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "resources": {
                                "requests": {placement.resource: gpus},
                                "limits": {placement.resource: gpus},
                            },
                            "readinessProbe": {
                                "httpGet": {"path": "/health", "port": "http"},
                                "periodSeconds": 10,
                            },
                        }
                    ],
                },
            },
        },
    }
