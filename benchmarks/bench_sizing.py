"""Time the sizing stage (``optimizer.candidates.build_problem``) on generated systems.

Run: ``python benchmarks/bench_sizing.py [--servers 1000 5000] [--repeat 3] [--optimal]``.
Prints, per system size and token mix, the best of ``--repeat`` wall times of ``build_problem``
(system generation and validation are not timed) and the number of distinct sizing rows.

Generated systems: 7 card types x {1, 2, 4} cards per unit = 21 accelerators, 9 models with
decode-only, prefill+decode and iteration perf data (a third each), 4 classes (ITL/TTFT, TTW,
p95 TTFT, throughput-only). Token mixes: ``profiles`` draws (in, out) tokens from 8 typical
profiles, so servers share sizing work as in a real fleet; ``unique`` gives every server its own
token counts, the worst case (every (server, accelerator) pair is a distinct sizing row).
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from contract.data.system import SystemData
from optimizer.candidates import build_problem
from optimizer.settings import OptimizerSettings

CARDS = {
    "L4": (6, 8.0),
    "L40S": (32, 3.0),
    "A100": (40, 1.0),
    "H100": (75, 0.6),
    "G2": (23, 0.85),
    "MI250": (30, 1.2),
    "MI300X": (65, 0.7),
}
"""card type -> (cost per card per hour, decode time relative to A100)."""
MODELS = {
    "granite_13b": 1.0,
    "granite_34b": 2.4,
    "llama3_8b": 0.65,
    "llama_13b": 1.05,
    "llama_70b": 5.0,
    "mixtral_8_7b": 3.1,
    "mistral_7b": 0.6,
    "granite_8b": 0.65,
    "codellama_34b": 2.5,
}
"""model -> size relative to granite_13b."""
PROFILES = [(128, 1024), (512, 256), (2048, 512), (256, 128), (1024, 1024), (64, 64), (4096, 256), (300, 700)]


def generate(servers: int, unique_tokens: bool, seed: int = 7) -> SystemData:
    rng = random.Random(seed)
    accelerators, models = [], []
    for card, (cost, slow) in CARDS.items():
        for units in (1, 2, 4):
            name = card if units == 1 else f"{units}x{card}"
            accelerators.append({"name": name, "type": card, "multiplicity": units, "cost": cost * units})
            speed = slow / units**0.8
            for i, (model, size) in enumerate(MODELS.items()):
                alpha, beta = 20.58 * size * speed, 0.41 * size * speed
                entry: dict[str, Any] = {
                    "name": model,
                    "acc": name,
                    "accCount": 1,
                    "atTokens": 512,
                    "maxBatchSize": max(2, int(64 * units / size)),
                }
                if i % 3 == 0:
                    entry.update(alpha=alpha, beta=beta)
                elif i % 3 == 1:
                    entry.update(
                        decodeParms={"alpha": alpha, "beta": beta},
                        prefillParms={"gamma": 8 * alpha, "delta": beta / 32},
                    )
                else:
                    entry.update(perfParms={"alpha": alpha, "beta": beta / 10, "gamma": beta / 320})
                models.append(entry)
    classes = [
        {
            "name": "Premium",
            "priority": 1,
            "modelTargets": [
                {"model": m, "slo-itl": 60 * s, "slo-ttft": 2000 * s} for m, s in MODELS.items()
            ],
        },
        {
            "name": "Bronze",
            "priority": 2,
            "modelTargets": [
                {"model": m, "slo-itl": 160 * s, "slo-ttw": 4000 * s} for m, s in MODELS.items()
            ],
        },
        {
            "name": "Tail",
            "priority": 3,
            "modelTargets": [
                {"model": m, "slo-ttft": 3000 * s, "slo-ttft-percentile": 95} for m, s in MODELS.items()
            ],
        },
        {"name": "Batch2K", "priority": 4, "modelTargets": [{"model": m, "slo-tps": 2000} for m in MODELS]},
    ]
    server_list = []
    for i in range(servers):
        tokens = (rng.randint(32, 4096), rng.randint(32, 2048)) if unique_tokens else rng.choice(PROFILES)
        server_list.append(
            {
                "name": f"s{i}",
                "class": rng.choice(classes)["name"],
                "model": rng.choice(list(MODELS)),
                "currentAlloc": {
                    "load": {
                        "arrivalRate": rng.choice([30, 60, 120, 240, 480]),
                        "avgInTokens": tokens[0],
                        "avgOutTokens": tokens[1],
                    }
                },
            }
        )
    return SystemData.model_validate(
        {
            "accelerators": {"accelerators": accelerators},
            "capacity": {"count": [{"type": c, "count": 10 * servers} for c in CARDS]},
            "models": {"models": models},
            "serviceClasses": {"serviceClasses": classes},
            "servers": {"servers": server_list},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--optimal", action="store_true", help="batch_policy=optimal")
    args = parser.parse_args()
    settings = OptimizerSettings(batch_policy="optimal" if args.optimal else "default")
    for count in args.servers:
        for unique in (False, True):
            system = generate(count, unique)
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                problem = build_problem(system, settings)
                best = min(best, time.perf_counter() - start)
            offered = sum(len(s.candidates) for s in problem.servers)
            rejected = sum(len(s.infeasible) for s in problem.servers)
            mix = "unique " if unique else "profiles"
            print(
                f"{count:>5} servers x {len(system.accelerators.accelerators)} accelerators, tokens {mix}: "
                f"{best:6.3f} s  ({offered} candidates, {rejected} rejected)"
            )


if __name__ == "__main__":
    main()
