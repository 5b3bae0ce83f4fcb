"""Command line: ``python -m load_emulator {simulate,serve} SAMPLES_DIR [options]``, ``serve-openai``.

- ``simulate``: the fleet described by a directory of inferno data files, under a load pattern, at
  virtual time; prints per-server load, throughput, p50/p95 TTFT and ITL against the targets and
  SLO attainment over ``[warmup, duration)``, and the emulation speed. ``--json`` for machines.
- ``serve``: the same fleet in real time, exporting vLLM metrics on 127.0.0.1 (see
  :mod:`load_emulator.metrics_http`); ``--kube`` reads the Deployments from the current kube
  context instead of emulating the cluster; ``--label-mode`` also random-walks the load labels.
- ``serve-openai``: one or ``--replicas N`` emulated vLLM replicas speaking the OpenAI API, each
  on its own loopback port (:mod:`load_emulator.openai_api.launch`).

Examples::

    python -m load_emulator simulate samples/large --pattern diurnal --param period_s=7200 \\
        --duration-s 7200 --window-s 600
    python -m load_emulator serve samples/small --port 8000 --duration-s 600
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from contract.data.loader import DataError, load_system_dir
from load_emulator.engine import EngineConfig, FleetEngine, catalog_of
from load_emulator.fleet import build_fleet
from load_emulator.pattern_factory import PATTERNS, parse_param
from load_emulator.report import format_table, server_rows
from load_emulator.routing import ROUTINGS
from load_emulator.sched_config import V1_MAX_NUM_BATCHED_TOKENS
from load_emulator.tokens import DISTRIBUTIONS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m load_emulator", description="Emulated vLLM fleet")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("simulate", "run at virtual time and report"), ("serve", "run in real time")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("samples", help="directory of inferno data files")
        sub.add_argument("--pattern", default="constant", choices=sorted(PATTERNS))
        sub.add_argument(
            "--param", action="append", default=[], metavar="KEY=VALUE", help="pattern parameter"
        )
        sub.add_argument("--tokens", default="geometric", choices=DISTRIBUTIONS, help="token distribution")
        sub.add_argument("--duration-s", type=float, default=3600.0)
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--routing", default="round-robin", choices=ROUTINGS)
        sub.add_argument("--scheduling", default="chunked", choices=("chunked", "prefill-first"))
        sub.add_argument(
            "--max-num-batched-tokens",
            type=int,
            default=V1_MAX_NUM_BATCHED_TOKENS,
            help="token budget per step",
        )
        sub.add_argument("--long-prefill-token-threshold", type=int, default=0,
                         help="most prompt tokens per request per step (0: no cap)")  # fmt: skip
        sub.add_argument("--kv-limit", action=argparse.BooleanOptionalAction, default=True,
                         help="model each replica's KV cache (blocks, preemption)")  # fmt: skip
        sub.add_argument("--startup-delay-s", type=float, default=60.0, help="emulated pod start-up time")
        sub.add_argument("--limited", action=argparse.BooleanOptionalAction, default=None,
                         help="enforce capacity-data (default: the data's 'unlimited' flag)")  # fmt: skip
        sub.add_argument("--namespace", default="inferno-demo")
    simulate = commands.choices["simulate"]
    simulate.add_argument("--warmup-s", type=float, default=300.0, help="left out of the report")
    simulate.add_argument("--window-s", type=float, default=0.0, help="also report every window (0: no)")
    simulate.add_argument("--json", action="store_true")
    serve = commands.choices["serve"]
    serve.add_argument("--port", type=int, default=8000, help="loopback port (0: any free port)")
    serve.add_argument("--kube", action="store_true", help="read Deployments from the current kube context")
    serve.add_argument("--label-mode", action="store_true", help="random-walk the load labels")
    serve.add_argument("--label-period-s", type=float, default=30.0)
    serve_openai = commands.add_parser(
        "serve-openai", help="emulated vLLM replicas speaking the OpenAI API on loopback ports"
    )
    from load_emulator.openai_api.launch import add_arguments  # noqa: PLC0415 - aiohttp only when serving

    add_arguments(serve_openai)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve-openai":
        from load_emulator.openai_api.launch import main as serve_openai  # noqa: PLC0415

        return serve_openai(args)
    try:
        system = load_system_dir(args.samples)
        params = dict(parse_param(p) for p in args.param)
        fleet = build_fleet(
            system, pattern=args.pattern, params=params, distribution=args.tokens, namespace=args.namespace,
            startup_delay_s=args.startup_delay_s, limited=args.limited, seed=args.seed,
        )  # fmt: skip
    except (DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = EngineConfig(
        routing=args.routing,
        scheduling=args.scheduling,
        max_num_batched_tokens=args.max_num_batched_tokens,
        long_prefill_token_threshold=args.long_prefill_token_threshold,
        kv_limit=args.kv_limit,
    )
    if args.command == "simulate":
        engine = FleetEngine(catalog_of(system), fleet.cluster, fleet.workloads, config, seed=args.seed)
        return _simulate(engine, system, args)
    from load_emulator.serve import serve  # noqa: PLC0415 - aiohttp/kubernetes only for serve

    return asyncio.run(serve(system, fleet, config, args))


def _simulate(engine: FleetEngine, system: Any, args: argparse.Namespace) -> int:
    start = time.perf_counter()
    engine.advance_to(args.duration_s)
    wall_s = time.perf_counter() - start
    t0 = min(args.warmup_s, args.duration_s)
    rows = server_rows(engine, system, t0, args.duration_s)
    windows: list[tuple[float, float]] = []
    if args.window_s > 0:
        edges = [t0 + i * args.window_s for i in range(int((args.duration_s - t0) // args.window_s) + 1)]
        windows = list(itertools.pairwise(edges))
    if args.json:
        out = {
            "duration_s": args.duration_s,
            "wall_s": wall_s,
            "servers": [r.to_json() for r in rows],
            "windows": [
                {"t0_s": a, "t1_s": b, "servers": [r.to_json() for r in server_rows(engine, system, a, b)]}
                for a, b in windows
            ],
        }
        print(json.dumps(out, indent=1))
        return 0
    for a, b in windows:
        print(f"--- window [{a:.0f}, {b:.0f}) s")
        print(format_table(server_rows(engine, system, a, b)))
    print(f"--- [{t0:.0f}, {args.duration_s:.0f}) s")
    print(format_table(rows))
    replicas = sum(1 for _ in engine.replicas())
    print(
        f"emulated {args.duration_s:.0f} s of {len(rows)} servers / {replicas} replicas in {wall_s:.1f} s "
        f"({args.duration_s / 3600 / max(wall_s, 1e-9):.2f} virtual hours per wall second)"
    )
    return 0
