"""One emulated vLLM replica: a FIFO queue, continuous batching, a KV cache in blocks, step timing.

Called by :class:`load_emulator.server.ServerSim`, which owns the clock and the event heap. The
replica is always either idle or inside one *step* whose end time it reports (``end_s``):

- a **single** step planned as vLLM's scheduler plans one (:mod:`load_emulator.replica_steps`);
  its effects (tokens, finished requests, freed blocks) land at its end;
- a **run** of ``k`` pure decode steps, when nothing can change before its end (no request
  finishes, no block is missing, nobody waiting can be admitted). Its step durations are
  ``t0 + i*d`` (``d = per-context-token cost * n`` as contexts grow, else 0), so a run is one event
  however long it is. An arrival that could join the batch cuts the run at the end of the step in
  progress (:meth:`enqueue`); ``commit_until`` books the steps already finished (scrapes and
  window reports see up-to-date counters).

Bookkeeping: :mod:`load_emulator.replica_book`. Scheduler limits and vLLM's defaults:
:mod:`load_emulator.sched_config`. Time model: :mod:`load_emulator.timing`.

A request longer than the whole KV cache (prompt plus output) is aborted on arrival, as vLLM
rejects a request beyond ``max_model_len``, which it keeps within the KV cache at start-up.
"""

from __future__ import annotations

import math
from collections import deque

from load_emulator.histograms import ReplicaMetrics
from load_emulator.replica_book import DECODE, GONE, IDLE, RUN, WAITING, Request, StepTrace
from load_emulator.replica_steps import MODE_DECODE_ONLY, MODE_V0, MODE_V1, ReplicaSteps
from load_emulator.sched_config import DEFAULT_BLOCK_TOKENS, SchedulerLimits
from load_emulator.stats import ServerStats
from load_emulator.timing import DECODE_ONLY, ITERATION, IterationCost

__all__ = ["ReplicaSim", "Request", "StepTrace"]

UNLIMITED_BLOCKS = 1 << 62
GAUGE_TOKENS_PER_SEAT = 2048
"""Without a KV capacity, the usage gauge reads the cache as ``max_batch * 2048`` tokens."""


class ReplicaSim(ReplicaSteps):
    """State of one pod; scheduling in :class:`ReplicaSteps`, bookkeeping in its base."""

    def __init__(
        self,
        pod: str,
        cost: IterationCost,
        max_batch: int,
        sink: ServerStats,
        *,
        chunked: bool,
        token_budget: int,
        kv_capacity_tokens: int | None = None,
        kv_block_tokens: int = DEFAULT_BLOCK_TOKENS,
        long_prefill_token_threshold: int = 0,
        reserve_full_prompt: bool = True,
        watermark: float | None = None,
        accelerator: str = "",
        max_model_len: int = 65536,
        trace: bool = False,
    ) -> None:
        self.pod = pod
        self.accelerator = accelerator
        self.cost = cost
        self.max_batch = max(1, max_batch)
        if cost.kind == DECODE_ONLY:
            self.mode = MODE_DECODE_ONLY
        else:
            self.mode = MODE_V1 if chunked and cost.kind == ITERATION else MODE_V0
        self.chunked = self.mode == MODE_V1
        # vLLM refuses a budget below max_num_seqs (SchedulerConfig._verify_args).
        self.token_budget = max(token_budget, self.max_batch)
        self.block_tokens = max(kv_block_tokens, 1)
        kv_blocks = None if kv_capacity_tokens is None else kv_capacity_tokens // self.block_tokens
        self.limits = SchedulerLimits(
            max_num_seqs=self.max_batch,
            max_num_batched_tokens=self.token_budget,
            kv_blocks=kv_blocks if self.mode != MODE_DECODE_ONLY else None,
            block_tokens=self.block_tokens,
            long_prefill_token_threshold=long_prefill_token_threshold,
            reserve_full_prompt=reserve_full_prompt,
            watermark=watermark,
            mode="v1" if self.mode == MODE_V1 else "v0",
        )
        self.watermark_blocks = self.limits.watermark_blocks
        self.spare_blocks = 1 if self.mode == MODE_V0 else 0
        usable = self.limits.usable_blocks
        self.kv_on = self.mode != MODE_DECODE_ONLY
        self.cap_blocks = UNLIMITED_BLOCKS if usable is None else usable
        self.gauge_blocks = usable or max(1, self.max_batch * GAUGE_TOKENS_PER_SEAT // self.block_tokens)
        self.sink = sink
        self.metrics = ReplicaMetrics(max_model_len=max_model_len)
        self.waiting: deque[Request] = deque()
        self.order: list[Request] = []
        self.decoding = []
        self.res_count = [0] * self.block_tokens
        self.n_dec = self.n_run = self.n_pref = 0
        self.pre_blocks = 0
        self.first_pending: list[Request] = []
        self.leaving: list[Request] = []
        """Running requests a client aborted: they leave when the step in progress ends."""
        self.sched: list[tuple[Request, int]] = []
        self.step_skip: list[Request] = []
        self.step_decodes = 0
        self.g = 0
        self.ctx_base = 0
        self.gap_groups: dict[float, int] = {}
        self.epoch = 0
        self.epoch_s = 0.0
        self.state = IDLE
        self.start_s = 0.0
        self.end_s = math.inf
        self.run_k = 0
        self.run_t0_s = 0.0
        self.run_d_s = 0.0
        self.trace: list[StepTrace] | None = [] if trace else None
        self.event_seq = -1  # the server's heap entry that is current for this replica

    # --- what the server and the exporter read ----------------------------------------------
    @property
    def running(self) -> int:
        return self.n_run

    @property
    def load(self) -> int:
        return self.n_run + len(self.waiting)

    def kv_usage(self) -> float:
        """vLLM's ``kv_cache_usage_perc``: blocks in use over the blocks that can hold requests."""
        if not self.kv_on:
            used = (self.ctx_base + self.n_dec * self.g) / self.block_tokens
        else:
            used = self.used_blocks
        return min(max(used / self.gauge_blocks, 0.0), 1.0)

    @property
    def num_gpu_blocks(self) -> int:
        """vLLM's ``num_gpu_blocks`` (a label of ``vllm:cache_config_info``): the configured blocks,
        or with an unlimited cache the blocks the usage gauge counts over plus V1's null block."""
        if self.limits.kv_blocks is not None:
            return self.limits.kv_blocks
        return self.gauge_blocks + (1 if self.limits.mode == "v1" else 0)

    def tokens_out(self, r: Request) -> int:
        """Output tokens ``r`` has produced by the last booked step (``commit_until`` books the
        steps of a run that have ended)."""
        if r.state == DECODE:
            return r.gen0 + self.g - r.join_g
        return r.generated

    def next_step_end_s(self, now_s: float) -> float:
        """When the step in progress at ``now_s`` ends: a token boundary (inf when idle)."""
        if self.state != RUN:
            return self.end_s
        j = min(self.iterations_done(max(now_s - self.start_s, 0.0)) + 1, self.run_k)
        return self.start_s + j * self.run_t0_s + self.run_d_s * j * (j - 1) / 2

    # --- events --------------------------------------------------------------------------------
    def enqueue(self, request: Request, now_s: float, *, plan: bool = True) -> bool:
        """Queue an arrival; True when the step's end time changed (the server re-schedules).

        ``plan=False`` only queues it (a driver adding several simultaneous arrivals plans once).
        """
        if self.kv_on and self.cap_blocks != UNLIMITED_BLOCKS:
            longest = self.blocks(request.in_tokens + max(request.out_tokens - 1, 0))
            if longest + (self.watermark_blocks if self.mode == MODE_V0 else 0) > self.cap_blocks:
                self.metrics.success_by_reason["abort"] += 1
                self.sink.aborted(now_s)
                request.aborted = True
                return False
        self.waiting.append(request)
        if not plan:
            return False
        if self.state == IDLE:
            self.plan(now_s)
            return self.state != IDLE
        if self.state == RUN and self.could_admit():
            if not self.cut_run(now_s):
                self.plan(now_s)
            return True
        return False

    def abort(self, request: Request, now_s: float) -> bool:
        """Its client went away: abort ``request`` as vLLM does (``finished_reason`` ``abort``).

        A waiting request leaves the queue at once. A running one leaves when the step in progress
        ends (vLLM's engine aborts between steps: that step still computes it), its KV blocks
        freed; a run of decode steps is cut there. True when the step's end time changed (the
        server re-schedules). In decode-only mode (no KV cache) a running request runs to its end.
        """
        if request.aborted or request.state == GONE:
            return False
        if request.state == WAITING:
            if request in self.waiting:
                self.waiting.remove(request)
                self._count_abort(request, now_s)
            return False
        if self.mode == MODE_DECODE_ONLY or request in self.leaving:
            return False
        self.leaving.append(request)
        if self.state != RUN:
            return False  # a single step: it ends at end_s, and the request leaves then
        if self.cut_run(now_s):
            return True
        self._leave(now_s)  # the run had not started a step: plan afresh without it
        self.plan(now_s)
        return True

    def drop_all(self, now_s: float) -> int:
        """Abort every request in the replica (pod removed); returns how many."""
        self.commit_until(now_s)
        victims = self.all_requests()
        for victim in victims:
            victim.aborted = True
            self.metrics.success_by_reason["abort"] += 1
            self.sink.aborted(now_s)
        self.decoding.clear()
        self.order.clear()
        self.waiting.clear()
        self.first_pending.clear()
        self.leaving = []
        self.gap_groups.clear()
        self.sched, self.step_skip = [], []
        self.res_count = [0] * self.block_tokens
        self.ctx_base = self.n_dec = self.n_run = self.n_pref = self.pre_blocks = 0
        self.state, self.end_s = IDLE, math.inf
        return len(victims)
