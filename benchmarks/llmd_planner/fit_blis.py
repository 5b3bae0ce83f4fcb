"""Step parameters of Llama-3.1-8B fitted to llm-d-planner's public benchmark rows.

Run: ``python -m benchmarks.llmd_planner.fit_blis PATH/TO/benchmarks_BLIS.json``; the file is in
the ``llm-d-planner`` wheel (``pip download llm-d-planner==0.3.3 --no-deps``, then unzip
``planner/data/performance/benchmarks_BLIS.json``). Writes ``advisor/data/blis/`` (model,
accelerator and placement data) for ``python -m advisor recommend --data advisor/data/blis``.

The rows (model ``meta-llama/llama-3.1-8b-instruct``, 512 +/- 128 prompt and 256 +/- 64 output
tokens, vLLM 0.8.4, produced by llm-d's BLIS inference simulator) give the mean TTFT and ITL at
a few request rates per (GPU, tensor parallelism): one row for an A100-80 alone, ten for the
others, all at light load (the ITL hardly moves across them). For each configuration ``fixed``
and ``perPrefillToken`` are fitted so that the optimizer's own model
(:func:`optimizer.model.predict`, batch 256, the rows' length spread) reproduces the rows' mean
ITL and TTFT (least squares on relative errors); ``perDecode`` and ``perContextToken``, which
only loads the rows do not reach would reveal, are held at the roofline estimates of
``advisor/data``. So the
recommendation on this data and llm-d-planner's rest on the same measurements: what differs is
the method (a queueing model against a lookup of the highest benchmarked rate).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from contract.data.perf import StepPerf
from optimizer.model.predict import predict
from optimizer.model.service_time import LengthSpread
from optimizer.settings import OptimizerSettings

ROOT = Path(__file__).resolve().parents[2]
ESTIMATES = ROOT / "advisor" / "data"
OUT = ESTIMATES / "blis"
MODEL = "meta-llama/llama-3.1-8b-instruct"
SPREAD = LengthSpread(in_cv2=(128 / 512) ** 2, out_cv2=(64 / 256) ** 2)


def fit_rows(rows: list[dict[str, float]], estimate: dict[str, float]) -> tuple[StepPerf, float]:
    settings = OptimizerSettings()
    decode_ms, context_ms = estimate["perDecode"], estimate["perContextToken"]

    def step(theta: np.ndarray) -> StepPerf:
        return StepPerf(float(theta[0]), decode_ms, float(theta[1]), context_ms)

    def residual(theta: np.ndarray) -> np.ndarray:
        perf = step(theta)
        out = []
        for r in rows:
            p = predict(perf, 256, 512, 256, r["requests_per_second"], settings, spread=SPREAD)
            out += [p.itl_ms / r["itl_mean"] - 1.0, p.ttft_ms / r["ttft_mean"] - 1.0]
        return np.asarray(out)

    fitted = least_squares(residual, np.array([10.0, 0.05]), bounds=(0.0, np.inf), x_scale="jac")
    return step(fitted.x), float(np.max(np.abs(residual(fitted.x))))


def main() -> int:
    rows = [
        r
        for r in json.loads(Path(sys.argv[1]).read_text())["benchmarks"]
        if r["model_hf_repo"].lower() == MODEL and r["prompt_tokens"] == 512 and r["output_tokens"] == 256
    ]
    estimates = {m["acc"]: m for m in json.loads((ESTIMATES / "model-data.json").read_text())["models"]}
    accelerators = json.loads((ESTIMATES / "accelerator-data.json").read_text())["accelerators"]
    models, units = [], []
    for gpu, tp in sorted({(r["hardware"], r["hardware_count"]) for r in rows}):
        name = gpu if tp == 1 else f"{tp}x{gpu}"
        estimate = estimates.get(name)
        if estimate is None:
            print(
                f"{name}: no estimate in advisor/data to take perContextToken from; skipped", file=sys.stderr
            )
            continue
        mine = [r for r in rows if (r["hardware"], r["hardware_count"]) == (gpu, tp)]
        perf, worst = fit_rows(mine, estimate["stepParms"])
        print(f"{name}: {len(mine)} rows, {perf}, worst relative error {worst:.1%}", file=sys.stderr)
        models.append(
            {
                **{
                    k: estimate[k]
                    for k in ("name", "acc", "accCount", "maxBatchSize", "atTokens", "kvCacheTokens")
                },
                "stepParms": {
                    "fixed": round(perf.fixed_ms, 4),
                    "perDecode": round(perf.per_decode_ms, 6),
                    "perPrefillToken": round(perf.per_prefill_token_ms, 6),
                    "perContextToken": perf.per_context_token_ms,
                },
            }
        )
        units.append(name)
    OUT.mkdir(exist_ok=True)
    (OUT / "model-data.json").write_text(json.dumps({"models": models}, indent=2) + "\n")
    kept = [a for a in accelerators if a["name"] in units]
    (OUT / "accelerator-data.json").write_text(json.dumps({"accelerators": kept}, indent=2) + "\n")
    (OUT / "placement-data.json").write_text((ESTIMATES / "placement-data.json").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
