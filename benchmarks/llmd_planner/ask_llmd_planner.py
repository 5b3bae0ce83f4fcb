"""Ask llm-d-planner (PyPI ``llm-d-planner``, Python >= 3.12) the comparison question, offline.

Run with an interpreter that has it installed (not the project's venv: it needs Python 3.12)::

    python3.12 -m venv /tmp/llmd && /tmp/llmd/bin/pip install llm-d-planner==0.3.3
    /tmp/llmd/bin/python benchmarks/llmd_planner/ask_llmd_planner.py \
        > benchmarks/results/llmd_planner_answer.json

The question: Llama-3.1-8B-Instruct, A100-80 or H100, 512 prompt / 256 output tokens, 4 req/s,
TTFT 1000 ms, ITL 40 ms (E2E left loose: 1000 + 256 x 40 ms). llm-d-planner's own path: its
bundled benchmark rows (``planner/data/performance/benchmarks_BLIS.json``, vLLM 0.8.4 rows from
llm-d's BLIS inference simulator) in an in-memory database, ``ConfigFinder.plan_all_capacities``
(rows meeting the SLO at its default p95, the highest benchmarked rate per configuration as its
capacity, replicas = ceil(1.2 x rate / capacity), cost from its GPU catalog). Its roofline
estimation for rows it lacks needs an extra package and is off (``enable_estimated=False``).
"""

from __future__ import annotations

import json
import sys

from planner.data._resolver import data_path
from planner.knowledge_base.benchmarks import BenchmarkRepository
from planner.knowledge_base.model_catalog import ModelCatalog
from planner.recommendation.config_finder import ConfigFinder
from planner.shared.schemas import DeploymentIntent, SLOTargets, TrafficProfile

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def main() -> int:
    rows = data_path("performance/benchmarks_BLIS.json")
    repo = BenchmarkRepository.from_files(rows, db_path=":memory:")
    finder = ConfigFinder(benchmark_repo=repo, catalog=ModelCatalog())
    intent = DeploymentIntent(
        use_case="chatbot_conversational",
        user_count=100,
        preferred_gpu_types=["A100-80", "H100"],
        preferred_models=[MODEL],
    )
    traffic = TrafficProfile(prompt_tokens=512, output_tokens=256, expected_qps=4.0)
    slo = SLOTargets(ttft_target_ms=1000, itl_target_ms=40, e2e_target_ms=1000 + 256 * 40, percentile="p95")
    configs, warnings = finder.plan_all_capacities(
        traffic, slo, intent, preferred_models=[MODEL], enable_estimated=True
    )
    out = []
    for rec in configs:
        d = rec.model_dump(mode="json")
        if "llama-3.1-8b" not in json.dumps(d).lower():
            continue
        out.append(d)
    json.dump(
        {
            "question": {
                "model": MODEL,
                "gpus": ["A100-80", "H100"],
                "in": 512,
                "out": 256,
                "qps": 4.0,
                "ttft_p95_ms": 1000,
                "itl_p95_ms": 40,
            },
            "warnings": warnings,
            "recommendations": out,
        },
        sys.stdout,
        indent=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
