"""The emulated engine against vLLM's own scheduler on benchmark 5's grid, on the same requests.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.engine_vs_vllm [--engine v1|v0] [--out
benchmarks/results]`` (a few minutes: no vLLM needed). Every open run of the published reference
(``vllm_reference.json``, or ``vllm_reference_v0.json``) stores its scenario, rate, request count
and seed, so :func:`benchmarks.vllm_reference.scenarios.poisson_requests` regenerates its requests;
they go through ONE emulated replica configured like the reference's scheduler
(:func:`load_emulator.reference_drive.replica_for`), driven the same way, and are summarised the
way benchmark 5 summarises vLLM's (the first 10% by arrival left out; ITL the mean inter-token
gap). Targets (issue 22): mean TTFT within 3% and mean ITL within 2% at every load, preemptions
within 10% in the KV-limited case. Writes ``engine_vs_vllm[_v0].md`` / ``.json`` with verdicts.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_vllm_reference import WARMUP_SHARE
from benchmarks.verdicts import Verdict, as_json, markdown_lines
from benchmarks.vllm_reference.scenarios import Scenario, poisson_requests
from load_emulator.reference_drive import drive_replica, replica_for
from load_emulator.replica import Request

RESULTS = Path(__file__).resolve().parent / "results"
TTFT_PCT, ITL_PCT, PREEMPTION_PCT = 3.0, 2.0, 10.0


@dataclass(frozen=True)
class Point:
    scenario: str
    load: float
    ttft_ms: float
    engine_ttft_ms: float
    itl_ms: float
    engine_itl_ms: float
    preemptions: int
    engine_preemptions: int

    @property
    def ttft_err_pct(self) -> float:
        return 100.0 * (self.engine_ttft_ms / self.ttft_ms - 1.0)

    @property
    def itl_err_pct(self) -> float:
        return 100.0 * (self.engine_itl_ms / self.itl_ms - 1.0)


def scenario_of(sc: dict[str, Any]) -> Scenario:
    c = sc["config"]
    return Scenario(
        sc["name"],
        c["max_num_seqs"],
        c["max_num_batched_tokens"],
        sc["lengths"],
        num_blocks=c["num_blocks"],
        block_size=c["block_size"],
        engine=c.get("engine", "v1"),
        max_model_len=c.get("max_model_len", 16384),
    )


def run(sc: dict[str, Any], row: dict[str, Any], step_cost: dict[str, float]) -> tuple[float, float, int]:
    """Mean TTFT (ms), mean ITL (ms) and preemptions of our engine on the reference run's requests."""
    specs = poisson_requests(scenario_of(sc), row["rate_rps"], row["requests"], row["seed"])
    requests = [
        Request(i, s["arrival_s"], s["in_tokens"], s["out_tokens"], name=s["id"]) for i, s in enumerate(specs)
    ]
    replica = replica_for(sc["config"], step_cost)
    drive_replica(replica, requests)
    ordered = sorted(requests, key=lambda r: (r.arrival_s, r.ident))
    kept = ordered[int(WARMUP_SHARE * len(ordered)) :]
    ttft_ms = float(np.mean([(r.first_token_s - r.arrival_s) * 1000 for r in kept]))
    gaps = sum(r.out_tokens - 1 for r in kept)
    itl_ms = sum(r.finish_s - r.first_token_s for r in kept) / gaps * 1000 if gaps else float("nan")
    return ttft_ms, itl_ms, sum(r.preemptions for r in requests)


def compare(reference: dict[str, Any]) -> list[Point]:
    points: list[Point] = []
    for sc in reference["scenarios"]:
        for row in sc["loads"]:
            ttft, itl, preempted = run(sc, row, reference["step_cost"])
            points.append(
                Point(
                    sc["name"],
                    row["load"],
                    row["mean_ttft_ms"],
                    ttft,
                    row["mean_itl_ms"],
                    itl,
                    row["preemptions"],
                    preempted,
                )
            )
    return points


def verdicts(points: list[Point]) -> list[Verdict]:
    worst_t = max(points, key=lambda p: abs(p.ttft_err_pct))
    worst_i = max(points, key=lambda p: abs(p.itl_err_pct))
    kv = [p for p in points if p.preemptions or p.engine_preemptions]
    out = [
        Verdict(
            f"mean TTFT within {TTFT_PCT:g}% at every load",
            abs(worst_t.ttft_err_pct) <= TTFT_PCT,
            f"{sum(abs(p.ttft_err_pct) <= TTFT_PCT for p in points)} of {len(points)} points; worst "
            f"{worst_t.ttft_err_pct:+.2f}% ({worst_t.scenario} at {worst_t.load:.0%})",
        ),
        Verdict(
            f"mean ITL within {ITL_PCT:g}% at every load",
            abs(worst_i.itl_err_pct) <= ITL_PCT,
            f"{sum(abs(p.itl_err_pct) <= ITL_PCT for p in points)} of {len(points)} points; worst "
            f"{worst_i.itl_err_pct:+.2f}% ({worst_i.scenario} at {worst_i.load:.0%})",
        ),
    ]
    if kv:
        off = [
            p
            for p in kv
            if abs(p.engine_preemptions - p.preemptions) > PREEMPTION_PCT / 100 * max(p.preemptions, 1)
        ]
        out.append(
            Verdict(
                f"preemptions within {PREEMPTION_PCT:g}%",
                not off,
                ", ".join(
                    f"{p.scenario}@{p.load:.0%} vLLM {p.preemptions} vs ours {p.engine_preemptions}"
                    for p in kv
                ),
            )
        )
    return out


def markdown(reference: dict[str, Any], points: list[Point], judged: list[Verdict]) -> str:
    lines = [
        f"# The emulated engine against vLLM {reference['vllm_version']}'s scheduler ({reference['engine']})",
        "",
        f"Reference: benchmark 5 at commit {reference['commit']} ({reference['date']}); every run's requests "
        "regenerated from its seed and replayed through one emulated replica. Command: "
        f"`nice -n 10 .venv/bin/python -m benchmarks.engine_vs_vllm --engine {reference['engine']} --out "
        "benchmarks/results`.",
        "",
        "## Targets",
        "",
        *markdown_lines(judged),
        "",
        "## Per scenario and load",
        "",
        "| scenario | load | vLLM TTFT ms | ours | error | vLLM ITL ms | ours | error "
        "| preemptions vLLM / ours |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {p.scenario} | {p.load:.0%} | {p.ttft_ms:.2f} | {p.engine_ttft_ms:.2f} "
            f"| {p.ttft_err_pct:+.2f}% | "
            f"{p.itl_ms:.3f} | {p.engine_itl_ms:.3f} | {p.itl_err_pct:+.2f}% "
            f"| {p.preemptions} / {p.engine_preemptions} |"
            for p in points
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("v1", "v0"), default="v1")
    parser.add_argument("--out", type=Path, help="write engine_vs_vllm[_v0].md and .json here")
    args = parser.parse_args()
    tag = "" if args.engine == "v1" else "_v0"
    reference = json.loads((RESULTS / f"vllm_reference{tag}.json").read_text())
    points = compare(reference)
    judged = verdicts(points)
    print("\n".join(markdown_lines(judged)))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"engine_vs_vllm{tag}.md").write_text(markdown(reference, points, judged))
        body = {
            "points": [
                asdict(p) | {"ttft_err_pct": p.ttft_err_pct, "itl_err_pct": p.itl_err_pct} for p in points
            ],
            "verdicts": as_json(judged),
        }
        (args.out / f"engine_vs_vllm{tag}.json").write_text(json.dumps(body, indent=1) + "\n")


if __name__ == "__main__":
    main()
