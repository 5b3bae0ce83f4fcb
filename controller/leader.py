"""Leader election on a ``coordination.k8s.io/v1`` Lease, so that of two controller replicas only one acts.

Called by :mod:`controller.__main__` (when ``INFERNO_CONTROLLER_LEADER_ELECTION`` is true): the
elector's ``is_leader`` is the ``CycleRunner(is_leader=...)`` seam, so a standby runs no stage, and
the update stage is guarded again (:class:`LeaderGuardedStages`) in case leadership lapses mid-cycle.

Three parts:

- pure decision (time is an argument, no I/O): :func:`observe`, :func:`is_expired`, :func:`decide`,
  :func:`release_spec`. A foreign lease is judged **by our own clock only**: it expires
  ``leaseDurationSeconds`` after *we first saw its current version* (holder, renewTime,
  resourceVersion), never by comparing its ``renewTime`` with our clock, so clock skew between nodes
  cannot make us take a live lease (client-go does the same).
- :class:`LeaderElector`: the asyncio loop (get, decide, create/replace guarded by resourceVersion,
  every ``retry_period_s``), ``is_leader()`` and ``release()`` (graceful shutdown: holder cleared so
  the standby takes over at its next retry instead of waiting for expiry).
- :class:`controller.leader_kube.KubeLeasePort`: the kubernetes client in threads, bodies as JSON.

Safety: a leader acts only while ``now < start of its last successful write + renew_deadline_s``
(monotonic clock). The others cannot take the lease before they have seen it unchanged for
``lease_duration_s`` (> renew deadline), counted from when they saw that write, which is after it
started. So a leader that cannot renew stops acting at least ``lease_duration_s - renew_deadline_s``
(5 s by default) before anyone else may start. Defaults: 15 s / 10 s / 2 s, as in client-go.

Why not ``kubernetes.leaderelection``: its ``LeaderElection.run()`` blocks a thread for ever and
runs the leader's work in another thread via callbacks; it neither releases the lease on shutdown
nor can it be cancelled, and it would need a thread bridge into the aiohttp event loop. The
election is ~100 lines of decision plus three API calls, so an asyncio-native elector is simpler
and fully testable with a fake port and a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

import structlog

from contract.collect import CollectResult
from contract.data.system import SystemData
from contract.solution import Solution
from contract.update import UpdateRequest, UpdateResponse
from controller.cycle import Stages
from plumbing.client import ErrorKind, UpstreamError

log = structlog.get_logger()


@dataclass(frozen=True)
class LeaseTimings:
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration; got "
                f"{self.retry_period_s:g}s / {self.renew_deadline_s:g}s / {self.lease_duration_s:g}s"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec as read (or to write). Wall-clock times are informative only."""

    holder: str  # "" = free (released)
    duration_s: float
    acquire_time_s: float | None = None
    renew_time_s: float | None = None
    transitions: int = 0
    resource_version: str = ""  # "" for a record to create


@dataclass(frozen=True)
class Observation:
    """A record and the time (our monotonic clock) we first saw this version of it."""

    record: LeaseRecord
    observed_at_s: float


class Move(StrEnum):
    CREATE = "create"
    ACQUIRE = "acquire"
    RENEW = "renew"
    WAIT = "wait"


@dataclass(frozen=True)
class Decision:
    move: Move
    reason: str
    write: LeaseRecord | None = None  # what to create / replace with; None for WAIT


def observe(previous: Observation | None, record: LeaseRecord, now_s: float) -> Observation:
    """Keep the old observation time while the record is unchanged; restart it on any change."""
    key = (record.holder, record.renew_time_s, record.resource_version)
    if previous is not None:
        old = previous.record
        if (old.holder, old.renew_time_s, old.resource_version) == key:
            return Observation(record, previous.observed_at_s)
    return Observation(record, now_s)


def is_expired(obs: Observation, now_s: float) -> bool:
    """Free, or unchanged for its whole duration by our clock. E.g. seen at 100 s, 15 s: expired at 115 s."""
    return not obs.record.holder or now_s >= obs.observed_at_s + obs.record.duration_s


def decide(
    identity: str, obs: Observation | None, now_s: float, wall_s: float, timings: LeaseTimings
) -> Decision:
    """What to do with the lease at ``now_s`` (monotonic); ``wall_s`` only stamps the written times."""
    duration_s = float(math.ceil(timings.lease_duration_s))  # leaseDurationSeconds is an integer
    if obs is None:
        mine = LeaseRecord(identity, duration_s, wall_s, wall_s, 0)
        return Decision(Move.CREATE, "no lease yet: create it as holder", mine)
    rec = obs.record
    if rec.holder == identity:
        renewed = replace(rec, duration_s=duration_s, renew_time_s=wall_s)
        return Decision(Move.RENEW, "we hold the lease: renew it", renewed)
    if not is_expired(obs, now_s):
        left_s = obs.observed_at_s + rec.duration_s - now_s
        return Decision(Move.WAIT, f"held by {rec.holder!r}: expires in {left_s:.1f}s unless renewed")
    why = "released" if not rec.holder else f"{rec.holder!r} did not renew for {rec.duration_s:g}s"
    taken = replace(
        rec, holder=identity, duration_s=duration_s, acquire_time_s=wall_s, renew_time_s=wall_s,
        transitions=rec.transitions + 1,
    )  # fmt: skip
    return Decision(Move.ACQUIRE, f"lease {why}: take it over", taken)


def release_spec(record: LeaseRecord, wall_s: float) -> LeaseRecord:
    """The record that hands the lease back: no holder, 1 s duration (what client-go writes)."""
    return replace(record, holder="", duration_s=1.0, renew_time_s=wall_s)


class LeaseConflictError(Exception):
    """Create found the lease already there, or replace found a newer resourceVersion (409)."""


class LeasePort(Protocol):
    async def get(self) -> LeaseRecord | None: ...

    async def create(self, record: LeaseRecord) -> LeaseRecord: ...

    async def replace(self, record: LeaseRecord) -> LeaseRecord: ...


class LeaderElector:
    """Runs the election loop; ``is_leader()`` is true only before the renew deadline passes."""

    def __init__(
        self,
        port: LeasePort,
        identity: str,
        timings: LeaseTimings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_started_leading: Callable[[], object] | None = None,
    ) -> None:
        if not identity:
            raise ValueError("leader election needs a non-empty identity (the pod name)")
        self.port = port
        self.identity = identity
        self.timings = timings
        self._clock = clock
        self._wall = wall_clock
        self.on_started_leading = on_started_leading
        self._obs: Observation | None = None
        self._leading_until_s = -math.inf
        self._was_leader = False
        self.holder = ""  # last holder seen ("" unknown or free)
        self.last_decision: Decision | None = None
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def is_leader(self) -> bool:
        return self._clock() < self._leading_until_s

    def leader_name(self) -> str:
        return self.identity if self.is_leader() else self.holder

    def _note_change(self) -> None:
        leading = self.is_leader()
        if leading and not self._was_leader:
            log.info("started_leading", identity=self.identity)
            if self.on_started_leading is not None:
                self.on_started_leading()
        elif self._was_leader and not leading:
            reason = self.last_decision.reason if self.last_decision else ""
            log.warning("stopped_leading", identity=self.identity, holder=self.holder, reason=reason)
        self._was_leader = leading

    async def try_once(self) -> Decision:
        """One round: read, decide, write. Leadership is granted only by a successful write."""
        now_s = self._clock()  # before the calls: the deadline counts from before our write
        record = await self.port.get()
        self._obs = None if record is None else observe(self._obs, record, now_s)
        self.holder = record.holder if record else ""
        decision = decide(self.identity, self._obs, now_s, self._wall(), self.timings)
        self.last_decision = decision
        if decision.write is None:
            self._leading_until_s = -math.inf  # someone else holds it: stop at once
            return decision
        try:
            if decision.move is Move.CREATE:
                written = await self.port.create(decision.write)
            else:
                written = await self.port.replace(decision.write)
        except LeaseConflictError:
            self.last_decision = Decision(Move.WAIT, f"{decision.move.value} lost a race (409)")
            return self.last_decision
        self._obs = Observation(written, now_s)
        self.holder = written.holder
        self._leading_until_s = now_s + self.timings.renew_deadline_s
        return decision

    async def run(self) -> None:
        """Until ``stop()``: one bounded round every retry period; errors are logged, never fatal."""
        while not self._stop.is_set():
            try:
                async with asyncio.timeout(self.timings.renew_deadline_s):
                    decision = await self.try_once()
                log.debug("lease_round", move=decision.move.value, reason=decision.reason)
            except Exception as exc:  # the API server is down or slow: retry; the deadline decides
                log.warning("lease_round_failed", error=f"{type(exc).__name__}: {exc}")
            self._note_change()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timings.retry_period_s):
                    await self._stop.wait()

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.get_running_loop().create_task(self.run(), name="inferno-leader-election")
        return self.task

    async def stop(self, release: bool = True) -> None:
        """Stop the loop and (if we hold it) release the lease so the standby takes over at once."""
        self._stop.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.task, timeout=self.timings.renew_deadline_s)
        was_leader = self.is_leader()
        self._leading_until_s = -math.inf  # stop acting before the lease is handed back
        self._note_change()
        if release and was_leader:
            await self.release()

    async def release(self) -> bool:
        try:
            async with asyncio.timeout(self.timings.retry_period_s * 2):
                record = await self.port.get()
                if record is None or record.holder != self.identity:
                    return False
                await self.port.replace(release_spec(record, self._wall()))
        except Exception as exc:
            log.warning("lease_release_failed", error=f"{type(exc).__name__}: {exc}")
            return False
        log.info("lease_released", identity=self.identity)
        return True


class LeaderGuardedStages:
    """``Stages`` whose ``update`` refuses (nothing patched) when leadership lapsed mid-cycle."""

    def __init__(self, inner: Stages, is_leader: Callable[[], bool]) -> None:
        self.inner = inner
        self.is_leader = is_leader

    async def collect(self) -> CollectResult:
        return await self.inner.collect()

    async def optimize(self, system: SystemData) -> Solution:
        return await self.inner.optimize(system)

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        if not self.is_leader():
            raise UpstreamError(
                ErrorKind.TRANSIENT, "lost the leader Lease before the update: nothing patched"
            )
        return await self.inner.update(request)
