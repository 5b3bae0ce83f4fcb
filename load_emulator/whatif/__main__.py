"""``python -m load_emulator.whatif SAMPLES --pattern P --duration-s D --period-s 60 --out DIR``.

Runs the real control loop against the emulated fleet at virtual time (see
:mod:`load_emulator.whatif.driver`) and writes the report (:mod:`load_emulator.whatif.report`):
``report.md``, ``rows.csv``, ``fleet.png`` and one PNG per server. Seeded: the same arguments
give the same files. Prints the summary table and where the files went. Example::

    python -m load_emulator.whatif samples/small --pattern steps --param factors=1,3,1 \\
        --param step_s=900 --duration-s 2700 --server Premium-llama_13b --out /tmp/whatif
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from contract.data.loader import DataError
from controller.settings import ControllerSettings
from load_emulator.pattern_factory import PATTERNS, parse_param
from load_emulator.tokens import DISTRIBUTIONS
from load_emulator.whatif.driver import Scenario, WhatIfRun
from load_emulator.whatif.report import write_report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m load_emulator.whatif", description=__doc__.splitlines()[0])
    p.add_argument("samples", type=Path, help="directory of inferno data files (with placement-data.json)")
    p.add_argument("--pattern", default="constant", choices=sorted(PATTERNS))
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="pattern parameter")
    p.add_argument("--tokens", default="geometric", choices=DISTRIBUTIONS, help="token counts per request")
    p.add_argument("--duration-s", type=float, default=3600.0, help="virtual time under control")
    p.add_argument("--period-s", type=float, default=60.0, help="control period, virtual seconds")
    p.add_argument("--startup-delay-s", type=float, default=60.0, help="emulated pod start-up time")
    p.add_argument("--scale-down-window-s", type=float, default=300.0, help="actuator stabilisation window")
    p.add_argument("--server", action="append", default=[], help="keep only these servers (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="report directory (created)")
    p.add_argument("--verbose", action="store_true", help="show the loop's own log lines")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.verbose:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        params = dict(parse_param(p) for p in args.param)
        scenario = Scenario(
            args.samples, pattern=args.pattern, params=params, tokens=args.tokens, duration_s=args.duration_s,
            period_s=args.period_s, startup_delay_s=args.startup_delay_s, servers=tuple(args.server),
            seed=args.seed, controller=ControllerSettings(scale_down_window_s=args.scale_down_window_s),
        )  # fmt: skip
        run = WhatIfRun(scenario)
    except (DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = asyncio.run(run.run())
    wall_s = time.perf_counter() - start
    title = f"What-if: {args.samples.name}, {args.pattern} {params or ''}, {args.duration_s:.0f} s"
    files = write_report(rows, args.out, title)
    print((args.out / "report.md").read_text().split("\n## ")[0].rstrip())
    failed = sum(1 for r in run.reports if r.outcome == "failed")
    print(
        f"{len(run.reports)} cycles ({failed} failed) in {wall_s:.1f} s wall; "
        f"wrote {len(files)} files to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
