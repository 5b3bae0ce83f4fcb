"""inference-perf, the real benchmark client, driving an OpenAI-compatible endpoint on loopback.

Used by ``tests/load/test_inference_perf.py`` and :mod:`benchmarks.bench_openai_client`. The client
lives in its own virtualenv (``.venv-client``, Python >= 3.12, ``scripts/setup-client.sh``); this
module writes its YAML config (a stage list of Poisson rates, streaming, fixed prompt and output
lengths made by its ``random`` generator with the emulator's tokenizer, ``ignore_eos``), runs it as
a subprocess (asyncio, so a server in the caller's event loop keeps serving) and reads its
per-stage reports. :func:`server_means` reads the same quantities off a vLLM ``/metrics`` text.

inference-perf's ``poisson`` load draws each second's count from a Poisson law and spreads that
many requests over the second with exponential gaps scaled to fill it; a stage sends
``rate * duration`` requests. Its ITL is per inter-chunk gap, pooled over requests, as vLLM's
``inter_token_latency_seconds`` histogram counts it; its TTFT is first chunk minus send time.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from load_emulator.openai_api.text import TOKENIZER_DIR

ROOT = Path(__file__).resolve().parents[1]
CLIENT_BIN = ROOT / ".venv-client" / "bin" / "inference-perf"


def client_available() -> bool:
    return CLIENT_BIN.exists()


@dataclass(frozen=True)
class Stage:
    rate_rps: float
    duration_s: int


def config_yaml(
    base_url: str, model: str, stages: Sequence[Stage], *, in_tokens: int, out_tokens: int, out_dir: Path,
    seed: int = 0,
) -> str:  # fmt: skip
    """The client's config (JSON is YAML): one worker, per-stage and per-request reports."""
    total = sum(math.ceil(s.rate_rps * s.duration_s) for s in stages) + 10

    def fixed(n: int) -> dict[str, object]:
        return {"min": n, "max": n, "mean": n, "std_dev": 0, "total_count": total, "type": "fixed"}

    config = {
        "load": {
            "type": "poisson",
            "interval": 1,
            "stages": [{"rate": s.rate_rps, "duration": s.duration_s} for s in stages],
            "num_workers": 1,
            "base_seed": seed,
        },
        "api": {"type": "completion", "streaming": True},
        "server": {"type": "vllm", "model_name": model, "base_url": base_url, "ignore_eos": True},
        "tokenizer": {"pretrained_model_name_or_path": str(TOKENIZER_DIR)},
        "data": {
            "type": "random",
            "input_distribution": fixed(in_tokens),
            "output_distribution": fixed(out_tokens),
        },
        "report": {"request_lifecycle": {"summary": True, "per_stage": True, "per_request": True}},
        "storage": {"local_storage": {"path": str(out_dir)}},
    }
    return json.dumps(config, indent=1)


async def run_client(config_path: Path, timeout_s: float, log_path: Path) -> int:
    """Run inference-perf on ``config_path`` (offline from any hub), bounded by ``timeout_s``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NO_COLOR": "1"}
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(CLIENT_BIN), "--config_file", str(config_path), stdout=log, stderr=asyncio.subprocess.STDOUT,
            env=env, cwd=str(config_path.parent),
        )  # fmt: skip
        try:
            return await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise


@dataclass(frozen=True)
class ClientStage:
    """One stage as the client measured it (seconds)."""

    successes: int
    failures: int
    mean_ttft_s: float
    mean_itl_s: float
    achieved_rps: float


def read_stage(out_dir: Path, index: int) -> ClientStage:
    report = json.loads((out_dir / f"stage_{index}_lifecycle_metrics.json").read_text())
    ok = report["successes"]
    latency = ok["latency"]
    return ClientStage(
        successes=int(ok["count"]), failures=int(report.get("failures", {}).get("count", 0)),
        mean_ttft_s=float(latency["time_to_first_token"]["mean"]),
        mean_itl_s=float(latency["inter_token_latency"]["mean"]),
        achieved_rps=float(report["load_summary"]["achieved_rate"]),
    )  # fmt: skip


def read_token_counts(out_dir: Path) -> list[tuple[int, int, int]]:
    """Per successful request of the run: (server's prompt tokens, server's completion tokens,
    output tokens the client counted in the streamed text with the tokenizer)."""
    out = []
    for entry in json.loads((out_dir / "per_request_lifecycle_metrics.json").read_text()):
        if entry.get("error"):
            continue
        response = _info(entry).get("response_metrics", {})
        usage = response.get("server_usage") or {}
        assert isinstance(usage, dict)
        out.append((int(usage.get("prompt_tokens", -1)), int(usage.get("completion_tokens", -1)),
                    int(str(response.get("output_tokens", -1)))))  # fmt: skip
    return out


def _info(entry: dict[str, object]) -> dict[str, dict[str, object]]:
    raw = entry.get("info")
    if isinstance(raw, dict):
        return raw
    # The per-request report writes the info object as a Python repr.
    import ast  # noqa: PLC0415

    value = ast.literal_eval(str(raw)) if raw else {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ServerMeans:
    """Cumulative sums and counts off a vLLM ``/metrics`` text (one pod)."""

    ttft_sum_s: float
    ttft_count: float
    itl_sum_s: float
    itl_count: float
    requests: float
    prompt_tokens: float
    generation_tokens: float

    def minus(self, before: ServerMeans) -> ServerMeans:
        return ServerMeans(*(a - b for a, b in zip(self.values(), before.values(), strict=True)))

    def values(self) -> tuple[float, ...]:
        return (self.ttft_sum_s, self.ttft_count, self.itl_sum_s, self.itl_count, self.requests,
                self.prompt_tokens, self.generation_tokens)  # fmt: skip

    @property
    def mean_ttft_s(self) -> float:
        return self.ttft_sum_s / self.ttft_count if self.ttft_count else math.nan

    @property
    def mean_itl_s(self) -> float:
        return self.itl_sum_s / self.itl_count if self.itl_count else math.nan


def server_means(metrics_text: str) -> ServerMeans:
    found: dict[str, float] = {}
    requests = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if (
                sample.name == "vllm:request_success_total"
                and sample.labels.get("finished_reason") != "abort"
            ):
                requests += sample.value
            else:
                found[sample.name] = found.get(sample.name, 0.0) + sample.value
    ttft, itl = "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds"
    return ServerMeans(
        found.get(f"{ttft}_sum", 0.0), found.get(f"{ttft}_count", 0.0),
        found.get(f"{itl}_sum", 0.0), found.get(f"{itl}_count", 0.0),
        requests, found.get("vllm:prompt_tokens_total", 0.0), found.get("vllm:generation_tokens_total", 0.0),
    )  # fmt: skip
