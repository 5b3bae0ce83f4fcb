"""``python -m advisor profile`` against real HTTP endpoints on loopback.

An emulated vLLM replica of known step parameters (``python -m load_emulator serve-openai``, its
own process) is profiled with a short sweep: the parameters come back within 15 % and the
model-data entry and the report are written. Bad input gives a clear error and writes nothing:
an unreachable endpoint, one that is not OpenAI-compatible, a model it does not serve, a sweep
that never saturates.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from advisor.__main__ import main

ROOT = Path(__file__).resolve().parents[3]
KNOWN = {"fixed": 40.0, "perDecode": 0.3, "perPrefillToken": 0.2, "perContextToken": 0.001}
BATCH = 8
BUDGET = 1024


@pytest.fixture(scope="module")
def replica() -> Iterator[str]:
    cmd = [
        sys.executable, "-m", "load_emulator", "serve-openai", "--model", "emu", "--port", "0",
        "--step-ms", ",".join(str(v) for v in KNOWN.values()),
        "--max-batch", str(BATCH), "--max-num-batched-tokens", str(BUDGET),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        yield str(json.loads(proc.stdout.readline())["urls"][0])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def _profile(url: str, out: Path, *extra: str, model: str = "emu") -> int:
    return main(
        [
            "profile", "--url", url, "--model", model, "--accelerator", "EMU", "--out", str(out),
            "--max-num-batched-tokens", str(BUDGET), "--no-plot", *extra,
        ]
    )  # fmt: skip


def test_a_short_sweep_recovers_the_parameters_within_15_percent(replica: str, tmp_path: Path) -> None:
    out = tmp_path / "profile"
    code = _profile(
        replica, out, "--prompt-tokens", "64,700", "--output-tokens", "16", "--concurrency", "1,4,8,16",
        "--level-s", "2.5",
    )  # fmt: skip
    assert code == 0
    entry = json.loads((out / "model-data.json").read_text())["models"][0]
    assert (entry["name"], entry["acc"], entry["maxBatchSize"]) == ("emu", "EMU", BATCH)
    for name, value in KNOWN.items():
        assert entry["stepParms"][name] == pytest.approx(value, rel=0.15), name
    report = json.loads((out / "profile-report.json").read_text())
    assert report["accepted"] and report["r2_itl"] > 0.9
    assert (out / "profile-report.md").read_text().startswith("# Profile: emu on EMU")


def test_a_sweep_that_never_saturates_writes_nothing(
    replica: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "profile"
    code = _profile(
        replica, out, "--prompt-tokens", "64", "--output-tokens", "8", "--concurrency", "1,2,4",
        "--level-s", "1.5",
    )  # fmt: skip
    assert code == 3
    assert "never saturated" in capsys.readouterr().err
    assert not out.exists()


def test_a_model_the_endpoint_does_not_serve_is_an_error(
    replica: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _profile(replica, tmp_path / "p", model="llama")
    assert code == 2
    assert "does not serve model 'llama'" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_an_unreachable_endpoint_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    code = _profile(f"http://127.0.0.1:{port}", tmp_path / "p")
    assert code == 2
    assert "cannot reach" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


class _NotOpenAI(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>a web page</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.mark.parametrize("path_status", [200, 404], ids=["html", "not-found"])
def test_an_endpoint_that_is_not_openai_compatible_is_an_error(
    path_status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = type("Handler", (_NotOpenAI,), {})
    if path_status == 404:
        handler.do_GET = lambda self: self.send_error(404)  # type: ignore[method-assign]
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code = _profile(f"http://127.0.0.1:{server.server_port}", tmp_path / "p")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2
    assert "is not OpenAI-compatible" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
