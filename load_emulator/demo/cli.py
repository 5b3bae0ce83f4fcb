"""Command line of the embedded demo: ``python -m load_emulator.demo [options]`` (``scripts/demo.sh``).

Parses options into :class:`~load_emulator.demo.loop_state.DemoSettings`, runs
:func:`~load_emulator.demo.run.run_demo` and prints a summary. Exit code 0 when the run finished
(also after Ctrl-C), 1 on a set-up or loop failure (the message says which), 2 on bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from load_emulator.demo.loop_state import DEFAULT_DATA, DemoResult, DemoSettings
from load_emulator.demo.run import run_demo
from load_emulator.demo.world import DEFAULT_CARDS, DEFAULT_SERVERS
from load_emulator.pattern_factory import PATTERNS


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m load_emulator.demo",
        description="The whole autoscaling loop, for real, against an emulated cluster held in this process.",
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="inferno data directory (samples/small)")
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS), help="comma-separated server names")
    p.add_argument("--cards", default=",".join(f"{k}={v}" for k, v in DEFAULT_CARDS.items()),
                   help="cards per GPU type on the fake nodes (TYPE=N,...)")  # fmt: skip
    p.add_argument("--duration-s", type=float, default=150.0, help="seconds of load (default 150)")
    p.add_argument("--cycle-s", type=float, default=10.0, help="seconds between control cycles")
    p.add_argument("--pattern", default="updown", choices=["updown", *sorted(PATTERNS)],
                   help="load shape per server (updown: up to 3x base rate, then down)")  # fmt: skip
    p.add_argument("--param", action="append", type=_pair, default=[], help="pattern parameter key=value")
    p.add_argument("--startup-delay-s", type=float, default=5.0, help="pod start-up delay")
    p.add_argument("--scale-down-window-s", type=float, default=30.0, help="actuator stabilisation window")
    p.add_argument("--solver", default="greedy", help="greedy | milp ('' : the data's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="keep kubeconfig and service logs here")
    return p


def settings_from(args: argparse.Namespace) -> DemoSettings:
    cards = dict(_pair(c) for c in args.cards.split(",") if c)
    return DemoSettings(
        data_dir=args.data,
        servers=tuple(s.strip() for s in args.servers.split(",") if s.strip()),
        cards={k: int(v) for k, v in cards.items()},
        duration_s=args.duration_s,
        cycle_s=args.cycle_s,
        pattern=args.pattern,
        params=dict(args.param),
        startup_delay_s=args.startup_delay_s,
        scale_down_window_s=args.scale_down_window_s,
        solver=args.solver,
        seed=args.seed,
        workdir=args.workdir,
    )


def summary(result: DemoResult) -> str:
    changes = "; ".join(result.replica_changes) or "none"
    return (
        f"demo: {result.cycles} cycles, start-up {result.startup_s:.1f} s, "
        f"replica changes applied: {changes}; service exit codes {result.exit_codes}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(run_demo(settings))
    except KeyboardInterrupt:
        print("demo: interrupted; everything stopped", file=sys.stderr)
        return 0
    except Exception as exc:
        print(f"demo: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0
