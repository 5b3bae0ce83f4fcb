"""Leader election on a Lease: the pure decision (time as argument) and the elector over a fake port.

Cases: acquire a free lease, respect a live foreign lease, take over an expired one, renew, step
down when renewals fail past the deadline, clock skew (the foreign renewTime is never compared
with our clock), resourceVersion races, release on shutdown.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from controller.leader import (
    LeaderElector,
    LeaseConflictError,
    LeaseRecord,
    LeaseTimings,
    Move,
    Observation,
    decide,
    is_expired,
    observe,
    release_spec,
)
from plumbing.client import ErrorKind, UpstreamError

T = LeaseTimings()  # 15 s lease, 10 s renew deadline, 2 s retry
WALL_S = 1_800_000_000.0


def foreign(renew_time_s: float | None = WALL_S, rv: str = "7", holder: str = "pod-b") -> LeaseRecord:
    return LeaseRecord(holder, 15.0, WALL_S, renew_time_s, transitions=3, resource_version=rv)


# --- pure decision ------------------------------------------------------------------------------


def test_no_lease_is_created_with_us_as_holder() -> None:
    d = decide("pod-a", None, now_s=5.0, wall_s=WALL_S, timings=T)
    assert d.move is Move.CREATE and d.write is not None
    assert (d.write.holder, d.write.duration_s, d.write.renew_time_s) == ("pod-a", 15.0, WALL_S)


def test_a_live_foreign_lease_is_respected_until_unchanged_for_its_duration() -> None:
    obs = observe(None, foreign(), now_s=100.0)
    for now_s in (100.0, 107.0, 114.9):
        d = decide("pod-a", obs, now_s, WALL_S, T)
        assert d.move is Move.WAIT and d.write is None, now_s
        assert "pod-b" in d.reason and "expires in" in d.reason
    taken = decide("pod-a", obs, 115.0, WALL_S + 15, T)
    assert taken.move is Move.ACQUIRE and taken.write is not None
    assert taken.write.holder == "pod-a" and taken.write.transitions == 4
    assert taken.write.resource_version == "7"  # the replace is guarded by what we read
    assert "did not renew" in taken.reason


def test_each_renewal_restarts_the_expiry_clock() -> None:
    obs = observe(None, foreign(rv="7"), now_s=100.0)
    obs = observe(obs, foreign(rv="7"), now_s=110.0)  # unchanged: still counted from 100
    assert obs.observed_at_s == 100.0
    obs = observe(obs, foreign(renew_time_s=WALL_S + 10, rv="8"), now_s=112.0)  # renewed
    assert obs.observed_at_s == 112.0
    assert not is_expired(obs, 120.0) and is_expired(obs, 127.0)


@pytest.mark.parametrize(
    "skew_s",
    [-3600.0, -20.0, 0.0, 20.0, 3600.0],
    ids=["hour-behind", "20s-behind", "none", "20s-ahead", "hour-ahead"],
)
def test_clock_skew_neither_steals_a_live_lease_nor_blocks_an_expired_one(skew_s: float) -> None:
    # The holder's clock is off by skew_s: its renewTime says so, but we judge by our own clock only.
    obs = observe(None, foreign(renew_time_s=WALL_S + skew_s), now_s=100.0)
    assert decide("pod-a", obs, 101.0, WALL_S + 1, T).move is Move.WAIT
    assert decide("pod-a", obs, 115.0, WALL_S + 15, T).move is Move.ACQUIRE


def test_a_released_lease_is_taken_at_once() -> None:
    released = release_spec(foreign(), WALL_S + 3)
    assert released.holder == "" and released.duration_s == 1.0
    d = decide("pod-a", observe(None, released, now_s=50.0), 50.0, WALL_S + 4, T)
    assert d.move is Move.ACQUIRE and "released" in d.reason


def test_our_own_lease_is_renewed_keeping_acquire_time_and_transitions() -> None:
    mine = replace(foreign(), holder="pod-a")
    d = decide("pod-a", Observation(mine, 0.0), 1000.0, WALL_S + 30, T)  # even if "expired" by our clock
    assert d.move is Move.RENEW and d.write is not None
    assert d.write.renew_time_s == WALL_S + 30
    assert (d.write.acquire_time_s, d.write.transitions) == (mine.acquire_time_s, mine.transitions)


def test_timings_must_let_a_leader_step_down_before_its_lease_expires() -> None:
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        LeaseTimings(lease_duration_s=10, renew_deadline_s=10, retry_period_s=2)


# --- the elector over a fake port and a fake clock ----------------------------------------------


class FakeLeases:
    """One in-memory Lease with resourceVersions; the API server's 409 rules; scripted outages."""

    def __init__(self) -> None:
        self.lease: LeaseRecord | None = None
        self._rv = 0
        self.down = False
        self.calls: list[str] = []

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise UpstreamError(ErrorKind.TRANSIENT, "apiserver down")

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self._rv += 1
        self.lease = replace(record, resource_version=str(self._rv))
        return self.lease

    async def get(self) -> LeaseRecord | None:
        self._check("get")
        return self.lease

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        self._check("create")
        if self.lease is not None:
            raise LeaseConflictError("already exists")
        return self._store(record)

    async def replace(self, record: LeaseRecord) -> LeaseRecord:
        self._check("replace")
        if self.lease is None or record.resource_version != self.lease.resource_version:
            raise LeaseConflictError("the object has been modified")
        return self._store(record)


class Clock:
    def __init__(self, now_s: float = 100.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def elector(leases: FakeLeases, clock: Clock, identity: str = "pod-a") -> LeaderElector:
    return LeaderElector(leases, identity, T, clock=clock, wall_clock=lambda: WALL_S + clock.now_s)


async def test_two_electors_exactly_one_leads_and_the_other_takes_over_after_expiry() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, clock, "pod-a"), elector(leases, clock, "pod-b")
    assert (await a.try_once()).move is Move.CREATE
    assert (await b.try_once()).move is Move.WAIT
    assert a.is_leader() and not b.is_leader() and b.holder == "pod-a"
    for _ in range(10):  # a renews every retry period; b waits all along
        clock.now_s += T.retry_period_s
        assert (await a.try_once()).move is Move.RENEW
        assert (await b.try_once()).move is Move.WAIT
        assert a.is_leader() and not b.is_leader()
    # a dies (no more renewals): b takes over once it saw the lease unchanged for 15 s, not before
    dead_at_s = clock.now_s
    while clock.now_s < dead_at_s + 30:
        clock.now_s += T.retry_period_s
        if (await b.try_once()).move is Move.ACQUIRE:
            break
    taken_after_s = clock.now_s - dead_at_s
    assert T.lease_duration_s <= taken_after_s <= T.lease_duration_s + T.retry_period_s
    assert b.is_leader() and not a.is_leader()  # a's own deadline lapsed long before
    assert leases.lease is not None and leases.lease.holder == "pod-b" and leases.lease.transitions == 1


async def test_a_leader_that_cannot_renew_steps_down_at_the_deadline_before_the_lease_expires() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, clock, "pod-a"), elector(leases, clock, "pod-b")
    await a.try_once()
    renewed_at_s = clock.now_s
    await b.try_once()  # b saw a's write at renewed_at_s
    leases.down = True
    stepped_down_at_s = math.inf
    while clock.now_s < renewed_at_s + 20:
        clock.now_s += 0.5
        with pytest.raises(UpstreamError):
            await a.try_once()
        if not a.is_leader():
            stepped_down_at_s = min(stepped_down_at_s, clock.now_s)
    assert stepped_down_at_s == renewed_at_s + T.renew_deadline_s
    # the earliest b could take over is lease_duration_s after it saw the last write: 5 s later
    assert stepped_down_at_s < renewed_at_s + T.lease_duration_s


async def test_a_lost_race_does_not_make_a_leader() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, clock, "pod-a"), elector(leases, clock, "pod-b")
    leases.lease = LeaseRecord("", 1.0, resource_version="0")  # released lease, seen by both
    original_replace = leases.replace

    async def b_writes_first(record: LeaseRecord) -> LeaseRecord:
        await original_replace(replace(record, holder="pod-b"))  # b wins between a's read and write
        return await original_replace(record)

    leases.replace = b_writes_first  # type: ignore[method-assign]
    decision = await a.try_once()
    assert decision.move is Move.WAIT and "lost a race" in decision.reason
    assert not a.is_leader() and leases.lease.holder == "pod-b"
    leases.replace = original_replace  # type: ignore[method-assign]
    clock.now_s += T.retry_period_s
    assert (await a.try_once()).move is Move.WAIT and not a.is_leader()
    assert not b.is_leader()  # b's elector never wrote: only a successful write grants leadership


async def test_a_leader_that_sees_another_holder_stops_at_once() -> None:
    leases, clock = FakeLeases(), Clock()
    a = elector(leases, clock)
    await a.try_once()
    assert leases.lease is not None
    leases.lease = replace(leases.lease, holder="pod-b", resource_version="99")  # e.g. a forced takeover
    clock.now_s += 1
    assert (await a.try_once()).move is Move.WAIT
    assert not a.is_leader() and a.holder == "pod-b"


async def test_release_on_stop_frees_the_lease_and_stops_acting_first() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, clock, "pod-a"), elector(leases, clock, "pod-b")
    await a.try_once()
    await b.try_once()
    await a.stop(release=True)
    assert not a.is_leader()
    assert leases.lease is not None and leases.lease.holder == ""
    clock.now_s += T.retry_period_s  # b's next round: no need to wait for expiry
    assert (await b.try_once()).move is Move.ACQUIRE and b.is_leader()


async def test_a_standby_does_not_release_someone_elses_lease() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, clock, "pod-a"), elector(leases, clock, "pod-b")
    await a.try_once()
    await b.try_once()
    await b.stop(release=True)
    assert leases.lease is not None and leases.lease.holder == "pod-a"
    assert leases.calls.count("replace") == 0


def test_an_identity_is_required() -> None:
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(FakeLeases(), "", T)
