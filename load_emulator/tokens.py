"""Token counts of emulated requests: distributions around the mean input and output lengths.

Used by the load patterns (:mod:`load_emulator.patterns`) when they draw arrivals. Distributions:

- ``deterministic``: exactly ``round(mean)`` every time.
- ``geometric``: on {1, 2, ...} with the given mean (``p = 1/mean``); variance ``mean*(mean-1)``,
  close to an exponential for long outputs (what makes the M/M/1 check possible).
- ``lognormal``: with the given mean and coefficient of variation ``cv``:
  ``sigma^2 = ln(1 + cv^2)``, ``mu = ln(mean) - sigma^2/2``, rounded to an integer >= 1.

A mean of 0 always gives 0 tokens (the oldest data files have no input lengths). Draws are clipped
to ``max_tokens``, which lowers the mean a little when the cap is close to it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal, get_args

TokenDistribution = Literal["deterministic", "geometric", "lognormal"]
DISTRIBUTIONS: tuple[str, ...] = get_args(TokenDistribution)


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """Mean lengths and their spread; one spec for a pattern's whole stream."""

    mean_in_tokens: float
    mean_out_tokens: float
    distribution: TokenDistribution = "geometric"
    cv: float = 1.0
    max_tokens: int = 65536

    def __post_init__(self) -> None:
        if self.mean_in_tokens < 0 or self.mean_out_tokens < 0:
            raise ValueError(
                f"token means must be >= 0, got in={self.mean_in_tokens} out={self.mean_out_tokens}"
            )
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown token distribution {self.distribution!r}; known: {DISTRIBUTIONS}")
        if self.cv < 0 or self.max_tokens < 1:
            raise ValueError(f"cv must be >= 0 and max_tokens >= 1, got cv={self.cv} max={self.max_tokens}")

    def sampler(self) -> TokenSampler:
        return TokenSampler(self)


class TokenSampler:
    """Draws ``(in_tokens, out_tokens)``; output is at least 1 token when its mean is positive."""

    __slots__ = ("_in", "_out")

    def __init__(self, spec: TokenSpec) -> None:
        self._in = _Draw(spec.mean_in_tokens, spec)
        self._out = _Draw(max(spec.mean_out_tokens, 1.0), spec)

    def draw(self, rng: random.Random) -> tuple[int, int]:
        return self._in.draw(rng), self._out.draw(rng)


class _Draw:
    __slots__ = ("_const", "_kind", "_log_q", "_max", "_mu", "_sigma")

    def __init__(self, mean: float, spec: TokenSpec) -> None:
        self._max = spec.max_tokens
        self._const = min(max(round(mean), 1 if mean > 0 else 0), self._max)
        self._kind = "deterministic" if mean <= 0 else spec.distribution
        if self._kind == "geometric" and mean <= 1:
            self._kind = "deterministic"
        self._log_q = math.log1p(-1.0 / mean) if self._kind == "geometric" else 0.0
        sigma2 = math.log1p(spec.cv**2)
        self._sigma = math.sqrt(sigma2)
        self._mu = math.log(mean) - sigma2 / 2 if mean > 0 else 0.0

    def draw(self, rng: random.Random) -> int:
        if self._kind == "geometric":
            # Inverse CDF: 1 + floor(ln U / ln(1-p)), U in (0, 1].
            value = 1 + int(math.log(1.0 - rng.random()) / self._log_q)
        elif self._kind == "lognormal":
            value = max(1, round(rng.lognormvariate(self._mu, self._sigma)))
        else:
            return self._const
        return min(value, self._max)
