"""Run ``driver.py`` in the vLLM venv as child processes, JSON in and out (host side).

Called by :mod:`benchmarks.bench_vllm_reference` and :mod:`benchmarks.vllm_reference.golden`. The
runs are dealt round-robin to ``jobs`` children (each pays vLLM's ~20 s import once); every child
runs under ``nice -n 10``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

VLLM_VERSION = "0.33.0"
"""The V1 reference's vLLM release."""
VLLM_V0_VERSION = "0.8.5"
"""The release whose V0 engine (``vllm.core.scheduler``) is the prefill-first reference."""
DRIVER = Path(__file__).resolve().with_name("driver.py")


def default_vllm_python(version: str = VLLM_VERSION) -> Path:
    """The venv ``setup.sh [version]`` makes: ``~/.cache/inferno-vllm/venv-<version>``, or
    ``$INFERNO_VLLM_VENV`` for the V1 reference's version."""
    venv = os.environ.get("INFERNO_VLLM_VENV") if version == VLLM_VERSION else None
    path = Path(venv) if venv else Path.home() / ".cache" / "inferno-vllm" / f"venv-{version}"
    return path / "bin" / "python"


def run_driver(
    runs: list[dict[str, Any]], vllm_python: Path, jobs: int = 1
) -> tuple[str, list[dict[str, Any]]]:
    """Every run's driver output, in the order of ``runs``, and the vLLM version that ran them."""
    if not vllm_python.exists():
        raise SystemExit(f"{vllm_python} not found: run benchmarks/vllm_reference/setup.sh first")
    jobs = max(1, min(jobs, len(runs)))
    shares = [list(range(j, len(runs), jobs)) for j in range(jobs)]
    with tempfile.TemporaryDirectory(prefix="vllm-ref-") as tmp:
        procs = []
        for j, share in enumerate(shares):
            in_path, out_path = Path(tmp) / f"in{j}.json", Path(tmp) / f"out{j}.json"
            in_path.write_text(json.dumps({"runs": [runs[i] for i in share]}), encoding="utf-8")
            cmd = ["nice", "-n", "10", str(vllm_python), str(DRIVER), str(in_path), str(out_path)]
            procs.append((subprocess.Popen(cmd, stderr=sys.stderr), out_path))
        outputs: list[dict[str, Any] | None] = [None] * len(runs)
        version = ""
        for (proc, out_path), share in zip(procs, shares, strict=True):
            if proc.wait() != 0:
                raise SystemExit(f"driver failed with code {proc.returncode}")
            data = json.loads(out_path.read_text(encoding="utf-8"))
            version = data["vllm_version"]
            for i, result in zip(share, data["runs"], strict=True):
                outputs[i] = result
    return version, [o for o in outputs if o is not None]
