"""Trace replay: arrivals read from a CSV file of ``timestamp, input tokens, output tokens``.

Format: one request per row, ``timestamp_s,in_tokens,out_tokens``; a header row is allowed (any
first row whose timestamp is not a number); blank lines and ``#`` comments are skipped.
Timestamps are seconds, absolute or relative: the first one becomes time 0. Rows need not be
sorted. ``time_scale`` stretches time (2.0 replays at half speed) and ``loop`` repeats the trace
back to back, one trace span (last minus first timestamp, plus one mean gap) per round.

Callers: :func:`load_emulator.fleet.make_pattern` (``trace`` kind) and the CLI ``--trace`` option.
The seed is ignored: a replay is the trace itself.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from load_emulator.patterns import Arrival
from load_emulator.tokens import TokenSpec


@dataclass(frozen=True)
class TraceReplay:
    rows: tuple[Arrival, ...]
    time_scale: float = 1.0
    loop: bool = False
    rate_window_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("trace has no requests")
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")

    @classmethod
    def from_rows(cls, rows: Sequence[Arrival], **options: float | bool) -> TraceReplay:
        ordered = sorted(rows)
        origin = ordered[0].t_s if ordered else 0.0
        shifted = tuple(Arrival(r.t_s - origin, r.in_tokens, r.out_tokens) for r in ordered)
        return cls(shifted, **options)  # type: ignore[arg-type]

    @classmethod
    def from_csv(cls, path: str | Path, **options: float | bool) -> TraceReplay:
        return cls.from_rows(read_trace_csv(path), **options)

    @cached_property
    def _times(self) -> tuple[float, ...]:
        return tuple(r.t_s for r in self.rows)

    @property
    def span_s(self) -> float:
        """Length of one round, before scaling."""
        last = self.rows[-1].t_s
        gap = last / (len(self.rows) - 1) if len(self.rows) > 1 else 1.0
        return last + max(gap, 1e-9)

    @property
    def tokens(self) -> TokenSpec:
        n = len(self.rows)
        return TokenSpec(
            mean_in_tokens=sum(r.in_tokens for r in self.rows) / n,
            mean_out_tokens=sum(r.out_tokens for r in self.rows) / n,
            distribution="deterministic",
        )

    def arrivals(self, seed: int = 0) -> Iterator[Arrival]:
        rounds = 0
        while True:
            offset_s = rounds * self.span_s
            for row in self.rows:
                yield Arrival((row.t_s + offset_s) * self.time_scale, row.in_tokens, row.out_tokens)
            rounds += 1
            if not self.loop:
                return

    def rate_rpm(self, t_s: float) -> float:
        """Arrivals per minute in the ``rate_window_s`` ending at ``t_s`` (trace time base)."""
        t = t_s / self.time_scale
        if self.loop:
            t = math.fmod(t, self.span_s)
        window = self.rate_window_s / self.time_scale
        times = self._times
        count = bisect.bisect_right(times, t) - bisect.bisect_right(times, t - window)
        return count * 60.0 / self.rate_window_s


def read_trace_csv(path: str | Path) -> list[Arrival]:
    rows: list[Arrival] = []
    with Path(path).open(newline="") as handle:
        for line_no, record in enumerate(csv.reader(handle), start=1):
            if not record or not record[0].strip() or record[0].lstrip().startswith("#"):
                continue
            try:
                t_s = float(record[0])
            except ValueError:
                if not rows and line_no == 1:
                    continue  # header
                raise ValueError(f"{path}:{line_no}: timestamp {record[0]!r} is not a number") from None
            if len(record) < 3:
                raise ValueError(f"{path}:{line_no}: expected timestamp,in_tokens,out_tokens, got {record}")
            try:
                in_tokens, out_tokens = int(float(record[1])), int(float(record[2]))
            except ValueError:
                raise ValueError(
                    f"{path}:{line_no}: token counts must be numbers, got {record[1:3]}"
                ) from None
            if not math.isfinite(t_s) or in_tokens < 0 or out_tokens < 1:
                raise ValueError(f"{path}:{line_no}: need a finite time, in >= 0 and out >= 1, got {record}")
            rows.append(Arrival(t_s, in_tokens, out_tokens))
    return rows
