"""Load patterns by name, shaped around a base rate: the registry the CLI and the fleet builder use.

``make_pattern(kind, base_rpm, tokens, params, seed)``; ``params`` are strings (from ``--param
key=value``), every one optional. Rates are multiples of ``base_rpm`` (the server's load):

=========  ==================================================================================
constant   ``scale`` (1)
steps      ``factors`` ("1,2,0.5"), ``step_s`` (600): factor i from ``i*step_s``, then the last
ramp       ``from`` (0.5), ``to`` (2), ``t0_s`` (0), ``t1_s`` (3600)
spikes     ``factor`` (4), ``every_s`` (1800), ``duration_s`` (120), ``first_s`` (900),
           ``horizon_s`` (86400): a burst at ``factor`` x base every ``every_s``
diurnal    ``amplitude`` (0.5), ``period_s`` (86400), ``phase_s`` (0), ``noise`` (0.1),
           ``noise_interval_s`` (300)
trace      ``path`` (required), ``time_scale`` (1), ``loop`` (0): the CSV's own rate and tokens;
           ``base_rpm`` is ignored
=========  ==================================================================================

An unknown kind or parameter fails at once with the list of known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from load_emulator.patterns import Constant, Diurnal, LoadPattern, Ramp, Spikes, Steps
from load_emulator.tokens import TokenSpec
from load_emulator.trace import TraceReplay

_Builder = Callable[[float, TokenSpec, "_Params", int], LoadPattern]


class _Params:
    def __init__(self, kind: str, raw: Mapping[str, str], known: tuple[str, ...]) -> None:
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"pattern {kind!r}: unknown parameter(s) {unknown}; known: {list(known)}")
        self.kind, self.raw = kind, raw

    def num(self, key: str, default: float) -> float:
        if key not in self.raw:
            return default
        try:
            return float(self.raw[key])
        except ValueError:
            raise ValueError(f"pattern {self.kind!r}: {key}={self.raw[key]!r} is not a number") from None

    def nums(self, key: str, default: str) -> tuple[float, ...]:
        text = self.raw.get(key, default)
        try:
            return tuple(float(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise ValueError(f"pattern {self.kind!r}: {key}={text!r} is not a comma-separated list") from None


def _constant(base: float, tokens: TokenSpec, p: _Params, seed: int) -> LoadPattern:
    return Constant(base * p.num("scale", 1.0), tokens)


def _steps(base: float, tokens: TokenSpec, p: _Params, seed: int) -> LoadPattern:
    step_s = p.num("step_s", 600.0)
    factors = p.nums("factors", "1,2,0.5")
    return Steps(tuple((i * step_s, base * f) for i, f in enumerate(factors)), tokens)


def _ramp(base: float, tokens: TokenSpec, p: _Params, seed: int) -> LoadPattern:
    return Ramp(
        base * p.num("from", 0.5), base * p.num("to", 2.0), p.num("t0_s", 0.0), p.num("t1_s", 3600.0), tokens
    )


def _spikes(base: float, tokens: TokenSpec, p: _Params, seed: int) -> LoadPattern:
    every_s, first_s, horizon_s = (
        p.num("every_s", 1800.0),
        p.num("first_s", 900.0),
        p.num("horizon_s", 86400.0),
    )
    if every_s <= 0:
        raise ValueError(f"pattern 'spikes': every_s must be > 0, got {every_s}")
    starts = tuple(first_s + i * every_s for i in range(int(max(horizon_s - first_s, 0) // every_s) + 1))
    return Spikes(base, base * p.num("factor", 4.0), starts, p.num("duration_s", 120.0), tokens)


def _diurnal(base: float, tokens: TokenSpec, p: _Params, seed: int) -> LoadPattern:
    return Diurnal(
        base,
        tokens,
        amplitude=p.num("amplitude", 0.5),
        period_s=p.num("period_s", 86400.0),
        phase_s=p.num("phase_s", 0.0),
        noise=p.num("noise", 0.1),
        noise_interval_s=p.num("noise_interval_s", 300.0),
        seed=seed,
    )


def _trace(base: float, tokens: TokenSpec, p: _Params, seed: int) -> LoadPattern:
    if "path" not in p.raw:
        raise ValueError("pattern 'trace' needs path=<csv of timestamp,in_tokens,out_tokens>")
    return TraceReplay.from_csv(
        p.raw["path"], time_scale=p.num("time_scale", 1.0), loop=bool(p.num("loop", 0))
    )


PATTERNS: dict[str, tuple[_Builder, tuple[str, ...]]] = {
    "constant": (_constant, ("scale",)),
    "steps": (_steps, ("factors", "step_s")),
    "ramp": (_ramp, ("from", "to", "t0_s", "t1_s")),
    "spikes": (_spikes, ("factor", "every_s", "duration_s", "first_s", "horizon_s")),
    "diurnal": (_diurnal, ("amplitude", "period_s", "phase_s", "noise", "noise_interval_s")),
    "trace": (_trace, ("path", "time_scale", "loop")),
}


def make_pattern(
    kind: str, base_rpm: float, tokens: TokenSpec, params: Mapping[str, str], seed: int = 0
) -> LoadPattern:
    if kind not in PATTERNS:
        raise ValueError(f"unknown load pattern {kind!r}; known: {sorted(PATTERNS)}")
    builder, known = PATTERNS[kind]
    return builder(base_rpm, tokens, _Params(kind, params, known), seed)


def parse_param(text: str) -> tuple[str, str]:
    """One ``--param KEY=VALUE`` of the CLIs (``load_emulator``, ``whatif``, ``demo``), stripped."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--param wants KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()
