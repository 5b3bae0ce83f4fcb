"""The timer and the coalescing of on-demand cycles. The loop is the only caller of ``run_cycle``.

- Every ``period_s`` seconds (0: never on a timer) a cycle runs; the sleep is "timeout or event",
  so ``request()`` (``/invoke``) and ``stop()`` take effect at once.
- ``request()`` returns the future of the cycle in flight, if there is one (callers JOIN it), or of
  the next cycle, which starts immediately. So N concurrent callers cause exactly one cycle.
- The loop never dies: an exception escaping ``run_cycle`` is logged and becomes a failed report
  for whoever waited; the loop sleeps and goes on.
- A timed cycle restarts the period; an on-demand cycle does too (no double cycle right after).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from contract.cycle import CycleReport, StageFailure

log = structlog.get_logger()
RunCycle = Callable[[float], Awaitable[CycleReport]]


class LoopStoppedError(RuntimeError):
    """The loop is shutting down; no further cycle will run."""


class CycleLoop:
    def __init__(self, run_cycle: RunCycle, period_s: float, clock: Callable[[], float] = time.time) -> None:
        self._run_cycle = run_cycle
        self.period_s = period_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: asyncio.Future[CycleReport] | None = None
        self._next: asyncio.Future[CycleReport] | None = None
        self.cycle_started_at_s: float | None = None  # set while a cycle runs
        self.cycles_run = 0
        self.last_report: CycleReport | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done() and not self._stopping.is_set()

    @property
    def in_flight(self) -> bool:
        return self._in_flight is not None and not self._in_flight.done()

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.get_running_loop().create_task(self.run(), name="inferno-cycle-loop")
        return self.task

    def request(self) -> asyncio.Future[CycleReport]:
        """The cycle to wait for: the one in flight, else the next one (started now)."""
        if self._stopping.is_set():
            raise LoopStoppedError("shutting down")
        if self._in_flight is not None and self.in_flight:
            return self._in_flight
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        self._wake.set()
        return self._next

    async def _sleep(self, first: bool) -> None:
        """Until the period passes, a request or a stop (a timer cycle runs at once on start)."""
        if first and self.period_s > 0:
            return
        timeout = self.period_s if self.period_s > 0 else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                wake = asyncio.ensure_future(self._wake.wait())
                stop = asyncio.ensure_future(self._stopping.wait())
                try:
                    await asyncio.wait({wake, stop}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    wake.cancel()
                    stop.cancel()

    async def run(self) -> None:
        first = True
        while not self._stopping.is_set():
            await self._sleep(first)
            first = False
            if self._stopping.is_set():
                break
            self._wake.clear()
            future = self._next or asyncio.get_running_loop().create_future()
            self._next = None
            self._in_flight = future
            now_s = self._clock()
            self.cycle_started_at_s = now_s
            try:
                report = await self._run_cycle(now_s)
            except asyncio.CancelledError:
                future.set_exception(LoopStoppedError("cycle cancelled at shutdown"))
                future.exception()  # mark retrieved: nobody may be waiting
                raise
            except Exception as exc:  # never let the loop die
                log.exception("cycle_crashed", error=type(exc).__name__)
                failure = StageFailure(stage="collect", kind="permanent", message=f"cycle crashed: {exc!r}")
                report = CycleReport(
                    cycle_id=f"crashed-{self.cycles_run + 1}",
                    started_at_s=now_s,
                    outcome="failed",
                    errors=[failure],
                )
            finally:
                self.cycle_started_at_s = None
                self.cycles_run += 1
            self.last_report = report
            future.set_result(report)
        if self._next is not None and not self._next.done():
            self._next.set_exception(LoopStoppedError("shutting down"))
            self._next.exception()

    async def stop(self, grace_s: float) -> None:
        """Stop waking; let a running cycle finish within ``grace_s``, then cancel it."""
        self._stopping.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=grace_s)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
