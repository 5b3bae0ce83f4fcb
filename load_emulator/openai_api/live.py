"""The fleet engine on the wall clock, taking requests from HTTP handlers and streaming tokens.

:class:`LiveEngine` owns the engine's time: virtual seconds are wall seconds since it started
(``clock() - origin``). Handlers call :meth:`LiveEngine.submit` (it advances the engine to now,
then queues the request there) and wait on the :class:`TokenStream` it returns. :meth:`run`
wakes at the end of every step in progress (:meth:`ReplicaSim.next_step_end_s`), advances the
engine to now and wakes the streams that got tokens, so a token leaves at its step's end plus the
time the event loop takes to notice. That lateness is the *lag*: for each wake planned at a step
end, wall time of the wake minus that step end (:class:`LagStats`); the engine's own clock and
its /metrics never see it, a client does.

Between steps it sleeps at most ``max_sleep_s``; only replicas holding open streams set wakes. A
scrape (``catch_up``) advances the engine too. Pattern arrivals (the demo's fleet) are processed
by the same ``advance_to``; another driver may advance the engine as well (the demo's loop), as
long as it never asks for a time behind ``engine.now_s``.

A client that disconnects aborts its request, as vLLM does: a queued one leaves the queue, a
running one leaves at the end of its step with its KV blocks freed (``finished_reason`` ``abort``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from load_emulator.engine import FleetEngine
from load_emulator.replica import ReplicaSim, Request

MAX_SLEEP_S = 0.05
LAG_SAMPLES = 100_000
"""Most lag samples kept (oldest dropped), so a long run stays bounded in memory."""


@dataclass
class LagStats:
    """Lateness of the engine's wakes behind the step ends they were planned for (seconds)."""

    samples_s: list[float] = field(default_factory=list)
    count: int = 0
    max_s: float = 0.0
    sum_s: float = 0.0

    def observe(self, lag_s: float) -> None:
        self.count += 1
        self.sum_s += lag_s
        self.max_s = max(self.max_s, lag_s)
        if len(self.samples_s) >= LAG_SAMPLES:
            del self.samples_s[: LAG_SAMPLES // 10]
        self.samples_s.append(lag_s)

    def summary(self) -> dict[str, float]:
        """Count, mean, p50, p99 and max lag in ms (zeros before the first sample)."""
        ordered = sorted(self.samples_s)

        def pct(q: float) -> float:
            return 1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0

        mean_ms = 1000 * self.sum_s / self.count if self.count else 0.0
        return {"wakes": self.count, "mean_ms": mean_ms, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "max_ms": 1000 * self.max_s}  # fmt: skip


class TokenStream:
    """One request's progress as the engine books it; ``ready`` is set when tokens came or it ended."""

    def __init__(self, request: Request, replica: ReplicaSim) -> None:
        self.request = request
        self.replica = replica
        self.ready = asyncio.Event()
        self.seen = 0

    @property
    def produced(self) -> int:
        """Output tokens produced so far (as of the engine's last booking)."""
        return min(self.replica.tokens_out(self.request), self.request.out_tokens)

    @property
    def finished(self) -> bool:
        return self.request.finish_s >= 0

    @property
    def aborted(self) -> bool:
        return self.request.aborted

    @property
    def done(self) -> bool:
        return self.finished or self.aborted

    def virtual_times(self) -> tuple[float, float, float]:
        """``(arrival_s, first_token_s, finish_s)`` in engine seconds (-1 where not yet)."""
        r = self.request
        return r.arrival_s, r.first_token_s, r.finish_s


class LiveEngine:
    def __init__(
        self,
        engine: FleetEngine,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_sleep_s: float = MAX_SLEEP_S,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.origin = clock() - engine.now_s
        self.max_sleep_s = max_sleep_s
        self.lag = LagStats()
        self.streams: set[TokenStream] = set()
        self._wake = asyncio.Event()

    def now_s(self) -> float:
        return self.clock() - self.origin

    def catch_up(self) -> float:
        """Advance the engine to now and book the steps ended by then; returns now (engine s)."""
        now_s = max(self.now_s(), self.engine.now_s)
        self.engine.advance_to(now_s)
        self.engine.flush()
        return now_s

    def submit(
        self,
        server: str,
        in_tokens: int,
        out_tokens: int,
        pod: str | None = None,
        finish_reason: str = "stop",
    ) -> TokenStream | None:
        """Queue a request arriving now; None when no replica takes it (see ``FleetEngine.submit``)."""
        self.catch_up()
        placed = self.engine.submit(server, in_tokens, out_tokens, pod, finish_reason)
        if placed is None:
            return None
        stream = TokenStream(*placed)
        self.streams.add(stream)
        self._wake.set()
        return stream

    def abort(self, server: str, stream: TokenStream) -> None:
        """Its client went away: the engine aborts the request now, as vLLM does."""
        self.catch_up()
        if not stream.done:
            self.engine.abort(server, stream.request, stream.replica)
            self._wake.set()
        self.streams.discard(stream)

    def _notify(self) -> None:
        for stream in list(self.streams):
            produced = stream.produced
            if produced > stream.seen or stream.done:
                stream.seen = produced
                stream.ready.set()
            if stream.done:
                self.streams.discard(stream)

    def _next_step_end_s(self, now_s: float) -> float:
        """The next step end of a replica that holds an open stream (others need no wake)."""
        replicas = {id(s.replica): s.replica for s in self.streams}
        return min((r.next_step_end_s(now_s) for r in replicas.values()), default=math.inf)

    async def run(self, stop: asyncio.Event, *, duration_s: float = math.inf) -> None:
        """Pace the engine until ``stop`` is set or ``duration_s`` passed (engine seconds)."""
        end_s = self.engine.now_s + duration_s
        planned_s = math.inf
        while not stop.is_set():
            now_s = self.catch_up()
            if planned_s <= now_s:
                self.lag.observe(now_s - planned_s)
            self._notify()
            if now_s >= end_s:
                return
            next_s = min(self._next_step_end_s(now_s), end_s)
            sleep_s = min(max(next_s - self.now_s(), 0.0), self.max_sleep_s)
            planned_s = next_s if next_s - now_s <= self.max_sleep_s else math.inf
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), sleep_s)
                planned_s = math.inf  # woken by a submit, not at a step end
            except TimeoutError:
                pass
