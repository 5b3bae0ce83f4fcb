"""Load patterns: an arrival rate over virtual time plus a token distribution, seeded and repeatable.

A pattern answers ``rate_rpm(t_s)`` (requests per minute at time ``t_s``, seconds from the start of
the run) and produces its arrival stream with ``arrivals(seed)``. Rate patterns draw a
non-homogeneous Poisson process by thinning (Lewis-Shedler): candidates come at a bound rate that
holds until a known time (``rate_bound_rpm``), each kept with probability ``rate / bound``; this is
exact for any rate shape. The same seed gives the same stream. :class:`TraceReplay`
(:mod:`load_emulator.trace`) replays recorded arrivals instead.

Callers: :mod:`load_emulator.fleet` builds one pattern per server; the engine pulls arrivals.
Example: ``Diurnal(mean_rpm=120, amplitude=0.5, period_s=86400)`` peaks at 180 req/min a quarter
period after the start and averages 120 req/min over whole periods.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from load_emulator.tokens import TokenSpec

INF = math.inf


class Arrival(NamedTuple):
    t_s: float
    in_tokens: int
    out_tokens: int


class LoadPattern(Protocol):
    @property
    def tokens(self) -> TokenSpec:
        """Mean token lengths (and their distribution) of the stream."""
        ...

    def rate_rpm(self, t_s: float) -> float: ...

    def arrivals(self, seed: int) -> Iterator[Arrival]: ...


def stable_seed(seed: int, name: str) -> int:
    """A per-stream seed that does not depend on Python's randomised ``hash``."""
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class RatePattern:
    """Base of the rate-driven patterns: subclasses give the rate and a piecewise bound."""

    tokens: TokenSpec

    def rate_rpm(self, t_s: float) -> float:
        raise NotImplementedError

    def rate_bound_rpm(self, t_s: float) -> tuple[float, float]:
        """``(bound, until_s)``: ``rate_rpm(t) <= bound`` for every ``t`` in ``[t_s, until_s)``."""
        raise NotImplementedError

    def arrivals(self, seed: int) -> Iterator[Arrival]:
        rng = random.Random(seed)
        sampler = self.tokens.sampler()
        t = 0.0
        while True:
            bound_rpm, until_s = self.rate_bound_rpm(t)
            if bound_rpm <= 0:
                if until_s == INF:
                    return
                t = until_s
                continue
            candidate = t + rng.expovariate(bound_rpm / 60.0)
            if candidate >= until_s:
                t = until_s  # memoryless: restart from the end of the bound's validity
                continue
            t = candidate
            if rng.random() * bound_rpm <= self.rate_rpm(t):
                in_tokens, out_tokens = sampler.draw(rng)
                yield Arrival(t, in_tokens, out_tokens)


@dataclass(frozen=True)
class Constant(RatePattern):
    rpm: float
    tokens: TokenSpec

    def rate_rpm(self, t_s: float) -> float:
        return self.rpm

    def rate_bound_rpm(self, t_s: float) -> tuple[float, float]:
        return self.rpm, INF


@dataclass(frozen=True)
class Steps(RatePattern):
    """Piecewise-constant rate: ``levels`` are ``(start_s, rpm)``; before the first start, 0."""

    levels: tuple[tuple[float, float], ...]
    tokens: TokenSpec

    def __post_init__(self) -> None:
        starts = [s for s, _ in self.levels]
        if not self.levels or starts != sorted(starts) or any(r < 0 for _, r in self.levels):
            raise ValueError(f"steps need (start_s, rpm >= 0) levels in time order, got {self.levels}")

    def _index(self, t_s: float) -> int:
        index = -1
        for i, (start_s, _) in enumerate(self.levels):
            if start_s <= t_s:
                index = i
        return index

    def rate_rpm(self, t_s: float) -> float:
        i = self._index(t_s)
        return self.levels[i][1] if i >= 0 else 0.0

    def rate_bound_rpm(self, t_s: float) -> tuple[float, float]:
        i = self._index(t_s)
        until_s = self.levels[i + 1][0] if i + 1 < len(self.levels) else INF
        return self.rate_rpm(t_s), until_s


@dataclass(frozen=True)
class Ramp(RatePattern):
    """``start_rpm`` until ``t0_s``, linear to ``end_rpm`` at ``t1_s``, then ``end_rpm``."""

    start_rpm: float
    end_rpm: float
    t0_s: float
    t1_s: float
    tokens: TokenSpec

    def rate_rpm(self, t_s: float) -> float:
        if t_s <= self.t0_s:
            return self.start_rpm
        if t_s >= self.t1_s:
            return self.end_rpm
        share = (t_s - self.t0_s) / (self.t1_s - self.t0_s)
        return self.start_rpm + share * (self.end_rpm - self.start_rpm)

    def rate_bound_rpm(self, t_s: float) -> tuple[float, float]:
        if t_s < self.t0_s:
            return self.start_rpm, self.t0_s
        if t_s < self.t1_s:
            return max(self.rate_rpm(t_s), self.end_rpm), self.t1_s
        return self.end_rpm, INF


@dataclass(frozen=True)
class Spikes(RatePattern):
    """``base_rpm`` with bursts of ``spike_rpm`` lasting ``duration_s`` at each of ``starts_s``."""

    base_rpm: float
    spike_rpm: float
    starts_s: tuple[float, ...]
    duration_s: float
    tokens: TokenSpec

    def _spike_end(self, t_s: float) -> float | None:
        for start_s in self.starts_s:
            if start_s <= t_s < start_s + self.duration_s:
                return start_s + self.duration_s
        return None

    def rate_rpm(self, t_s: float) -> float:
        return self.base_rpm if self._spike_end(t_s) is None else self.spike_rpm

    def rate_bound_rpm(self, t_s: float) -> tuple[float, float]:
        end_s = self._spike_end(t_s)
        if end_s is not None:
            return self.spike_rpm, end_s
        later = [s for s in self.starts_s if s > t_s]
        return self.base_rpm, min(later, default=INF)


@dataclass
class Diurnal(RatePattern):
    """``mean * (1 + amplitude*sin(2 pi (t - phase)/period)) * (1 + noise_k)``.

    ``noise_k`` is uniform in ``[-noise, noise]``, one value per ``noise_interval_s``, drawn from
    ``seed`` in interval order, so ``rate_rpm`` is a pure function of ``t``.
    """

    mean_rpm: float
    tokens: TokenSpec
    amplitude: float = 0.5
    period_s: float = 86400.0
    phase_s: float = 0.0
    noise: float = 0.1
    noise_interval_s: float = 300.0
    seed: int = 0
    _noise: list[float] = field(default_factory=list, repr=False)
    _rng: random.Random | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (0 <= self.amplitude <= 1 and 0 <= self.noise < 1 and self.period_s > 0):
            raise ValueError(
                f"diurnal needs 0 <= amplitude <= 1, 0 <= noise < 1, period > 0; got "
                f"amplitude={self.amplitude} noise={self.noise} period_s={self.period_s}"
            )

    def _noise_at(self, t_s: float) -> float:
        index = max(int(t_s // self.noise_interval_s), 0)
        if self._rng is None:
            self._rng = random.Random(stable_seed(self.seed, "diurnal-noise"))
        while len(self._noise) <= index:
            self._noise.append(self._rng.uniform(-self.noise, self.noise))
        return self._noise[index]

    def rate_rpm(self, t_s: float) -> float:
        wave = 1 + self.amplitude * math.sin(2 * math.pi * (t_s - self.phase_s) / self.period_s)
        return self.mean_rpm * wave * (1 + self._noise_at(t_s))

    def rate_bound_rpm(self, t_s: float) -> tuple[float, float]:
        return self.mean_rpm * (1 + self.amplitude) * (1 + self.noise), INF
