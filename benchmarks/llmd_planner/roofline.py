"""Roofline estimates of Llama-3.1-8B's step parameters on A100-80 and H100 (``advisor/data``).

Run: ``python -m benchmarks.llmd_planner.roofline`` (rewrites ``advisor/data/*.json``). These are
*estimates* from public spec sheets, not measurements; ``advisor/data/README.md`` says so.

Inputs: Llama-3.1-8B has 8.03e9 parameters (bf16 weights 16.06 GB) and 32 layers x 8 KV heads x
128 dims, so one token's K and V take 32*8*128*2*2 = 131,072 bytes. NVIDIA's data sheets: A100
80GB SXM 2,039 GB/s and 312 dense bf16 TFLOPS; H100 SXM 3,350 GB/s and 989 TFLOPS. Assumed:
80 % of the memory bandwidth and 50 % of the FLOPS are reached, 2 ms of scheduling and sampling
per step (1 ms more for the all-reduces of tensor parallelism), ``--gpu-memory-utilization`` 0.9
and 2 GiB per card for activations and CUDA graphs. With ``TP`` cards:

- ``fixed = weights / (0.8 * BW * TP) + 2 ms (+1 ms if TP > 1)``: every step reads the weights;
- ``perDecode = perPrefillToken = 2 * params / (0.5 * FLOPS * TP)``: a token's matrix products;
- ``perContextToken = 131072 B / (0.8 * BW * TP)``: reading one cached token's K and V;
- ``kvCacheTokens = (TP * 80 GiB * 0.9 - weights - TP * 2 GiB) / 131072 B``, whole 16-token blocks.

Prices per card-hour are llm-d-planner 0.3.3's GPU catalog (``cost_per_hour_usd``: A100-80 3.50,
H100 4.50), so both tools price alike. Node labels: NVIDIA's GPU feature discovery
(``nvidia.com/gpu.product``).
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "advisor" / "data"
GIB = 2**30
PARAMS = 8.03e9
WEIGHTS_B = PARAMS * 2
KV_B = 32 * 8 * 128 * 2 * 2
CARDS = {
    "A100-80": {
        "bw": 2.039e12,
        "flops": 312e12,
        "mem_gib": 80,
        "price": 3.5,
        "label": "NVIDIA-A100-SXM4-80GB",
    },
    "H100": {"bw": 3.35e12, "flops": 989e12, "mem_gib": 80, "price": 4.5, "label": "NVIDIA-H100-80GB-HBM3"},
}


def main() -> None:
    models, units = [], []
    for card, spec in CARDS.items():
        for tp in (1, 2):
            bw, flops = 0.8 * spec["bw"] * tp, 0.5 * spec["flops"] * tp
            token_ms = 2 * PARAMS / flops * 1000
            kv = int((tp * spec["mem_gib"] * 0.9 * GIB - WEIGHTS_B - tp * 2 * GIB) // KV_B) // 16 * 16
            name = card if tp == 1 else f"{tp}x{card}"
            units.append(
                {"name": name, "type": card, "multiplicity": tp, "memSize": spec["mem_gib"] * tp,
                 "memBW": round(spec["bw"] / 1e9 * tp), "cost": spec["price"] * tp}
            )  # fmt: skip
            models.append(
                {
                    "name": "llama-3.1-8b", "acc": name, "accCount": 1, "maxBatchSize": 256, "atTokens": 768,
                    "kvCacheTokens": kv,
                    "stepParms": {
                        "fixed": round(WEIGHTS_B / bw * 1000 + 2.0 + (1.0 if tp > 1 else 0.0), 3),
                        "perDecode": round(token_ms, 5),
                        "perPrefillToken": round(token_ms, 5),
                        "perContextToken": round(KV_B / bw * 1000, 8),
                    },
                }
            )  # fmt: skip
    placement = [
        {"type": card, "nodeLabelKey": "nvidia.com/gpu.product", "nodeLabelValue": spec["label"],
         "resource": "nvidia.com/gpu"}
        for card, spec in CARDS.items()
    ]  # fmt: skip
    (OUT / "model-data.json").write_text(json.dumps({"models": models}, indent=2) + "\n")
    (OUT / "accelerator-data.json").write_text(json.dumps({"accelerators": units}, indent=2) + "\n")
    (OUT / "placement-data.json").write_text(json.dumps({"placement": placement}, indent=2) + "\n")


if __name__ == "__main__":
    main()
