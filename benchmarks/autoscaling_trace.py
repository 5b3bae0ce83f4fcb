"""Benchmark 4's second world: the Azure LLM inference trace 2023 replayed (issue 18).

Used by :mod:`benchmarks.bench_autoscaling` (``--world trace``). Same servers, cards and data as
:mod:`benchmarks.autoscaling_world` (3 llama_13b servers), but each server's arrivals and token
lengths are a real trace's, replayed request by request (:class:`load_emulator.trace.TraceReplay`):

- Premium and Bronze: the conversation trace (19,366 requests in one hour, 18:15-19:14 on
  2023-11-16; mean 1,155 prompt and 211 output tokens); Bronze's copies are shifted by a quarter
  of the trace's span from Premium's, so the two do not peak together.
- Free: the code trace (8,819 requests in the same hour; mean 2,048 prompt and 28 output tokens).
- Superposition: each server replays :data:`COPIES` copies of its trace, shifted by ``span /
  COPIES`` from each other, at :data:`TIME_SCALE` (the trace's time stretched: its bursts last
  longer and its rate is divided), looped for the run. Why: one copy at its own speed repeats
  the same hour every hour; the shifted copies make each hour of the run differ from the last
  while keeping the trace's per-request lengths and its second-to-second burstiness. At 2 copies
  and x4 time, Premium's mean is half the conversation trace's own rate (166 req/min: 4 H100 at
  the start, 8 at the trace's peaks), so the card limits bind at the peaks as in the first world
  (the trace's own rate would need every H100, MI300X and G2 card at its mean).

The trace is read from ``../shared/reference-data/azure-llm-inference-2023/`` (the path
:mod:`benchmarks.vllm_reference.scenarios` reads); its timestamps are wall-clock strings.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path

from benchmarks.autoscaling_world import WORLD_DIR, start_allocation
from benchmarks.vllm_reference.scenarios import AZURE_CONV_CSV
from contract.data.loader import load_system_dir
from contract.data.system import SystemData
from load_emulator.patterns import Arrival, LoadPattern
from load_emulator.trace import TraceReplay

AZURE_CODE_CSV = AZURE_CONV_CSV.with_name("AzureLLMInferenceTrace_code.csv")
TRACE_WORLD_DIR = WORLD_DIR.with_name("autoscaling-trace")
COPIES = 2
TIME_SCALE = 4.0
TRACE_OF_CLASS = {"Premium": ("conv", 0.0), "Bronze": ("conv", 0.25), "Free": ("code", 0.0)}
"""Class -> (trace, shift as a share of its span)."""


@cache
def read_azure(kind: str) -> tuple[Arrival, ...]:
    """The trace's requests, time in seconds from its first request."""
    path = AZURE_CONV_CSV if kind == "conv" else AZURE_CODE_CSV
    with path.open(encoding="utf-8") as f:
        rows = [
            (
                datetime.fromisoformat(r["TIMESTAMP"]).timestamp(),
                int(r["ContextTokens"]),
                int(r["GeneratedTokens"]),
            )
            for r in csv.DictReader(f)
        ]
    t0 = min(t for t, _, _ in rows)
    return tuple(sorted(Arrival(t - t0, i, max(o, 1)) for t, i, o in rows))


def superposed(rows: tuple[Arrival, ...], copies: int, shift_share: float) -> list[Arrival]:
    """``copies`` copies of ``rows``, the k-th shifted by ``(shift_share + k / copies) * span`` and
    wrapped into one span (so the result loops seamlessly)."""
    span = TraceReplay.from_rows(rows).span_s
    out: list[Arrival] = []
    for k in range(copies):
        offset = (shift_share + k / copies) * span
        out += [Arrival((r.t_s + offset) % span, r.in_tokens, r.out_tokens) for r in rows]
    return out


def trace_workloads(system: SystemData) -> dict[str, LoadPattern]:
    out: dict[str, LoadPattern] = {}
    for server in system.servers.servers:
        kind, shift = TRACE_OF_CLASS[server.service_class]
        rows = superposed(read_azure(kind), COPIES, shift)
        out[server.name] = TraceReplay.from_rows(rows, time_scale=TIME_SCALE, loop=True)
    return out


def write_trace_world(out: Path = TRACE_WORLD_DIR, source: Path = WORLD_DIR) -> Path:
    """The synthetic world's files with each server's load set to its trace's mean rate and lengths,
    and the start the optimizer plans for that mean (every policy starts from it)."""
    out.mkdir(parents=True, exist_ok=True)
    for f in source.glob("*.json"):
        shutil.copy(f, out / f.name)
    servers = json.loads((out / "server-data.json").read_text())
    for server in servers["servers"]:
        kind, _ = TRACE_OF_CLASS[server["class"]]
        replay = TraceReplay.from_rows(read_azure(kind))
        tokens = replay.tokens
        server["currentAlloc"]["load"] = {
            "arrivalRate": round(len(replay.rows) * COPIES / (replay.span_s * TIME_SCALE) * 60.0, 2),
            "avgInTokens": round(tokens.mean_in_tokens, 1),
            "avgOutTokens": round(tokens.mean_out_tokens, 1),
        }
    (out / "server-data.json").write_text(json.dumps(servers, indent=2) + "\n")
    start = start_allocation(load_system_dir(out), 1.0)
    for server in servers["servers"]:
        server["currentAlloc"].update(start[server["name"]])
    (out / "server-data.json").write_text(json.dumps(servers, indent=2) + "\n")
    return out


def trace_means(loads: Mapping[str, LoadPattern]) -> dict[str, float]:
    """Mean rate per server over one loop, req/min (for the report)."""
    return {
        name: len(p.rows) / (p.span_s * p.time_scale) * 60.0
        for name, p in loads.items()
        if isinstance(p, TraceReplay)
    }
