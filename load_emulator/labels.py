"""Label mode: a bounded random walk of the load labels on each managed Deployment.

For clusters without metrics, as in the reference design: every ``step`` rewrites, through the
cluster view port, ``inferno.server.load.rpm``, ``.load.intokens``, ``.load.outtokens`` and
``.load.numtokens`` (the output length, which is what inferno's ``avgLength`` meant when only one
length was given). Each quantity moves by ``uniform(-1, 1) * step_fraction * (hi - lo)`` and is
reflected back into ``[lo, hi]``, so it never leaves its bounds. A Deployment starts from its
current labels when they parse and lie within bounds, else from the middle of the range. One
seeded generator per Deployment (by namespace/name): the same seed gives the same walk.

Callers: the ``serve`` driver on a timer; tests. :meth:`LabelWalker.pattern` gives a load pattern
that follows the walk, so the emulated traffic can match the labels.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from load_emulator.cluster import (
    LABEL_LOAD_IN_TOKENS,
    LABEL_LOAD_OUT_TOKENS,
    LABEL_LOAD_RPM,
    LABEL_LOAD_TOKENS,
    ClusterView,
    label_value,
)
from load_emulator.patterns import INF, Arrival, RatePattern, stable_seed
from load_emulator.tokens import TokenDistribution, TokenSpec


@dataclass(frozen=True)
class WalkBounds:
    rpm: tuple[float, float] = (10.0, 600.0)
    in_tokens: tuple[float, float] = (64.0, 2048.0)
    out_tokens: tuple[float, float] = (64.0, 2048.0)
    step_fraction: float = 0.05

    def __post_init__(self) -> None:
        for name in ("rpm", "in_tokens", "out_tokens"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"walk bounds {name}: need 0 <= lo <= hi, got ({lo}, {hi})")
        if not 0 < self.step_fraction <= 1:
            raise ValueError(f"step_fraction must be in (0, 1], got {self.step_fraction}")


@dataclass
class _Walk:
    rng: random.Random
    rpm: float
    in_tokens: float
    out_tokens: float


@dataclass
class LabelWalker:
    cluster: ClusterView
    bounds: WalkBounds = field(default_factory=WalkBounds)
    seed: int = 0
    _walks: dict[tuple[str, str], _Walk] = field(default_factory=dict)

    def step(self, now_s: float) -> dict[tuple[str, str], dict[str, str]]:
        """Move every Deployment's load one step and write the labels; returns what was written."""
        written: dict[tuple[str, str], dict[str, str]] = {}
        b = self.bounds
        for dep in self.cluster.deployments(now_s):
            key = (dep.namespace, dep.name)
            walk = self._walks.get(key)
            if walk is None:
                rng = random.Random(stable_seed(self.seed, f"{dep.namespace}/{dep.name}"))
                walk = _Walk(
                    rng,
                    _start(dep.labels.get(LABEL_LOAD_RPM), b.rpm),
                    _start(dep.labels.get(LABEL_LOAD_IN_TOKENS), b.in_tokens),
                    _start(dep.labels.get(LABEL_LOAD_OUT_TOKENS), b.out_tokens),
                )
                self._walks[key] = walk
            else:
                walk.rpm = _move(walk.rng, walk.rpm, b.rpm, b.step_fraction)
                walk.in_tokens = _move(walk.rng, walk.in_tokens, b.in_tokens, b.step_fraction)
                walk.out_tokens = _move(walk.rng, walk.out_tokens, b.out_tokens, b.step_fraction)
            labels = {
                LABEL_LOAD_RPM: label_value(walk.rpm),
                LABEL_LOAD_IN_TOKENS: label_value(round(walk.in_tokens)),
                LABEL_LOAD_OUT_TOKENS: label_value(round(walk.out_tokens)),
                LABEL_LOAD_TOKENS: label_value(round(walk.out_tokens)),
            }
            self.cluster.set_labels(dep.namespace, dep.name, labels)
            written[key] = labels
        return written

    def current(self, namespace: str, name: str) -> tuple[float, float, float] | None:
        """``(rpm, in_tokens, out_tokens)`` of a Deployment's walk, None before its first step."""
        walk = self._walks.get((namespace, name))
        return (walk.rpm, walk.in_tokens, walk.out_tokens) if walk else None

    def pattern(
        self, namespace: str, name: str, distribution: TokenDistribution = "geometric"
    ) -> RatePattern:
        """Arrivals at the walk's current rate (0 before the first step); tokens at its means."""
        return _WalkPattern(self, namespace, name, distribution)


class _WalkPattern(RatePattern):
    def __init__(
        self, walker: LabelWalker, namespace: str, name: str, distribution: TokenDistribution
    ) -> None:
        self.walker, self.key, self.distribution = walker, (namespace, name), distribution

    @property
    def tokens(self) -> TokenSpec:  # type: ignore[override]
        now = self.walker.current(*self.key)
        mean_in, mean_out = (now[1], now[2]) if now else (0.0, 1.0)
        return TokenSpec(mean_in, mean_out, self.distribution)

    def rate_rpm(self, t_s: float) -> float:
        now = self.walker.current(*self.key)
        return now[0] if now else 0.0

    def rate_bound_rpm(self, t_s: float) -> tuple[float, float]:
        return self.walker.bounds.rpm[1], INF

    def arrivals(self, seed: int) -> Iterator[Arrival]:
        # Token means follow the walk: draw each arrival's tokens from the current means.
        rng = random.Random(seed)
        for arrival in super().arrivals(seed):
            in_tokens, out_tokens = self.tokens.sampler().draw(rng)
            yield Arrival(arrival.t_s, in_tokens, out_tokens)


def _start(text: str | None, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    try:
        value = float(text) if text is not None else None
    except ValueError:
        value = None
    return value if value is not None and lo <= value <= hi else (lo + hi) / 2


def _move(rng: random.Random, value: float, bounds: tuple[float, float], fraction: float) -> float:
    lo, hi = bounds
    if hi <= lo:
        return lo
    value += rng.uniform(-1.0, 1.0) * fraction * (hi - lo)
    for _ in range(4):  # reflect at the bounds (a step is at most one range long)
        if value < lo:
            value = 2 * lo - value
        elif value > hi:
            value = 2 * hi - value
        else:
            break
    return min(max(value, lo), hi)
