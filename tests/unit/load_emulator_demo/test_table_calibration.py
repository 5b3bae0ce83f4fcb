"""The demo table shows what online calibration learned, per model and accelerator."""

from __future__ import annotations

from load_emulator.demo.table import render


def test_the_learned_correction_is_a_line_of_the_table() -> None:
    report = {
        "cycle_id": "c1",
        "outcome": "ok",
        "calibration": [
            {"model": "granite_13b", "acc": "A100", "fixed_factor": 1.987, "work_factor": 0.495,
             "identified": "split", "confidence": 0.74, "evidence_windows": 27, "applied": True},
        ],
    }  # fmt: skip
    text = render("title", [], report)
    assert (
        "calibration granite_13b on A100: fixed x1.99, work x0.49 "
        "(split, confidence 0.74, 27 windows, applied)" in text.splitlines()
    )
    assert "calibration" not in render("title", [], {"cycle_id": "c1"})
