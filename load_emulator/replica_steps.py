"""Scheduling of :class:`load_emulator.replica.ReplicaSim`: which requests a step computes.

Three modes (the replica's ``mode``), each vLLM's behaviour as :mod:`load_emulator.sched_config`
cites it; durations are :mod:`load_emulator.timing`'s.

- **V1** (iteration and step schemas, chunked): one ordered pass over the running requests (in
  the order they were admitted), each getting ``min(tokens it lacks, long-prefill cap, budget
  left)`` tokens, a decoder one; each takes the KV blocks its computed tokens need after the step.
  When a request cannot get its blocks, the newest running request is preempted (recompute: its
  blocks freed, its computed tokens reset, back to the front of the queue), possibly itself,
  which ends the pass. Then, unless something was preempted, waiting requests are admitted in
  order while the budget, ``max_num_seqs`` and the blocks for their whole prompt allow. A request
  that completes its prompt (plus, after a preemption, its generated tokens) samples a token at
  the end of the step.
- **V0** (prefill-decode schema, or prefill-first): if waiting requests fit (seats, blocks with
  the watermark, whole prompts within the budget), the step prefills them alone; otherwise every
  running request decodes, with the same preemption of the newest while no block is free at its
  turn (V0 asks for a free block even when the token fits the request's last one).
- **decode-only** (decode-only schema): no prefill cost and no KV limit; waiting requests join at
  a step boundary while the batch has room, their first token comes out of their first step.

A run of ``k`` pure decode steps is booked as one event when it is exact: no request prefilling,
the decoders within the budget, no waiting request that could be admitted (the free blocks only
shrink during a run, so one that cannot be admitted at its start cannot later), no request
finishing before its end and every block the decoders need in it free. Anything else is planned
one step at a time; so is every step when a step trace is recorded.
"""

from __future__ import annotations

import heapq

from load_emulator.replica_book import (
    DECODE,
    GONE,
    IDLE,
    PREFILL,
    RUN,
    SINGLE,
    WAITING,
    ReplicaBook,
    Request,
    StepTrace,
)
from load_emulator.sched_config import SchedulerLimits
from load_emulator.timing import PREFILL_DECODE

MODE_DECODE_ONLY, MODE_V0, MODE_V1 = 0, 1, 2


class ReplicaSteps(ReplicaBook):
    limits: SchedulerLimits
    mode: int
    max_batch: int
    token_budget: int
    order: list[Request]
    sched: list[tuple[Request, int]]
    step_skip: list[Request]
    leaving: list[Request]
    step_decodes: int
    watermark_blocks: int
    spare_blocks: int
    """Blocks a decode needs free beyond its own (V0 asks for one; V1 none)."""

    # --- planning -------------------------------------------------------------------------------
    def plan(self, now_s: float) -> None:
        """Choose the step starting at ``now_s`` (or go idle)."""
        if self.mode == MODE_V1:
            if self.n_run == 0 and not self.waiting:
                self.state, self.end_s = IDLE, float("inf")
                return
            if (
                self.trace is None
                and self.n_pref == 0
                and self.n_dec <= self.token_budget
                and not self._admissible_v1(self.token_budget - self.n_dec)
                and self._try_run(now_s)
            ):
                return
            self._start_pass(now_s, self.token_budget, admit=True)
            return
        if self.mode == MODE_V0:
            if self.waiting and self.n_run < self.max_batch and self._start_prefill_v0(now_s):
                return
            if self.n_dec == 0:
                self.state, self.end_s = IDLE, float("inf")
                return
            if self.trace is None and self._try_run(now_s):
                return
            self._start_pass(now_s, 1 << 62, admit=False)
            return
        self._plan_decode_only(now_s)

    def could_admit(self) -> bool:
        """Whether a waiting request might join at the next step boundary (cuts a run short)."""
        return self.n_run < self.max_batch

    def _try_run(self, now_s: float) -> bool:
        heap = self.decoding
        while heap and heap[0][2].entry is not heap[0]:
            heapq.heappop(heap)
        if not heap:
            return False
        k = heap[0][0] - self.g
        n = self.n_dec
        spare = self.spare_blocks
        # Cheap sufficient test first: each decoder needs at most k // block + 1 new blocks.
        if self.kv_on and n * (k // self.block_tokens + 1) > self.free_lower() - spare:
            k = self.run_length_fitting(k, spare)
        if k < 1:
            return False
        self.start_run(now_s, k)
        return True

    def _admissible_v1(self, budget: int) -> bool:
        """Whether the head of the queue would be admitted after every decoder got its token."""
        if not self.waiting or self.n_run >= self.max_batch or budget <= 0:
            return False
        r = self.waiting[0]
        tokens = r.in_tokens + r.generated
        chunk = tokens
        threshold = self.limits.long_prefill_token_threshold
        if 0 < threshold < chunk and self.n_run + len(self.waiting) > 1:
            chunk = threshold
        chunk = min(chunk, budget)
        need = self.blocks(tokens if self.limits.reserve_full_prompt else chunk)
        need += self.watermark_blocks if self.n_run else 0
        return need <= self.free_lower() or need <= self.cap_blocks - self.used_blocks

    def _plan_decode_only(self, now_s: float) -> None:
        while self.waiting and self.n_dec < self.max_batch:
            r = self.waiting.popleft()
            r.admitted_s = now_s
            r.computed = r.in_tokens
            self.metrics.prompt_tokens += r.in_tokens
            self.n_run += 1
            self.order.append(r)
            self.pre_blocks += self.blocks(r.computed)  # moved to the decoders' count by attach
            self.attach(r, now_s, gap=False)
            self.first_pending.append(r)
        if len(self.order) > 2 * self.n_run + 64:
            self.order = [r for r in self.order if self.is_running(r)]
        if self.n_dec:
            self.start_run(now_s, 1 if self.first_pending else self.top_finish_g() - self.g)
        else:
            self.state, self.end_s = IDLE, float("inf")

    def _admit(self, r: Request, now_s: float) -> None:
        self.waiting.popleft()
        r.state, r.computed = PREFILL, 0
        if r.admitted_s < 0:
            r.admitted_s = now_s  # vLLM's queue time ignores re-admissions after a preemption
        self.n_run += 1
        self.n_pref += 1
        self.order.append(r)
        if len(self.order) > 2 * self.n_run + 64:
            self.order = [q for q in self.order if self.is_running(q)]

    def _preempt(self, victim: Request) -> int:
        """Recompute preemption: free the victim's blocks, back to the front of the queue."""
        if victim.state == DECODE:
            self.detach(victim)
        else:
            self.n_pref -= 1
        freed = self.blocks(victim.computed)
        self.pre_blocks -= freed
        victim.state, victim.computed = 0, 0
        victim.preemptions += 1
        self.metrics.preemptions += 1
        self.n_run -= 1
        self.waiting.appendleft(victim)
        return freed

    def _leave(self, now_s: float) -> None:
        """The aborted requests leave (:meth:`abort`): their blocks freed, counted as aborted."""
        for r in self.leaving:
            if r.state == DECODE:
                self.detach(r)
            elif r.state == PREFILL:
                self.n_pref -= 1
            elif r.state == WAITING and r in self.waiting:  # preempted meanwhile
                self.waiting.remove(r)
                self._count_abort(r, now_s)
                continue
            else:
                continue  # finished in the step
            self.pre_blocks -= self.blocks(r.computed)
            self.n_run -= 1
            self._count_abort(r, now_s)
        self.leaving = []

    def _count_abort(self, request: Request, now_s: float) -> None:
        request.state, request.aborted = GONE, True
        self.metrics.success_by_reason["abort"] += 1
        self.sink.aborted(now_s)

    def _running_order(self) -> list[Request]:
        order = self.order
        if len(order) != self.n_run:
            order = self.order = [r for r in order if r.state in (PREFILL, DECODE)]
        return order

    def _start_pass(self, now_s: float, budget: int, *, admit: bool) -> None:  # noqa: PLR0915
        """One step planned as vLLM's scheduler does it (see the module doc)."""
        order = self._running_order()
        threshold = self.limits.long_prefill_token_threshold
        if self.n_run + len(self.waiting) <= 1:
            threshold = 0
        free = self.cap_blocks - self.used_blocks
        g, bs = self.g, self.block_tokens
        # V0's block manager lets a sequence append only while a block is free, even when its
        # token fits its last block (``can_append_slots``: one block "touched" per decode).
        touch = self.spare_blocks
        sched: list[tuple[Request, int]] = []
        preempted: list[Request] = []
        decodes = prefill_tokens = context = 0
        i = 0
        stop = False
        while i < len(order) and budget > 0:
            r = order[i]
            if r.state == DECODE:
                new, computed = 1, r.in_tokens + r.gen0 + g - r.join_g - 1
            else:
                computed = r.computed
                new = r.in_tokens + r.generated - computed
                if 0 < threshold < new:
                    new = threshold
                new = min(new, budget)
            need = -(-(computed + new) // bs) - -(-computed // bs)
            while max(need, touch) > free:
                victim = order.pop()
                free += self._preempt(victim)
                preempted.append(victim)
                if victim is r:
                    stop = True
                    break
            if stop:
                break
            free -= need
            if r.state != DECODE:
                self.pre_blocks += need
            context += computed + new
            if r.state == DECODE or (new == 1 and r.in_tokens <= computed == r.in_tokens + r.generated - 1):
                decodes += 1  # a one-token chunk that ends a recompute runs as a decode
            else:
                prefill_tokens += new
            if r.state != DECODE:
                sched.append((r, new))
            budget -= new
            i += 1
        skipped = [r for r in order[i:] if r.state == DECODE]
        if admit and not preempted:
            watermark = self.watermark_blocks
            reserve = self.limits.reserve_full_prompt
            while budget > 0 and self.waiting and self.n_run < self.max_batch:
                r = self.waiting[0]
                tokens = r.in_tokens + r.generated
                new = tokens
                if 0 < threshold < new:
                    new = threshold
                new = min(new, budget)
                w = watermark if self.n_run else 0
                need = -(-new // bs)
                if (reserve and -(-tokens // bs) + w > free) or need + w > free:
                    break
                self._admit(r, now_s)
                free -= need
                self.pre_blocks += need
                context += new
                prefill_tokens += new
                sched.append((r, new))
                budget -= new
        self.sched, self.step_skip, self.step_decodes = sched, skipped, decodes
        if self.trace is not None:
            listed = [(r.ident, 1 if r.state == DECODE else n) for r, n in self._in_order(self.order, sched)]
            self.trace.append(StepTrace(now_s, listed, [r.ident for r in preempted], self.cap_blocks - free))
        if not sched and not decodes:
            # Nothing could run (every block held by requests that cannot progress): stay idle
            # until an arrival or a finish changes that; cannot happen with vLLM's admission rule.
            self.state, self.end_s = IDLE, float("inf")
            return
        if prefill_tokens:
            duration_s = self.cost.mixed_s(decodes, prefill_tokens, context)
        else:
            duration_s = self.cost.decode_s(decodes, context)
        self.state, self.start_s, self.end_s = SINGLE, now_s, now_s + duration_s

    def _in_order(self, order: list[Request], sched: list[tuple[Request, int]]) -> list[tuple[Request, int]]:
        """The scheduled requests in scheduling order (trace only): running ones, then admitted."""
        chunk = {id(r): n for r, n in sched}
        head = self.step_skip
        out: list[tuple[Request, int]] = []
        for r in order:
            if r.state == DECODE and r not in head:
                out.append((r, 1))
            elif id(r) in chunk:
                out.append((r, chunk[id(r)]))
        return out

    def _start_prefill_v0(self, now_s: float) -> bool:
        """A prefill-only step for the waiting requests that fit; False when none does."""
        free, exact = self.free_lower(), False
        watermark = self.watermark_blocks
        tokens_total = 0
        sched: list[tuple[Request, int]] = []
        while self.waiting and self.n_run < self.max_batch:
            r = self.waiting[0]
            tokens = r.in_tokens + r.generated
            if sched and tokens_total + tokens > self.token_budget:
                break
            need = self.blocks(tokens)
            if need + watermark > free:
                if exact:
                    break
                free, exact = self.cap_blocks - self.used_blocks, True
                if need + watermark > free:
                    break
            self._admit(r, now_s)
            free -= need
            self.pre_blocks += need
            tokens_total += tokens
            sched.append((r, tokens))
        if not sched:
            return False
        self.sched, self.step_skip, self.step_decodes = sched, [], 0
        if self.trace is not None:
            listed = [(r.ident, n) for r, n in sched]
            self.trace.append(StepTrace(now_s, listed, [], self.used_blocks))
        if self.cost.kind == PREFILL_DECODE:
            duration_s = self.cost.prefill_s(tokens_total, self.n_run)
        else:
            duration_s = self.cost.mixed_s(0, tokens_total, tokens_total)
        self.state, self.start_s, self.end_s = SINGLE, now_s, now_s + duration_s
        return True

    # --- booking --------------------------------------------------------------------------------
    def commit_single(self, now_s: float) -> None:
        """The single step ends at ``now_s``: decoders and prefill chunks take effect."""
        lasts: list[tuple[Request, float]] = []
        for r in self.step_skip:
            if r.state == DECODE:
                self.detach(r)
                lasts.append((r, r.last_s))
        if self.step_decodes:
            self.book_decodes(now_s - self.start_s, 0.0, 1, now_s, now_s)
        for r, last_s in lasts:
            self.attach(r, last_s)
        for r, new in self.sched:
            if r.state != PREFILL:
                continue  # preempted later in the same pass (cannot happen: victims come after)
            r.computed += new
            if r.computed < r.in_tokens + r.generated:
                continue
            self.n_pref -= 1
            self.token_out(r, now_s)
            if r.generated >= r.out_tokens:
                self.finish(r, now_s, decoding=False)
            else:
                self.attach(r, now_s)
        self.sched = []
        self.step_skip = []
        if self.trace is not None and self.trace:
            step = self.trace[-1]
            step.duration_s = now_s - step.start_s
            step.kv_blocks_after = self.used_blocks

    def on_step_end(self) -> None:
        """The current step ended at ``end_s``: book it and plan the next one from there."""
        now_s = self.end_s
        if self.state == RUN:
            self.commit_run(self.run_k, now_s)
        elif self.state == SINGLE:
            self.commit_single(now_s)
        if self.leaving:
            self._leave(now_s)
        self.plan(now_s)

    def is_running(self, r: Request) -> bool:
        return r.state in (PREFILL, DECODE)

    def all_requests(self) -> list[Request]:
        """Running then waiting requests (for aborting them)."""
        return [r for r in self.order if self.is_running(r)] + list(self.waiting)

    def idle_or_run(self) -> bool:
        return self.state in (IDLE, RUN)
