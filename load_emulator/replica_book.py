"""Bookkeeping of :class:`load_emulator.replica.ReplicaSim`: requests, decoders, KV blocks, runs.

Split from :mod:`load_emulator.replica` (public state) and :mod:`load_emulator.replica_steps`
(scheduling) to keep files short. Everything here keeps a run of ``k`` identical decode steps
O(block size + finished requests), however long it is:

- ``g`` counts decode steps. A decoding request stores the ``g`` at which it joined (``join_g``)
  and its output tokens then (``gen0``); it finishes at ``finish_g`` (a heap, entries checked
  against ``Request.entry`` so a request that left and came back is never completed twice).
- ``ctx_base`` is the sum over decoders of ``in + gen0 - join_g``, so ``ctx_base + n*g`` is the sum
  of their ``in + generated``: the context each attends to in the next step (its computed tokens
  after the step).
- ``res_count[rho]`` counts decoders whose computed tokens are ``rho + g`` modulo the block size.
  A decoder needs a new KV block in the step whose token lands at a multiple of the block size,
  so :meth:`crossings` gives the blocks all decoders need over the next ``k`` steps, and
  :meth:`dec_blocks` the blocks they hold, in O(block size). The blocks of the other running
  requests are counted in ``pre_blocks``; ``used_blocks`` is the sum, and a cheap upper bound on
  it (:meth:`free_lower`) settles most admission and run-length questions without the exact sum.
- ``gap_groups`` maps "time of last token" to how many decoders got their last token then, so
  inter-token gaps that span a prefill step are measured exactly. ``epoch`` counts the events at
  which every decoder got a token (at ``epoch_s``); a request's own ``last_s`` holds when its
  ``last_epoch`` is the current one.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

from load_emulator.histograms import ReplicaMetrics
from load_emulator.stats import ServerStats
from load_emulator.timing import IterationCost

IDLE, SINGLE, RUN = 0, 1, 2
WAITING, PREFILL, DECODE, GONE = 0, 1, 2, 3

HeapEntry = tuple[int, int, "Request"]


@dataclass(slots=True, eq=False)
class Request:
    seq: int
    arrival_s: float
    in_tokens: int
    out_tokens: int
    name: str = ""
    """Identifier in step traces (golden-trace tests); ``str(seq)`` when empty."""
    admitted_s: float = -1.0
    first_token_s: float = -1.0
    state: int = WAITING
    computed: int = 0
    """vLLM's ``num_computed_tokens``; for a decoder, derived from ``g`` (see the module doc)."""
    generated: int = 0
    """Output tokens so far; for a decoder, ``gen0 + g - join_g``."""
    join_g: int = 0
    gen0: int = 0
    entry: HeapEntry | None = field(default=None, repr=False)
    last_s: float = 0.0
    last_epoch: int = -1
    preemptions: int = 0
    finish_s: float = -1.0
    aborted: bool = False
    """Dropped without finishing (longer than the KV cache, or its pod went away)."""
    finish_reason: str = "stop"
    """vLLM's ``finished_reason`` label when it completes: ``stop`` (end of sequence) or
    ``length`` (reached ``max_tokens``; a client's request can say so)."""

    @property
    def ident(self) -> str:
        return self.name or str(self.seq)


@dataclass(slots=True)
class StepTrace:
    """One engine step as the golden-trace tests compare it with vLLM's scheduler."""

    start_s: float
    scheduled: list[tuple[str, int]]
    preempted: list[str]
    kv_blocks_scheduled: int
    """KV blocks in use right after the step was scheduled (its allocations made)."""
    duration_s: float = 0.0
    finished: list[str] = field(default_factory=list)
    kv_blocks_after: int = 0
    """KV blocks in use after the step's finished requests freed theirs."""


class ReplicaBook:
    cost: IterationCost
    sink: ServerStats
    metrics: ReplicaMetrics
    waiting: deque[Request]
    block_tokens: int
    cap_blocks: int
    kv_on: bool
    pre_blocks: int
    decoding: list[HeapEntry]
    res_count: list[int]
    n_dec: int
    n_run: int
    n_pref: int
    first_pending: list[Request]
    g: int
    ctx_base: int
    gap_groups: dict[float, int]
    epoch: int
    epoch_s: float
    state: int
    start_s: float
    end_s: float
    run_k: int
    run_t0_s: float
    run_d_s: float
    trace: list[StepTrace] | None

    # --- KV blocks -----------------------------------------------------------------------------
    def blocks(self, tokens: int) -> int:
        return -(-tokens // self.block_tokens)

    def crossings(self, k: int) -> int:
        """New KV blocks the decoders need over the next ``k`` decode steps (none finishing).

        A decoder of residue ``rho`` needs one in the step ``i`` where ``rho + g + i`` is a
        multiple of the block size: every decoder once per ``block_tokens`` steps, plus the
        residues hit by the remaining ``k mod block_tokens`` steps.
        """
        bs = self.block_tokens
        full, part = divmod(k, bs)
        total = self.n_dec * full
        if part:
            counts, base = self.res_count, -self.g
            total += sum([counts[(base - i) % bs] for i in range(part)])
        return total

    def dec_blocks(self) -> int:
        """KV blocks the decoders hold: ``sum ceil(computed / block size)``."""
        n = self.n_dec
        if not n:
            return 0
        bs, g = self.block_tokens, self.g
        pad = sum([count * (-(rho + g) % bs) for rho, count in enumerate(self.res_count) if count])
        return (self.ctx_base - n + n * g + pad) // bs

    @property
    def used_blocks(self) -> int:
        """KV blocks held by the running requests."""
        return self.pre_blocks + self.dec_blocks()

    def free_lower(self) -> int:
        """A lower bound on the free blocks, in O(1) (each decoder's last block counted full)."""
        n = self.n_dec
        return self.cap_blocks - self.pre_blocks - (self.ctx_base - n + n * self.g) // self.block_tokens - n

    def run_length_fitting(self, k_max: int, spare: int = 0) -> int:
        """The most decode steps, up to ``k_max``, whose blocks all fit in the free blocks with
        ``spare`` of them left over."""
        free = self.cap_blocks - self.used_blocks - spare
        if self.crossings(k_max) <= free:
            return k_max
        lo, hi = 0, k_max  # crossings(lo) fits, crossings(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.crossings(mid) <= free:
                lo = mid
            else:
                hi = mid
        return lo

    # --- decoders ------------------------------------------------------------------------------
    def attach(self, r: Request, last_s: float, *, gap: bool = True) -> None:
        """``r`` decodes from the next step on; its last token came out at ``last_s``."""
        g = self.g
        r.state, r.join_g, r.gen0 = DECODE, g, r.generated
        entry = (g + r.out_tokens - r.generated, r.seq, r)
        r.entry = entry
        heapq.heappush(self.decoding, entry)
        self.ctx_base += r.in_tokens + r.generated - g
        self.res_count[(r.in_tokens + r.generated - 1 - g) % self.block_tokens] += 1
        self.n_dec += 1
        self.pre_blocks -= -(-r.computed // self.block_tokens)
        r.last_s, r.last_epoch = last_s, self.epoch
        if gap:
            self.gap_groups[last_s] = self.gap_groups.get(last_s, 0) + 1

    def detach(self, r: Request) -> None:
        """``r`` stops decoding (preempted, or skipped for one step): its counts become explicit."""
        gen = r.gen0 + self.g - r.join_g
        r.generated, r.computed = gen, r.in_tokens + gen - 1
        self.ctx_base -= r.in_tokens + r.gen0 - r.join_g
        self.res_count[(r.in_tokens + r.gen0 - 1 - r.join_g) % self.block_tokens] -= 1
        self.n_dec -= 1
        self.pre_blocks += -(-r.computed // self.block_tokens)
        r.entry = None
        last = r.last_s if r.last_epoch == self.epoch else self.epoch_s
        count = self.gap_groups.get(last, 0)
        if count > 1:
            self.gap_groups[last] = count - 1
        elif count == 1:
            del self.gap_groups[last]
        r.last_s, r.last_epoch, r.state = last, -1, PREFILL

    def top_finish_g(self) -> int:
        heap = self.decoding
        while heap and heap[0][2].entry is not heap[0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else 0

    def book_decodes(self, t0: float, d: float, j: int, now_s: float, end_s: float) -> None:
        """``j`` decode steps of every decoder from ``start_s``, the last ending at ``end_s``.

        Their KV blocks follow from ``g`` (:meth:`dec_blocks`): nothing to allocate here.
        """
        end0_s = self.start_s + t0 if j > 1 else end_s
        n = self.n_dec
        itl, sink = self.metrics.itl, self.sink
        for last_s, count in self.gap_groups.items():
            itl.observe(end0_s - last_s, count)
            sink.itl(now_s, end0_s - last_s, count)
        if self.first_pending:
            for request in self.first_pending:
                request.first_token_s = request.last_s = end0_s
                self.metrics.ttft.observe(end0_s - request.arrival_s)
                sink.first_token(end0_s, end0_s - request.arrival_s)
            self.first_pending.clear()
        if j > 1:
            itl.observe_linear(t0 + d, d, j - 1, n)
            sink.itl(now_s, t0 + d * j / 2, n * (j - 1))
        self.metrics.generation_tokens += n * j
        self.g += j
        self.epoch += 1
        self.epoch_s = end_s
        self.gap_groups = {end_s: n}
        done = 0
        heap, g = self.decoding, self.g
        while heap and heap[0][0] <= g:
            entry = heapq.heappop(heap)
            r = entry[2]
            if r.entry is not entry:
                continue  # stale entry: the request left the decoders since
            r.entry = None
            self.ctx_base -= r.in_tokens + r.gen0 - r.join_g
            self.res_count[(r.in_tokens + r.gen0 - 1 - r.join_g) % self.block_tokens] -= 1
            self.n_dec -= 1
            r.generated, r.computed = r.out_tokens, r.in_tokens + r.out_tokens - 1
            self.finish(r, end_s, decoding=True)
            done += 1
        if done == n:
            self.gap_groups = {}
        elif done:
            self.gap_groups[end_s] = n - done

    def finish(self, r: Request, t_s: float, *, decoding: bool) -> None:
        """``r`` produced its last token at ``t_s``: free its blocks and record it."""
        if not decoding:
            self.pre_blocks -= -(-r.computed // self.block_tokens)
        r.state, r.finish_s = GONE, t_s
        self.n_run -= 1
        if self.trace is not None:
            self.trace[-1].finished.append(r.ident)
        self.complete(r, t_s)

    # --- runs ----------------------------------------------------------------------------------
    def start_run(self, now_s: float, k: int) -> None:
        n = self.n_dec
        t0 = self.cost.decode_s(n, self.ctx_base + n * self.g)
        d = self.cost.gamma_s * n if self.cost.kind == 2 else 0.0
        self.state, self.start_s, self.run_k, self.run_t0_s, self.run_d_s = RUN, now_s, k, t0, d
        self.end_s = now_s + k * t0 + d * k * (k - 1) / 2

    def commit_until(self, now_s: float) -> None:
        """Book the decode steps of the current run that have ended by ``now_s``."""
        if self.state != RUN or now_s <= self.start_s:
            return
        done = min(self.iterations_done(now_s - self.start_s), self.run_k - 1)
        if done > 0:
            self.commit_run(done, now_s)

    def commit_run(self, j: int, now_s: float) -> None:
        t0, d = self.run_t0_s, self.run_d_s
        full = j >= self.run_k
        end_s = now_s if full else self.start_s + j * t0 + d * j * (j - 1) / 2
        self.book_decodes(t0, d, j, now_s, end_s)
        self.start_s, self.run_k, self.run_t0_s = end_s, self.run_k - j, t0 + j * d

    def cut_run(self, now_s: float) -> bool:
        """End the run with the step in progress at ``now_s`` so a newcomer can join then.

        Nothing is booked here: the shortened run is booked once, at its new end. False when the
        run had not started a step yet (the caller plans afresh at ``now_s``).
        """
        elapsed_s = now_s - self.start_s
        if elapsed_s <= 0:
            return False
        k = min(self.iterations_done(elapsed_s) + 1, self.run_k)
        t0, d = self.run_t0_s, self.run_d_s
        self.run_k = k
        self.end_s = self.start_s + k * t0 + d * k * (k - 1) / 2
        return True

    def iterations_done(self, elapsed_s: float) -> int:
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

    # --- metrics -------------------------------------------------------------------------------
    def token_out(self, r: Request, t_s: float) -> None:
        """``r`` finished a (re)prefill at ``t_s`` and sampled a token: its first or, after a
        preemption, the next one (the gap since its last token is an inter-token latency)."""
        r.generated += 1
        self.metrics.generation_tokens += 1
        if r.first_token_s < 0:
            r.first_token_s = t_s
            self.metrics.prompt_tokens += r.in_tokens
            self.metrics.ttft.observe(t_s - r.arrival_s)
            self.sink.first_token(t_s, t_s - r.arrival_s)
        else:
            self.metrics.itl.observe(t_s - r.last_s)
            self.sink.itl(t_s, t_s - r.last_s, 1)

    def complete(self, request: Request, t_s: float) -> None:
        m = self.metrics
        m.success_by_reason[request.finish_reason] += 1
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
