"""One emulated vLLM replica: FIFO queue, continuous batching, iteration-level timing.

Called by :class:`load_emulator.server.ServerSim`, which owns the clock and the event heap. The
replica is always either idle or inside one *step* whose end time it reports (``end_s``):

- a **single** iteration that changes the batch: a prefill iteration (prefill-first scheduling) or
  a mixed decode + prefill-chunk iteration (chunked scheduling); its effects land at its end;
- a **run** of ``k`` pure decode iterations, where nothing can change until a request finishes:
  ``k`` is the fewest tokens any running request still needs. The iteration durations are
  ``t0 + i*d`` (``d = gamma*n`` in the iteration schema as KV lengths grow, else 0), so a run is one
  event however long it is. An arrival that could join the batch cuts the run at the end of the
  iteration in progress (:meth:`enqueue`); ``commit_until`` books the iterations already finished
  (scrapes and window reports see up-to-date counters).

Bookkeeping that keeps a run O(1): ``g`` counts decode iterations; a decoding request stores the
``g`` at which it joined and finishes at ``finish_g`` (a heap); ``ctx_base`` is the sum over
decoding requests of ``in + generated_at_join - g_at_join``, so ``ctx_base + n*g`` is the sum of
their ``in + tokens generated so far``: the tokens each attends to in the next decode
iteration. ``gap_groups`` maps "time of last token" to how many decoding requests got their last
token then, so inter-token gaps that span a prefill iteration are measured exactly.
Time model: :mod:`load_emulator.timing`.
"""

from __future__ import annotations

import math
from collections import deque

from load_emulator.histograms import ReplicaMetrics
from load_emulator.replica_steps import IDLE, RUN, SINGLE, ReplicaSteps, Request
from load_emulator.stats import ServerStats
from load_emulator.timing import ITERATION, IterationCost

__all__ = ["ReplicaSim", "Request"]


class ReplicaSim(ReplicaSteps):
    """State of one pod; the step logic lives in :class:`ReplicaSteps`."""

    def __init__(
        self,
        pod: str,
        cost: IterationCost,
        max_batch: int,
        sink: ServerStats,
        *,
        chunked: bool,
        token_budget: int,
        kv_capacity_tokens: int,
        accelerator: str = "",
        max_model_len: int = 65536,
    ) -> None:
        self.pod = pod
        self.accelerator = accelerator
        self.cost = cost
        self.max_batch = max(1, max_batch)
        self.chunked = chunked and cost.kind == ITERATION
        self.token_budget = max(token_budget, self.max_batch + 1)
        self.kv_capacity_tokens = max(kv_capacity_tokens, 1)
        self.sink = sink
        self.metrics = ReplicaMetrics(max_model_len=max_model_len)
        self.waiting: deque[Request] = deque()
        self.prefilling: list[Request] = []
        self.decoding: list[tuple[int, int, Request]] = []  # heap of (finish_g, seq, request)
        self.first_pending: list[Request] = []
        self.batch: list[Request] = []  # newcomers of the prefill iteration in flight
        self.chunks: list[tuple[Request, int]] = []  # prefill chunks of the mixed iteration in flight
        self.g = 0
        self.ctx_base = 0
        self.gap_groups: dict[float, int] = {}
        self.state = IDLE
        self.start_s = 0.0
        self.end_s = math.inf
        self.run_k = 0
        self.run_t0_s = 0.0
        self.run_d_s = 0.0
        self.step_decodes = 0
        self.event_seq = -1  # the server's heap entry that is current for this replica

    # --- what the server and the exporter read ----------------------------------------------
    @property
    def running(self) -> int:
        return len(self.decoding) + len(self.prefilling) + len(self.batch)

    @property
    def load(self) -> int:
        return self.running + len(self.waiting)

    def kv_usage(self) -> float:
        used = self.ctx_base + len(self.decoding) * self.g + sum(r.prompt_done for r in self.prefilling)
        return min(max(used / self.kv_capacity_tokens, 0.0), 1.0)

    # --- events --------------------------------------------------------------------------------
    def enqueue(self, request: Request, now_s: float) -> bool:
        """Queue an arrival; True when the step's end time changed (the server re-schedules)."""
        self.waiting.append(request)
        if self.state == IDLE:
            self.plan(now_s)
            return self.state != IDLE
        if self.state == RUN and len(self.decoding) + len(self.prefilling) < self.max_batch:
            self.cut_run(now_s)
            return True
        return False

    def on_step_end(self) -> None:
        """The current step ended at ``end_s``: book it and plan the next one from there."""
        now_s = self.end_s
        if self.state == RUN:
            self.commit_run(self.run_k, now_s)
        elif self.state == SINGLE:
            self.commit_single(now_s)
        self.plan(now_s)

    def drop_all(self, now_s: float) -> int:
        """Abort every request in the replica (pod removed); returns how many."""
        self.commit_until(now_s)
        victims = [entry[2] for entry in self.decoding] + self.prefilling + self.batch + list(self.waiting)
        for _ in victims:
            self.metrics.success_by_reason["abort"] += 1
            self.sink.aborted(now_s)
        self.decoding.clear()
        self.prefilling.clear()
        self.batch.clear()
        self.chunks.clear()
        self.waiting.clear()
        self.first_pending.clear()
        self.gap_groups.clear()
        self.ctx_base = 0
        self.state, self.end_s = IDLE, math.inf
        return len(victims)
