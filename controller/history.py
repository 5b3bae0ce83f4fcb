"""The load history the forecast reads: per server, bucketed mean rates; pure, plus its JSON form.

Kept by :class:`controller.cycle.CycleRunner` between cycles and written after each cycle to a
:class:`HistoryStore` (production: a ConfigMap the next leader reads,
:mod:`controller.history_kube`), so it survives a restart and a leader change. Read back once per
leadership (the first cycle a replica leads). :func:`decode` rejects anything it does not fully
understand with :class:`HistoryError`: the caller then starts from an empty history and says why
(reactive sizing, no scale-down until the history is long enough again).

Only servers whose class asks for a forecast are kept (:func:`prune`): the others never read it.
Two resolutions per server, to stay small (a ConfigMap holds 1 MiB): ``recent`` at
``policy.bucket_s`` (60 s) for ``policy.recent_s`` (2 h), which Holt's method reads, and
``season`` at ``policy.season_bucket_s`` (300 s) over one season plus that, which the seasonal
term reads. 120 + 312 buckets per server, at most ~10 KB of JSON: ~100 forecast servers per
ConfigMap; a save past the limit fails with the API server's reason, said in the cycle's notes.

Example: rates 100 at t = 30 s and 110 at t = 50 s fall in recent bucket 0 (``[0, 60)``), which
holds their mean, 105, over 2 samples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controller.forecast import ForecastPolicy

HISTORY_VERSION = 1


class HistoryError(ValueError):
    """The stored history is unreadable (not JSON, another version, bad numbers)."""


class HistoryStore(Protocol):
    """Where the history lives between leaders: the whole document, read and written as text."""

    async def load(self) -> str | None:
        """The stored text; None when nothing is stored yet."""
        ...

    async def save(self, text: str) -> None: ...


@dataclass(frozen=True)
class Series:
    """Mean rate per bucket: ``(bucket index = floor(t / bucket_s), mean rpm, samples)``, ascending."""

    points: tuple[tuple[int, float, int], ...] = ()

    def add(self, index: int, rpm: float, keep_buckets: int) -> Series:
        points = list(self.points)
        if points and points[-1][0] == index:
            _, mean, n = points[-1]
            points[-1] = (index, (mean * n + rpm) / (n + 1), n + 1)
        elif not points or points[-1][0] < index:
            points.append((index, rpm, 1))
        else:  # a clock that went back: the newest bucket stands
            return self
        return Series(tuple(p for p in points if p[0] > index - keep_buckets))

    def value_at(self, index: int) -> float | None:
        for i, rpm, _ in reversed(self.points):
            if i == index:
                return rpm
            if i < index:
                return None
        return None


@dataclass(frozen=True)
class ServerHistory:
    recent: Series = Series()
    season: Series = Series()


LoadHistory = Mapping[str, ServerHistory]
"""By server name: the forecast follows the server's load, whichever Deployment serves it."""


def record(
    history: LoadHistory, rates_rpm: Mapping[str, float], now_s: float, policy: ForecastPolicy
) -> dict[str, ServerHistory]:
    """The history with each server's measured rate at ``now_s`` entered; servers not measured
    this cycle keep what they have (a gap, filled forward when read)."""
    out = dict(history)
    keep_recent = math.ceil(policy.recent_s / policy.bucket_s)
    keep_season = math.ceil((policy.season_s + policy.recent_s) / policy.season_bucket_s)
    for name, rpm in rates_rpm.items():
        if not (math.isfinite(rpm) and rpm >= 0):
            continue
        known = out.get(name, ServerHistory())
        out[name] = ServerHistory(
            known.recent.add(math.floor(now_s / policy.bucket_s), rpm, keep_recent),
            known.season.add(math.floor(now_s / policy.season_bucket_s), rpm, keep_season)
            if policy.season_s > 0
            else known.season,
        )
    return out


def prune(
    history: LoadHistory, not_asking: Collection[str], now_s: float, policy: ForecastPolicy
) -> dict[str, ServerHistory]:
    """The history without the servers in ``not_asking`` (their class does not ask for a forecast)
    and without servers not measured for longer than anything :func:`record` keeps (gone)."""
    recent_from = math.floor(now_s / policy.bucket_s) - math.ceil(policy.recent_s / policy.bucket_s)
    season_from = math.floor(now_s / policy.season_bucket_s) - math.ceil(
        (policy.season_s + policy.recent_s) / policy.season_bucket_s
    )

    def live(h: ServerHistory) -> bool:
        return (bool(h.recent.points) and h.recent.points[-1][0] > recent_from) or (
            bool(h.season.points) and h.season.points[-1][0] > season_from
        )

    return {name: h for name, h in history.items() if name not in not_asking and live(h)}


def recent_series(history: ServerHistory, now_s: float, policy: ForecastPolicy) -> list[float]:
    """The per-bucket rates from the oldest kept bucket to now's, gaps filled with the last value
    before them; empty when now's bucket has no value (not measured this cycle)."""
    points = history.recent.points
    now_index = math.floor(now_s / policy.bucket_s)
    if not points or points[-1][0] != now_index:
        return []
    out: list[float] = []
    by_index = {i: rpm for i, rpm, _ in points}
    last = points[0][1]
    for index in range(points[0][0], now_index + 1):
        last = by_index.get(index, last)
        out.append(last)
    return out


def season_series(
    history: ServerHistory, now_s: float, horizon_s: float, policy: ForecastPolicy
) -> list[float] | None:
    """The rates one season before ``now_s + k * bucket_s`` for ``k = 0..steps``, from the coarse
    buckets; None without a season or with a bucket missing."""
    if policy.season_s <= 0:
        return None
    steps = max(math.ceil(horizon_s / policy.bucket_s), 1)
    out: list[float] = []
    for k in range(steps + 1):
        t = now_s + k * policy.bucket_s - policy.season_s
        value = history.season.value_at(math.floor(t / policy.season_bucket_s))
        if value is None:
            return None
        out.append(value)
    return out


def encode(history: LoadHistory, policy: ForecastPolicy) -> str:
    """The JSON document a :class:`HistoryStore` keeps (rates rounded to 0.001 req/min)."""

    def series(s: Series) -> list[list[float]]:
        return [[i, round(rpm, 3), n] for i, rpm, n in s.points]

    doc = {
        "version": HISTORY_VERSION,
        "bucketS": policy.bucket_s,
        "seasonBucketS": policy.season_bucket_s,
        "servers": {
            name: {"recent": series(h.recent), "season": series(h.season)}
            for name, h in sorted(history.items())
        },
    }
    return json.dumps(doc, separators=(",", ":"))


def decode(text: str, policy: ForecastPolicy) -> dict[str, ServerHistory]:
    """The history from :func:`encode`'s text; :class:`HistoryError` naming what is wrong."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HistoryError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != HISTORY_VERSION:
        got = doc.get("version") if isinstance(doc, dict) else type(doc).__name__
        raise HistoryError(f"version {got!r}, expected {HISTORY_VERSION}")
    if doc.get("bucketS") != policy.bucket_s or doc.get("seasonBucketS") != policy.season_bucket_s:
        raise HistoryError(
            f"buckets {doc.get('bucketS')!r}/{doc.get('seasonBucketS')!r} s, expected "
            f"{policy.bucket_s:g}/{policy.season_bucket_s:g} s"
        )
    servers = doc.get("servers")
    if not isinstance(servers, dict):
        raise HistoryError("servers is not an object")
    out: dict[str, ServerHistory] = {}
    for name, entry in servers.items():
        if not isinstance(entry, dict):
            raise HistoryError(f"server {name!r}: not an object")
        out[name] = ServerHistory(
            _series(entry.get("recent"), f"{name}.recent"), _series(entry.get("season"), f"{name}.season")
        )
    return out


def _series(raw: Any, where: str) -> Series:
    if not isinstance(raw, list):
        raise HistoryError(f"{where}: not a list")
    points: list[tuple[int, float, int]] = []
    for item in raw:
        ok = isinstance(item, list) and len(item) == 3 and all(isinstance(v, int | float) for v in item)
        if not ok:
            raise HistoryError(f"{where}: {item!r} is not [bucket, rpm, samples]")
        index, rpm, n = item
        if int(index) != index or int(n) != n or n < 1 or not (math.isfinite(rpm) and rpm >= 0):
            raise HistoryError(f"{where}: {item!r} has a bad bucket, rate or sample count")
        if points and int(index) <= points[-1][0]:
            raise HistoryError(f"{where}: buckets not ascending at {item!r}")
        points.append((int(index), float(rpm), int(n)))
    return Series(tuple(points))


class MemoryHistoryStore:
    """A store in this process only (what-if runs, tests; a process without a ConfigMap)."""

    def __init__(self, text: str | None = None) -> None:
        self.text = text
        self.saves = 0

    async def load(self) -> str | None:
        return self.text

    async def save(self, text: str) -> None:
        self.text = text
        self.saves += 1
