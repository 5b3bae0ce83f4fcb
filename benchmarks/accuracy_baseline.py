"""Re-predict an accuracy run's grid with another version of the model (the "before" numbers).

The emulator's observations do not depend on the model, so a baseline needs no second emulation:
this reads ``accuracy_after.json``, replaces every ``pred_*`` field with what the
``optimizer.model.predict`` importable *now* says, and writes ``accuracy_before.json`` / ``.csv``.
Run it against the old code, e.g. for the model before the prefill-stall fix (commit 4d628b1)::

    mkdir -p /tmp/model-before && git archive 4d628b1 optimizer | tar -x -C /tmp/model-before
    R=$PWD; (cd /tmp/model-before && PYTHONPATH=.:$R $R/.venv/bin/python -m benchmarks.accuracy_baseline \\
        $R/benchmarks/results/accuracy_after.json $R/benchmarks/results)

(Run from the old tree: ``python -m`` puts the working directory first on ``sys.path``, before
``PYTHONPATH``, so from the repository the current ``optimizer`` would win; the script prints the
``predict`` module it uses. ``benchmarks`` comes from this tree through ``PYTHONPATH``.) The
spot checks of the other schemas (``accuracy_schemas.json``) re-predict the same way. Only the
``predict(perf, batch, in, out, rate, settings, ttft_percentile)`` API is used, present in both.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.bench_accuracy import IN_TOKENS, OUT_TOKENS, SCHEMA_PERFS, load_pairs, read_raw, write_raw
from optimizer.model.predict import predict
from optimizer.settings import OptimizerSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("after", type=Path, help="accuracy_after.json of the grid to re-predict")
    parser.add_argument("out", type=Path, help="directory for accuracy_<label>.json / .csv")
    parser.add_argument("--label", default="before", help="'after' re-predicts with the current model")
    args = parser.parse_args()
    points = read_raw(args.after)
    names = {(q.model, q.accelerator) for q in points}
    perf = {("granite_13b", label): p for label, p in SCHEMA_PERFS.items()}
    perf |= {(p.model, p.accelerator): p.perf for p, _ in load_pairs(sorted(names - set(perf)))}
    settings = OptimizerSettings()
    rebuilt = []
    for q in points:
        args_ = (perf[(q.model, q.accelerator)], q.batch, IN_TOKENS, OUT_TOKENS, q.rate_rps, settings)
        mean = predict(*args_, ttft_percentile=95.0)
        median = predict(*args_, ttft_percentile=50.0)
        rebuilt.append(
            replace(
                q,
                pred_ttft_mean_ms=mean.ttft_ms,
                pred_ttft_p50_ms=median.ttft_percentile_ms,
                pred_ttft_p95_ms=mean.ttft_percentile_ms,
                pred_itl_mean_ms=mean.itl_ms,
                pred_wait_ms=mean.wait_ms,
                pred_utilization=mean.utilization,
                pred_ttft_at_obs_rate_ms=predict(*args_[:4], q.obs_rate_rps, settings).ttft_ms
                if q.obs_rate_rps > 0
                else math.nan,
            )
        )
    meta = json.loads(args.after.read_text())["meta"] | {"re_predicted_from": str(args.after)}
    write_raw(rebuilt, args.out, args.label, meta)
    source = sys.modules[predict.__module__].__file__
    print(f"{len(rebuilt)} points re-predicted by {source} into {args.out}/accuracy_{args.label}.json")


if __name__ == "__main__":
    main()
