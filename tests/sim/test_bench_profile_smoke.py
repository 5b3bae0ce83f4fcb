"""Smoke test of the profiler benchmark (``benchmarks.bench_profile``) without HTTP.

Its reference, the same closed loop run by the same engine at virtual time, must saturate each
shape at the known parameters' rate as the optimizer's model reads them (the closed loop of fixed
lengths on a chunked engine is the model's case), and the verdicts must judge a run's numbers.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_profile import BATCH, BUDGET, KNOWN, SHAPES, _virtual_saturation, verdicts_of
from optimizer.profiling.levels import Level
from optimizer.profiling.verdict import model_saturation_rps


def test_the_virtual_reference_saturates_where_the_model_says() -> None:
    _, perf = KNOWN["step"]
    levels = [
        Level(i, clients, in_tokens, out_tokens, 0.0, 0.0)
        for i, (clients, (in_tokens, out_tokens)) in enumerate((c, s) for s in SHAPES for c in (16, 32, 64))
    ]
    virtual = _virtual_saturation(perf, levels, 20.0)
    for in_tokens, out_tokens in SHAPES:
        model = model_saturation_rps(perf, BATCH, in_tokens, out_tokens, BUDGET)
        assert virtual[(in_tokens, out_tokens)] == pytest.approx(model, rel=0.10)


def test_the_verdicts_judge_a_run() -> None:
    run = {
        "schema": "step",
        "errors": {"fixed": 0.01, "perDecode": -0.07},
        "saturation": [
            {
                "in": 128,
                "out": 48,
                "saturated": True,
                "measured_rps": 6.8,
                "virtual_rps": 6.9,
                "measured_error": -0.014,
                "model_known_rps": 6.7,
                "model_fitted_rps": 6.75,
                "model_error": 0.007,
            }
        ],
        "wall_s": 170.0,
    }
    verdicts = verdicts_of([run])
    assert [v.holds for v in verdicts] == [False, True, True]
    assert "perDecode -7.0%" in verdicts[0].detail
