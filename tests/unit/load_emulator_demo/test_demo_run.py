"""The embedded demo end to end: the four real services act on the emulated cluster (loopback only).

Runs ``python -m load_emulator.demo`` as a subprocess (so the unit tier's kube-config guard in
``conftest.py`` stays in force here) for about 20 s of load with a cycle every 5 s, and checks
that the loop really acted: the table was printed every cycle, the actuator applied at least one
replica change, and every service exited cleanly. Takes about 30 s on 2 cores.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_demo_runs_the_loop_and_stops_everything(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "load_emulator.demo", "--duration-s", "18", "--cycle-s", "5",
         "--startup-delay-s", "2", "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "ready in" in out
    assert out.count("TTFT ms pred/p50/p95/slo") >= 3, out
    for name in ("Premium-llama_13b", "Bronze-llama_13b", "Free-granite_13b"):
        assert name in out
    summary = out.strip().splitlines()[-1]
    match = re.search(r"replica changes applied: (.*); service exit codes \[(.*)\]", summary)
    assert match, summary
    assert match.group(1) != "none", summary
    assert match.group(2) == "0, 0, 0, 0", summary
    assert (tmp_path / "kubeconfig").exists()
    for name in ("collector", "optimizer", "actuator", "controller"):
        assert (tmp_path / f"{name}.log").exists()
