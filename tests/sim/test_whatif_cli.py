"""``python -m load_emulator.whatif``: the report files exist, parse, and the run is repeatable.

Runs the CLI's ``main`` in-process on one server of ``samples/small`` under a spike pattern at
virtual time; checks the CSV's columns and row count (one row per cycle), that the Markdown has
the summary and per-server tables, that every PNG starts with the PNG signature, and that a second
run with the same seed writes the same CSV.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
import structlog

from load_emulator.whatif.__main__ import main
from load_emulator.whatif.report import COLUMNS
from tests.conftest import SAMPLES

pytestmark = pytest.mark.sim
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SERVER = "Premium-llama_13b"


def _run(out: Path) -> int:
    return main(
        [
            str(SAMPLES / "small"),
            "--pattern", "spikes",
            "--param", "factor=3", "--param", "first_s=400", "--param", "every_s=600",
            "--param", "duration_s=120",
            "--duration-s", "900",
            "--period-s", "60",
            "--server", SERVER,
            "--seed", "7",
            "--out", str(out),
        ]
    )  # fmt: skip


def test_cli_writes_table_csv_and_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path / "a") == 0
    out = tmp_path / "a"
    printed = capsys.readouterr().out
    assert "| Premium-llama_13b | Premium |" in printed and "15 cycles (0 failed)" in printed
    with (out / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS
    assert len(rows) == 15 and {r["server"] for r in rows} == {SERVER}
    assert all(int(r["replicas"]) >= 1 and float(r["cost_per_hour"]) >= 0 for r in rows)
    report = (out / "report.md").read_text()
    assert f"## {SERVER}" in report and report.count("\n| ") >= 15 + 2
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["Premium-llama_13b.png", "fleet.png"]
    for name in pngs:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, name
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    assert _run(tmp_path / "b") == 0
    assert (tmp_path / "b" / "rows.csv").read_text() == (out / "rows.csv").read_text(), "seeded: repeatable"


def test_cli_rejects_an_unknown_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(SAMPLES / "small"), "--server", "nope", "--out", str(tmp_path)])
    assert code == 2
    assert "unknown server(s) ['nope']" in capsys.readouterr().err
