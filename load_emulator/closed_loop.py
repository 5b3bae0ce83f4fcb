"""Closed-loop clients against one emulated replica at virtual time, with every token's time.

Role: what a streaming client would see of one replica (when each output token is out), without
a network or a wall clock: the fit's unit tests and the profile benchmark's reference use it.
``c`` clients each send a request, wait for its last token, and send the next one ``think_s``
later, for ``duration_s`` of virtual time per level; then the replica drains (no new requests)
and the next level starts when it is idle. Pure: no I/O, no clock reads.

A token's time is the end of the step that yields it; a run of ``k`` identical decode steps
(:mod:`load_emulator.replica_book`) yields one token per request at each of its step ends,
``start + j*t0 + d*j*(j-1)/2`` for ``j = 1..k``.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from load_emulator.replica import ReplicaSim
from load_emulator.replica_book import DECODE, GONE, IDLE, RUN, Request

MAX_EVENTS = 5_000_000
"""Bound on the events of one run (a level of 64 clients over a virtual minute needs ~1e5)."""


@dataclass(frozen=True, slots=True)
class LoopLevel:
    concurrency: int
    duration_s: float
    in_tokens: int
    out_tokens: int


@dataclass(slots=True)
class Streamed:
    """One request as a client saw it (virtual seconds)."""

    level: int
    sent_s: float
    in_tokens: int
    out_tokens: int
    token_s: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _Live:
    request: Request
    record: Streamed
    client: int
    seen: int = 0


def run_closed_loop(
    replica: ReplicaSim,
    levels: Sequence[LoopLevel],
    *,
    think_s: float = 0.001,
    start_s: float = 0.0,
    out_spread: float = 0.0,
    seed: int = 0,
) -> list[Streamed]:
    """Every request of every level, in the order sent. ``out_spread`` s draws each request's
    output length uniformly from ``out * (1 +/- s)`` (seeded), as the profiler's sweep does."""
    rng = random.Random(seed)
    out: list[Streamed] = []
    now_s = start_s
    seq = 0
    for index, level in enumerate(levels):
        end_s = now_s + level.duration_s
        arrivals: list[tuple[float, int, int]] = [(now_s, i, i) for i in range(level.concurrency)]
        live: dict[int, _Live] = {}
        for _ in range(MAX_EVENTS):
            next_t = arrivals[0][0] if arrivals else math.inf
            if replica.state == IDLE and not arrivals:
                break
            if next_t <= replica.end_s:
                t_s, _, client = heapq.heappop(arrivals)
                seq += 1
                tokens = spread_length(level.out_tokens, out_spread, rng)
                request = Request(seq, t_s, level.in_tokens, tokens)
                record = Streamed(index, t_s, level.in_tokens, tokens)
                out.append(record)
                live[seq] = _Live(request, record, client)
                replica.enqueue(request, t_s)
                now_s = t_s
                continue
            now_s = replica.end_s
            run = _run_ends(replica)
            replica.on_step_end()
            for key, item in list(live.items()):
                count = _tokens(replica, item.request)
                new = count - item.seen
                if new > 0:
                    times = run[:new] if new > 1 else [now_s]
                    item.record.token_s.extend(times)
                    item.seen = count
                if item.request.state == GONE:
                    del live[key]
                    nxt = now_s + think_s
                    if nxt < end_s:
                        heapq.heappush(arrivals, (nxt, seq * 1000 + item.client, item.client))
        else:
            raise RuntimeError(f"closed loop level {index} did not drain within {MAX_EVENTS} events")
        now_s = max(now_s, end_s)
    return out


def spread_length(out_tokens: int, spread: float, rng: random.Random) -> int:
    """``round(out * (1 + spread*u))``, u uniform in [-1, 1], at least 1."""
    if spread <= 0:
        return out_tokens
    return max(1, round(out_tokens * (1.0 + spread * rng.uniform(-1.0, 1.0))))


def _tokens(replica: ReplicaSim, r: Request) -> int:
    if r.state == GONE:
        return r.out_tokens
    if r.state == DECODE:
        return r.gen0 + replica.g - r.join_g
    return r.generated


def _run_ends(replica: ReplicaSim) -> list[float]:
    """End times of the steps of the run in progress (one entry for a single step)."""
    if replica.state != RUN:
        return [replica.end_s]
    t0, d, start = replica.run_t0_s, replica.run_d_s, replica.start_s
    return [start + j * t0 + d * j * (j - 1) / 2 for j in range(1, replica.run_k + 1)]
