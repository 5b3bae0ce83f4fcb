"""The step machinery of :class:`load_emulator.replica.ReplicaSim`: plan, book and cut steps.

Split from :mod:`load_emulator.replica` (which documents the bookkeeping) to keep files short.
Scheduling, per schema (see :mod:`load_emulator.timing` for durations):

- decode-only: waiting requests join at the next iteration boundary while the batch has room; the
  iteration after a join is booked alone so the newcomers' first tokens are timed exactly;
- prefill-first: waiting requests and room in the batch -> a prefill iteration for as many
  newcomers as fit (FIFO, within ``token_budget`` prompt tokens, at least one); else decode;
- chunked: every iteration decodes all running requests, then gives the remaining token budget to
  partial prefills (FIFO), then admits newcomers while the batch has room.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

from load_emulator.histograms import ReplicaMetrics
from load_emulator.stats import ServerStats
from load_emulator.timing import DECODE_ONLY, ITERATION, IterationCost

IDLE, SINGLE, RUN = 0, 1, 2


@dataclass(slots=True, eq=False)
class Request:
    seq: int
    arrival_s: float
    in_tokens: int
    out_tokens: int
    admitted_s: float = -1.0
    first_token_s: float = -1.0
    prompt_done: int = 0
    join_g: int = 0
    gen0: int = 0


class ReplicaSteps:
    cost: IterationCost
    max_batch: int
    chunked: bool
    token_budget: int
    sink: ServerStats
    metrics: ReplicaMetrics
    waiting: deque[Request]
    prefilling: list[Request]
    decoding: list[tuple[int, int, Request]]
    first_pending: list[Request]
    batch: list[Request]
    chunks: list[tuple[Request, int]]
    g: int
    ctx_base: int
    gap_groups: dict[float, int]
    state: int
    start_s: float
    end_s: float
    run_k: int
    run_t0_s: float
    run_d_s: float
    step_decodes: int

    # --- planning -------------------------------------------------------------------------------
    def plan(self, now_s: float) -> None:
        """Choose the step starting at ``now_s`` (or go idle)."""
        if self.cost.kind == DECODE_ONLY:
            while self.waiting and len(self.decoding) < self.max_batch:
                request = self.waiting.popleft()
                request.admitted_s = now_s
                request.prompt_done = request.in_tokens  # the schema has no prefill cost
                self.metrics.prompt_tokens += request.in_tokens
                self._push_decoding(request)
                self.first_pending.append(request)
        elif self.chunked:
            if self.prefilling or (
                self.waiting and len(self.decoding) + len(self.prefilling) < self.max_batch
            ):
                self._start_mixed(now_s)
                return
        elif self.waiting and len(self.decoding) < self.max_batch:
            self._start_prefill(now_s)
            return
        if self.decoding:
            k = 1 if self.first_pending else self.decoding[0][0] - self.g
            self._start_run(now_s, k)
        else:
            self.state, self.end_s = IDLE, math.inf

    def _start_run(self, now_s: float, k: int) -> None:
        n = len(self.decoding)
        t0 = self.cost.decode_s(n, self.ctx_base + n * self.g)
        d = self.cost.gamma_s * n if self.cost.kind == ITERATION else 0.0
        self.state, self.start_s, self.run_k, self.run_t0_s, self.run_d_s = RUN, now_s, k, t0, d
        self.end_s = now_s + k * t0 + d * k * (k - 1) / 2

    def _start_prefill(self, now_s: float) -> None:
        prompt_tokens = 0
        while self.waiting and len(self.decoding) + len(self.batch) < self.max_batch:
            request = self.waiting[0]
            if self.batch and prompt_tokens + request.in_tokens > self.token_budget:
                break
            self.waiting.popleft()
            request.admitted_s = now_s
            self.batch.append(request)
            prompt_tokens += request.in_tokens
        duration_s = self.cost.prefill_s(prompt_tokens, len(self.decoding) + len(self.batch))
        self.state, self.start_s, self.end_s, self.step_decodes = SINGLE, now_s, now_s + duration_s, 0

    def _start_mixed(self, now_s: float) -> None:
        n_dec = len(self.decoding)
        budget = self.token_budget - n_dec
        prefill_tokens = 0
        attended = self.ctx_base + n_dec * self.g if n_dec else 0
        for request in self.prefilling:
            if budget <= 0:
                break
            chunk = min(request.in_tokens - request.prompt_done, budget)
            self.chunks.append((request, chunk))
            budget, prefill_tokens, attended = (
                budget - chunk,
                prefill_tokens + chunk,
                attended + request.prompt_done + chunk,
            )
        while budget > 0 and self.waiting and n_dec + len(self.prefilling) < self.max_batch:
            request = self.waiting.popleft()
            request.admitted_s = now_s
            self.prefilling.append(request)
            chunk = min(request.in_tokens, budget)
            self.chunks.append((request, chunk))
            budget, prefill_tokens, attended = budget - chunk, prefill_tokens + chunk, attended + chunk
        duration_s = self.cost.mixed_s(n_dec, prefill_tokens, attended)
        self.state, self.start_s, self.end_s, self.step_decodes = SINGLE, now_s, now_s + duration_s, n_dec

    # --- booking --------------------------------------------------------------------------------
    def commit_until(self, now_s: float) -> None:
        """Book the decode iterations of the current run that have ended by ``now_s``."""
        if self.state != RUN or now_s <= self.start_s:
            return
        done = min(self._iterations_done(now_s - self.start_s), self.run_k - 1)
        if done > 0:
            self.commit_run(done, now_s)

    def cut_run(self, now_s: float) -> None:
        """End the run with the iteration in progress at ``now_s`` so a newcomer can join then.

        Nothing is booked here: the shortened run is booked once, at its new end.
        """
        elapsed_s = now_s - self.start_s
        if elapsed_s <= 0:
            self.plan(now_s)  # the run has not started an iteration yet: the newcomer joins now
            return
        k = min(self._iterations_done(elapsed_s) + 1, self.run_k)
        t0, d = self.run_t0_s, self.run_d_s
        self.run_k = k
        self.end_s = self.start_s + k * t0 + d * k * (k - 1) / 2

    def commit_run(self, j: int, now_s: float) -> None:
        t0, d = self.run_t0_s, self.run_d_s
        full = j >= self.run_k
        end_s = now_s if full else self.start_s + j * t0 + d * j * (j - 1) / 2
        self._book_decodes(t0, d, j, now_s, end_s)
        self.start_s, self.run_k, self.run_t0_s = end_s, self.run_k - j, t0 + j * d

    def commit_single(self, now_s: float) -> None:
        if self.step_decodes:
            self._book_decodes(now_s - self.start_s, 0.0, 1, now_s, now_s)
        finished: list[Request] = []
        if self.chunked:
            for request, chunk in self.chunks:
                request.prompt_done += chunk
                self.metrics.prompt_tokens += chunk
                if request.prompt_done >= request.in_tokens:
                    finished.append(request)
            self.chunks.clear()
            if finished:
                self.prefilling = [r for r in self.prefilling if r.prompt_done < r.in_tokens]
        else:
            finished, self.batch = self.batch, []
            for request in finished:
                request.prompt_done = request.in_tokens
                self.metrics.prompt_tokens += request.in_tokens
        for request in finished:
            self._first_token(request, now_s)
            request.gen0 = 1
            if request.out_tokens <= 1:
                self._complete(request, now_s)
            else:
                self._push_decoding(request)
                self.gap_groups[now_s] = self.gap_groups.get(now_s, 0) + 1

    def _book_decodes(self, t0: float, d: float, j: int, now_s: float, end_s: float) -> None:
        """``j`` decode iterations of all decoding requests from ``start_s``, the last ending at ``end_s``."""
        end0_s = self.start_s + t0 if j > 1 else end_s
        n = len(self.decoding)
        itl, sink = self.metrics.itl, self.sink
        for last_s, count in self.gap_groups.items():
            itl.observe(end0_s - last_s, count)
            sink.itl(now_s, end0_s - last_s, count)
        if self.first_pending:
            for request in self.first_pending:
                request.first_token_s = end0_s
                self.metrics.ttft.observe(end0_s - request.arrival_s)
                sink.first_token(end0_s, end0_s - request.arrival_s)
            self.first_pending.clear()
        if j > 1:
            itl.observe_linear(t0 + d, d, j - 1, n)
            sink.itl(now_s, t0 + d * j / 2, n * (j - 1))
        self.metrics.generation_tokens += n * j
        self.g += j
        self.gap_groups = {end_s: n}
        done = 0
        while self.decoding and self.decoding[0][0] <= self.g:
            request = heapq.heappop(self.decoding)[2]
            self.ctx_base -= request.in_tokens + request.gen0 - request.join_g
            self._complete(request, end_s)
            done += 1
        if done == n:
            self.gap_groups = {}
        elif done:
            self.gap_groups[end_s] = n - done

    def _iterations_done(self, elapsed_s: float) -> int:
        """Largest ``j`` with ``j*t0 + d*j*(j-1)/2 <= elapsed_s``."""
        t0, d = self.run_t0_s, self.run_d_s
        if d <= 0:
            j = int(elapsed_s / t0)
        else:
            b = t0 - d / 2
            j = int((-b + math.sqrt(b * b + 2 * d * elapsed_s)) / d)
        for _ in range(4):  # float rounding: at most a step or two either way
            if j > 0 and j * t0 + d * j * (j - 1) / 2 > elapsed_s:
                j -= 1
            elif (j + 1) * t0 + d * (j + 1) * j / 2 <= elapsed_s:
                j += 1
            else:
                break
        return max(j, 0)

    def _push_decoding(self, request: Request) -> None:
        request.join_g = self.g
        finish_g = self.g + request.out_tokens - request.gen0
        heapq.heappush(self.decoding, (finish_g, request.seq, request))
        self.ctx_base += request.in_tokens + request.gen0 - self.g

    def _first_token(self, request: Request, t_s: float) -> None:
        request.first_token_s = t_s
        self.metrics.ttft.observe(t_s - request.arrival_s)
        self.metrics.generation_tokens += 1
        self.sink.first_token(t_s, t_s - request.arrival_s)

    def _complete(self, request: Request, t_s: float) -> None:
        m = self.metrics
        m.success_by_reason["stop"] += 1
        e2e_s = t_s - request.arrival_s
        m.e2e.observe(e2e_s)
        m.queue_time.observe(request.admitted_s - request.arrival_s)
        m.request_prompt_tokens.observe(request.in_tokens)
        m.request_generation_tokens.observe(request.out_tokens)
        out = request.out_tokens
        tpot_s = (t_s - request.first_token_s) / (out - 1) if out > 1 else math.nan
        self.sink.completed(
            t_s,
            request.first_token_s - request.arrival_s,
            tpot_s,
            e2e_s,
            request.in_tokens,
            out,
            request.admitted_s - request.arrival_s,
        )
