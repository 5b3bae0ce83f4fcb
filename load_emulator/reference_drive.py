"""One replica driven the way the vLLM reference driver drives vLLM's scheduler.

Callers: the golden-trace replay test and :mod:`benchmarks.engine_vs_vllm`, which compare our
engine with vLLM's own scheduler (``benchmarks/vllm_reference/``) on the same requests. A run's
``config`` and ``step_cost`` use the reference's JSON keys (``tests/fixtures/vllm_golden/README.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contract.data.perf import StepPerf
from load_emulator.replica import ReplicaSim, Request
from load_emulator.replica_book import IDLE
from load_emulator.stats import ServerStats
from load_emulator.timing import IterationCost


def replica_for(
    config: Mapping[str, Any], step_cost: Mapping[str, float], *, trace: bool = False
) -> ReplicaSim:
    """One replica with the reference run's scheduler settings and step cost. The engine models
    no prefix cache, FCFS only, synchronous scheduling, V1 chunked or V0 prefill-first."""
    if config.get("enable_prefix_caching", False):
        raise ValueError("the engine models no prefix cache")
    if config.get("policy", "fcfs") != "fcfs" or config.get("async_scheduling", False):
        raise ValueError("the engine schedules FCFS and synchronously only")
    v1 = config.get("engine", "v1") == "v1"
    if config.get("enable_chunked_prefill", True) != v1:
        raise ValueError("V1 chunked or V0 prefill-first only")
    perf = StepPerf(
        step_cost["fixed_ms"],
        step_cost["per_decode_ms"],
        step_cost["per_prefill_token_ms"],
        step_cost["per_context_token_ms"],
    )
    return ReplicaSim(
        "reference",
        IterationCost.from_perf(perf),
        config["max_num_seqs"],
        ServerStats(),
        chunked=v1,
        token_budget=config["max_num_batched_tokens"],
        kv_capacity_tokens=config["num_blocks"] * config["block_size"],
        kv_block_tokens=config["block_size"],
        long_prefill_token_threshold=config["long_prefill_token_threshold"],
        reserve_full_prompt=config.get("scheduler_reserve_full_isl", True),
        watermark=config.get("watermark"),
        trace=trace,
    )


def drive_replica(replica: ReplicaSim, requests: Sequence[Request]) -> None:
    """Run one replica over ``requests`` as vLLM's reference driver does: the requests that have
    arrived by ``now`` join the queue before each step; an idle replica jumps to the next arrival
    and plans once for all requests arriving then. A request arriving during a bulk decode run
    cuts it (``enqueue``), as in :class:`load_emulator.server.ServerSim`."""
    pending = sorted(requests, key=lambda r: r.arrival_s)
    i = 0
    while True:
        if replica.state == IDLE:
            if i == len(pending):
                return
            now_s = pending[i].arrival_s
            while i < len(pending) and pending[i].arrival_s <= now_s:
                replica.enqueue(pending[i], now_s, plan=False)
                i += 1
            replica.plan(now_s)
        elif i < len(pending) and pending[i].arrival_s <= replica.end_s:
            replica.enqueue(pending[i], pending[i].arrival_s)
            i += 1
        else:
            replica.on_step_end()
