"""The profile sweep: closed-loop clients, level after level, bounded in time and count.

Role: the I/O half of a profile (:mod:`advisor.profile` calls :func:`run_sweep`; the fitting is
:mod:`optimizer.profiling`'s). For each request shape (prompt and output tokens) the concurrency
levels run in increasing order: ``c`` clients each stream a request and send the next when the
last token is in, for ``level_s`` seconds; then no new request is sent and the level drains
(at most ``drain_s``). A shape stops early once it has saturated (two levels with requests
waiting and flat throughput), and the whole sweep stops at ``max_duration_s`` or ``max_requests``.
When the endpoint has vLLM's ``/metrics``, it is read at two thirds of every level (requests
running and waiting) and before and after the sweep.

A progress bar on stderr shows levels done, the current shape and clients, and elapsed time.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import aiohttp

from advisor.client import Streamed, stream_completion
from advisor.vllm_metrics import MetricsSample, scrape
from optimizer.profiling.levels import Level, summarize
from optimizer.profiling.levels import saturation as saturation_of
from optimizer.profiling.timeline import RequestTimeline


@dataclass(frozen=True, slots=True)
class SweepPlan:
    shapes: tuple[tuple[int, int], ...]
    """(prompt tokens, output tokens) per shape."""
    concurrency: tuple[int, ...]
    level_s: float = 8.0
    drain_s: float = 60.0
    max_duration_s: float = 540.0
    max_requests: int = 20_000

    @property
    def levels(self) -> int:
        return len(self.shapes) * len(self.concurrency)


@dataclass(slots=True)
class SweepResult:
    timelines: list[RequestTimeline] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    samples: list[tuple[int, MetricsSample]] = field(default_factory=list)
    """(level index, metrics read during it); level -1: before the sweep, -2: after it."""
    errors: list[str] = field(default_factory=list)
    stopped: str = ""


class Progress:
    """``[######......] 6/20 levels  in 512 out 128  c=16  41 s`` on one rewritten line."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total, self.stream, self.width = total, stream or sys.stderr, width
        self.started = time.perf_counter()

    def show(self, done: int, what: str) -> None:
        filled = self.width * done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.started
        self.stream.write(f"\r[{bar}] {done}/{self.total} levels  {what:<28} {elapsed:5.0f} s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


async def run_sweep(
    session: aiohttp.ClientSession, url: str, model: str, plan: SweepPlan, *, progress: Progress | None = None
) -> SweepResult:
    """Run ``plan`` against ``url`` (requests that fail stop the sweep; their error is kept)."""
    return await _Sweep(session, url, model, plan).run(progress)


class _Sweep:
    def __init__(self, session: aiohttp.ClientSession, url: str, model: str, plan: SweepPlan) -> None:
        self.session, self.url, self.model, self.plan = session, url, model, plan
        self.result = SweepResult()
        self.raw: list[tuple[int, Streamed]] = []
        self.seed = 1

    async def run(self, progress: Progress | None) -> SweepResult:
        result, plan = self.result, self.plan
        await self._sample(-1)
        started = time.perf_counter()
        done = 0
        for in_tokens, out_tokens in plan.shapes:
            shape_levels: list[Level] = []
            for clients in plan.concurrency:
                if time.perf_counter() - started > plan.max_duration_s or len(self.raw) >= plan.max_requests:
                    bound = f"{plan.max_duration_s:g} s or {plan.max_requests} requests"
                    result.stopped = f"stopped at the sweep's bound ({bound})"
                    break
                if progress:
                    progress.show(done, f"in {in_tokens} out {out_tokens}  c={clients}")
                shape_levels.append(await self._level(clients, in_tokens, out_tokens))
                done += 1
                if result.errors:
                    result.stopped = f"requests failed: {result.errors[0]}"
                    break
                if _saturated(self.raw, shape_levels):
                    done += len(plan.concurrency) - len(shape_levels)
                    break
            if result.stopped:
                break
        if progress:
            progress.show(done, "done")
            progress.close()
        await self._sample(-2)
        result.timelines = [_timeline(index, r) for index, r in self.raw]
        return result

    async def _level(self, clients: int, in_tokens: int, out_tokens: int) -> Level:
        plan, result = self.plan, self.result
        index = len(result.levels)
        t0 = time.perf_counter()
        level = Level(index, clients, in_tokens, out_tokens, t0, t0 + plan.level_s)
        sampler = asyncio.create_task(self._sample(index, delay_s=plan.level_s * 2 / 3))

        async def client() -> None:
            while time.perf_counter() < level.end_s and len(self.raw) < plan.max_requests:
                self.seed += 1
                record = await stream_completion(
                    self.session,
                    self.url,
                    self.model,
                    in_tokens=in_tokens,
                    out_tokens=out_tokens,
                    seed=self.seed,
                )
                self.raw.append((index, record))
                if record.error:
                    result.errors.append(record.error)
                    return

        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        _, pending = await asyncio.wait(tasks, timeout=plan.level_s + plan.drain_s)
        for task in pending:
            task.cancel()
        await sampler
        result.levels.append(level)
        return level

    async def _sample(self, level: int, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        sample = await scrape(self.session, self.url)
        if sample is not None:
            self.result.samples.append((level, sample))


def _timeline(level: int, r: Streamed) -> RequestTimeline:
    return RequestTimeline(r.sent_s, r.in_tokens, tuple(r.token_s), level, r.complete and not r.error)


def _saturated(raw: Sequence[tuple[int, Streamed]], levels: Sequence[Level]) -> bool:
    """Whether the shape's levels so far end in a saturated pair (stop climbing)."""
    if len(levels) < 2:
        return False
    wanted = {lv.index for lv in levels}
    timelines = [_timeline(i, r) for i, r in raw if i in wanted]
    return all(s.saturated for s in saturation_of(summarize(timelines, levels)))
