"""Command line of the demo: ``python -m load_emulator.demo [options]`` (``scripts/demo.sh``).

Parses options into :class:`~load_emulator.demo.loop_state.DemoSettings`, runs
:func:`~load_emulator.demo.run.run_demo` (in-memory API server) or, with ``--cluster`` /
``--cluster-state``, :func:`~load_emulator.demo.cluster_run.run_cluster_demo` (the local real
cluster; ``scripts/demo-cluster.sh``), and prints a summary. Exit code 0 when the run finished
(also after Ctrl-C or SIGTERM), 1 on a set-up or loop failure (the message says which), 2 on bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from load_emulator.demo.cluster_run import run_cluster_demo
from load_emulator.demo.loop_state import DEFAULT_DATA, DemoResult, DemoSettings
from load_emulator.demo.run import run_demo
from load_emulator.demo.world import DEFAULT_CARDS, DEFAULT_SERVERS
from load_emulator.pattern_factory import PATTERNS, parse_param
from load_emulator.routing import ROUTINGS


def _pair(text: str) -> tuple[str, str]:
    try:
        return parse_param(text)
    except ValueError as exc:  # argparse shows an ArgumentTypeError's own message
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    p.add_argument(
        "--routing", default="least-loaded", choices=ROUTINGS,
        help="how requests pick a ready pod: least-loaded (fewest waiting+running, as a queue-aware "
        "gateway such as llm-d's) or round-robin (a plain Service); default least-loaded",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="keep kubeconfig and service logs here")
    p.add_argument(
        "--first-cycle-s", type=float, default=None,
        help="seconds of load before the first cycle (default 2; on a cluster 12: Prometheus needs samples)",
    )  # fmt: skip
    real = p.add_argument_group("on the local real cluster (tests/e2e/cluster; binaries from its install.sh)")
    real.add_argument(
        "--cluster", action="store_true",
        help="start the local cluster + Prometheus, run the demo on it, stop it at the end",
    )  # fmt: skip
    real.add_argument(
        "--cluster-state", type=Path, default=None,
        help="use a running local cluster: state file of 'python -m e2e.cluster' (implies --cluster)",
    )  # fmt: skip
    real.add_argument(
        "--namespace", default="inferno-demo",
        help="namespace and node pool of the demo's objects on the cluster (must not exist yet)",
    )  # fmt: skip
    return p


def settings_from(args: argparse.Namespace) -> DemoSettings:
    cards = dict(_pair(c) for c in args.cards.split(",") if c)
    cluster = bool(args.cluster or args.cluster_state)
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
        routing=args.routing,
        seed=args.seed,
        workdir=args.workdir,
        cluster=cluster,
        cluster_state=args.cluster_state,
        namespace=args.namespace,
        first_cycle_s=args.first_cycle_s if args.first_cycle_s is not None else (12.0 if cluster else 2.0),
    )


def summary(result: DemoResult) -> str:
    changes = "; ".join(result.replica_changes) or "none"
    return (
        f"demo: {result.cycles} cycles, start-up {result.startup_s:.1f} s, "
        f"replica changes applied: {changes}; service exit codes {result.exit_codes}"
    )


async def run_until_stopped(settings: DemoSettings) -> DemoResult:
    """The demo; SIGTERM cancels it like Ctrl-C does, so its clean-up still runs."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await (run_cluster_demo(settings) if settings.cluster else run_demo(settings))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    # A shell starts background jobs with SIGINT ignored; Ctrl-C must stop the demo whatever started it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = asyncio.run(run_until_stopped(settings))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("demo: interrupted; everything stopped", file=sys.stderr)
        return 0
    except Exception as exc:
        print(f"demo: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0
