"""Recording Events off the cycle's critical path, like client-go's EventRecorder.

Called by :func:`actuator.executor.execute` (``await sink.record(namespace, event)`` once per
applied or failed patch) and wired by ``actuator/__main__.py``. Two sinks:

* :class:`EventBroadcaster` (the service's default): ``record`` puts the Event on a bounded queue
  and returns at once; ``concurrency`` background workers post it, once the cycle's patches are
  done (``paused()`` holds them back meanwhile). A full queue drops the Event
  and counts it, never blocks a cycle: an Event is a note for people, the patch is what counts.
  ``close(timeout_s)`` (the SIGTERM path) posts what is queued for at most ``timeout_s`` and counts
  the rest as ``lost``. At 1,000 Deployments the first cycle patches ~770 of them; posting their
  Events inside the cycle put ~1,540 API calls on its critical path instead of ~770.
* :class:`InlineEvents`: posts in the caller's task (``event_queue_size = 0``; in-process users
  such as the what-if runner and unit tests, which read the Events right after a cycle).

Both are best effort: a failed post is logged and counted, the change stands.

:class:`RepeatFilter` keeps an Event that says the same thing every cycle (a held server's
Warning) from being posted every cycle: the first, a changed message, then one per ``repeat_s``
while it lasts. With the collector's partial-metrics hold on a whole fleet (one Prometheus of an
HA pair gone), that is one Warning per server per ``repeat_s`` instead of one per server per cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

log = structlog.get_logger()
PostEvent = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class RepeatFilter:
    """Whether a repeating Event is due: the first for its key, a changed ``text``, or ``repeat_s``
    after the last one posted (0: every time). In memory: after a restart the first comes again.

    Example, ``repeat_s`` 600: "held" at t = 0 (due), 30 (not), 600 (due); "held, 2 pods" at 630
    (due: the text changed); the key forgotten at 660 (the hold ended), "held" at 690 (due)."""

    repeat_s: float
    _last: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def due(self, key: tuple[str, str], text: str, now_s: float) -> bool:
        last = self._last.get(key)
        if last is not None and last[0] == text and now_s - last[1] < self.repeat_s:
            return False
        self._last[key] = (text, now_s)
        return True

    def keep_only(self, keys: Collection[tuple[str, str]]) -> None:
        """Forget the keys not in ``keys`` (their Event stopped): when it comes back it is due at once."""
        self._last = {k: v for k, v in self._last.items() if k in keys}


@dataclass
class EventCounts:
    """Events by fate since start. ``dropped``: queue full; ``lost``: still queued at shutdown."""

    posted: int = 0
    failed: int = 0
    dropped: int = 0
    lost: int = 0


class EventSink(Protocol):
    """Where the executor hands each Event; ``record`` never raises."""

    async def record(self, namespace: str, event: dict[str, Any]) -> None: ...


class EventRecorder(EventSink, Protocol):
    """A sink the service owns: counted for /metrics, closed on shutdown."""

    counts: EventCounts

    def pending(self) -> int: ...

    def paused(self) -> contextlib.AbstractContextManager[None]: ...

    async def close(self, timeout_s: float) -> None: ...


async def _post(post: PostEvent, namespace: str, event: dict[str, Any], counts: EventCounts) -> None:
    try:
        await post(namespace, event)
    except Exception as exc:  # an Event is best effort: the change stands
        counts.failed += 1
        name = (event.get("involvedObject") or {}).get("name", "")
        log.warning("event_not_recorded", namespace=namespace, deployment=name, error=str(exc))
    else:
        counts.posted += 1


class InlineEvents:
    """Post each Event before ``record`` returns (inside the cycle)."""

    def __init__(self, post: PostEvent) -> None:
        self._post = post
        self.counts = EventCounts()

    async def record(self, namespace: str, event: dict[str, Any]) -> None:
        await _post(self._post, namespace, event, self.counts)

    def pending(self) -> int:
        return 0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        yield  # nothing queued: nothing to hold back

    async def close(self, timeout_s: float) -> None:
        return None


class EventBroadcaster:
    """A bounded queue of Events and ``concurrency`` workers posting them (started on first use)."""

    def __init__(self, post: PostEvent, *, queue_size: int, concurrency: int) -> None:
        if queue_size < 1 or concurrency < 1:
            raise ValueError(f"queue_size ({queue_size}) and concurrency ({concurrency}) must be >= 1")
        self._post = post
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=queue_size)
        self._concurrency = concurrency
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._pauses = 0
        self._open = asyncio.Event()  # cleared while a cycle's patches are in flight
        self._open.set()
        self._closed = False
        self.counts = EventCounts()

    async def record(self, namespace: str, event: dict[str, Any]) -> None:
        """Queue the Event; never waits for the API server. Dropped (and counted) when full or closed."""
        if self._closed:
            self._drop(event, "actuator shutting down")
            return
        try:
            self._queue.put_nowait((namespace, event))
        except asyncio.QueueFull:
            self._drop(event, f"event queue full ({self._queue.maxsize})")
            return
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._concurrency)]

    def _drop(self, event: dict[str, Any], why: str) -> None:
        self.counts.dropped += 1
        name = (event.get("involvedObject") or {}).get("name", "")
        log.warning("event_dropped", deployment=name, reason=why, dropped_total=self.counts.dropped)

    def pending(self) -> int:
        """Events queued or being posted."""
        return self._queue.qsize() + self._in_flight

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold posting back while the block runs (a cycle's patches): on a busy API server the
        Events would otherwise compete with the patches the cycle is waiting for."""
        self._pauses += 1
        self._open.clear()
        try:
            yield
        finally:
            self._pauses -= 1
            if self._pauses == 0:
                self._open.set()

    async def _work(self) -> None:
        while True:  # ends when cancelled by close()
            namespace, event = await self._queue.get()
            self._in_flight += 1
            try:
                await self._open.wait()
                await _post(self._post, namespace, event, self.counts)
            finally:
                self._in_flight -= 1
                self._queue.task_done()

    async def close(self, timeout_s: float) -> None:
        """Post what is queued for at most ``timeout_s`` seconds, then stop; the rest is ``lost``."""
        self._closed = True
        self._open.set()  # a pause must not hold the flush back
        if self._workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=timeout_s)
        lost = self.pending()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        while not self._queue.empty():  # counted as lost above; nothing will post them
            self._queue.get_nowait()
            self._queue.task_done()
        if lost:
            self.counts.lost += lost
            log.warning("events_lost_at_shutdown", lost=lost, timeout_s=timeout_s)
        log.info("events_closed", **vars(self.counts))
