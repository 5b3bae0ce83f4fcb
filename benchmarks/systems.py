"""Generated optimizer inputs of any size, built on the samples/large catalog (21 accelerators).

Used by the benchmarks and by scale tests. Seeded: the same (n_servers, seed) gives the same
system. Capacity scales with the number of servers and is set tight enough (``capacity_factor``
of what the servers would take at their cheapest) that limited mode really has to choose.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from contract.data.loader import dump_system, load_system_dir, validate_system
from contract.data.system import SystemData

SAMPLES_LARGE = Path(__file__).resolve().parent.parent / "samples" / "large"
TOKENS_IN = (128, 256, 512, 1024, 2048)
TOKENS_OUT = (64, 128, 256, 512, 1024)


def generate_system(
    n_servers: int,
    seed: int = 0,
    *,
    unlimited: bool = False,
    solver: str = "milp",
    capacity_per_server: float = 2.5,
) -> SystemData:
    """``n_servers`` (class, model) servers over the 9 models and 4 classes of samples/large."""
    base = dump_system(load_system_dir(SAMPLES_LARGE))
    rng = random.Random(seed)
    models = sorted({m["name"] for m in base["models"]["models"]})
    classes = [c["name"] for c in base["serviceClasses"]["serviceClasses"]]
    servers: list[dict[str, Any]] = []
    for i in range(n_servers):
        cls, model = rng.choice(classes), rng.choice(models)
        servers.append(
            {
                "name": f"{cls}-{model}-{i}",
                "class": cls,
                "model": model,
                "currentAlloc": {
                    "load": {
                        "arrivalRate": rng.choice((30, 60, 120, 240, 480)) * rng.uniform(0.8, 1.2),
                        "avgInTokens": rng.choice(TOKENS_IN),
                        "avgOutTokens": rng.choice(TOKENS_OUT),
                    }
                },
            }
        )
    # Every class lists every model, so generated (class, model) pairs always have targets.
    for spec in base["serviceClasses"]["serviceClasses"]:
        template = spec["modelTargets"][0]
        present = {t["model"] for t in spec["modelTargets"]}
        spec["modelTargets"] += [{**template, "model": m} for m in models if m not in present]
    types = [c["type"] for c in base["capacity"]["count"]]
    base["capacity"] = {"count": [{"type": t, "count": int(capacity_per_server * n_servers)} for t in types]}
    base["servers"] = {"servers": servers}
    base["optimizer"]["optimizer"].update({"unlimited": unlimited, "milpSolver": solver == "milp"})
    return validate_system(base, f"generated system ({n_servers} servers)")
