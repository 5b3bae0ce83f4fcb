"""One loopback exporter serving the vLLM series of many Deployments, for the cycle benchmark.

Role: `bench_cycle` needs Prometheus to hold vLLM metrics for up to 1,000 Deployments without
running 1,000 emulator endpoints. `VllmExporter` is one HTTP server on 127.0.0.1 whose
`/metrics` writes, for every `ServerLoad`, the series the collector queries
(collector/promql.py) with the labels its default grouping needs: `namespace`, `deployment`
(and `pod`, `model_name`). Prometheus scrapes it as a single target that carries no
`namespace`/`deployment` target labels, so the labels in the text are kept as written.

Counters grow linearly at the declared rates (`value = rate * elapsed_s`), so `rate()` over any
window returns exactly the declared load: completions = rpm / 60, tokens = completions * mean
tokens, TTFT/ITL = sum / count. Gauges are constant. The lines are built once
(`exposition_lines`); `render` only formats the values (pure: time is an argument).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class ServerLoad:
    """The steady load one Deployment reports; one emulated pod carries all of it."""

    namespace: str
    deployment: str
    model: str
    rpm: float
    in_tokens: int
    out_tokens: int
    ttft_s: float = 0.2
    itl_s: float = 0.03
    running: float = 2.0
    waiting: float = 0.0

    @property
    def labels(self) -> str:
        pod = f"{self.deployment}-bench-0"
        return (
            f'namespace="{self.namespace}",deployment="{self.deployment}",pod="{pod}",'
            f'model_name="{self.model}"'
        )


# (metric, type, value per second of elapsed time (counters) or the gauge value)
def _families(load: ServerLoad) -> list[tuple[str, str, float]]:
    completions_per_s = load.rpm / 60.0
    tokens_per_s = completions_per_s * max(load.out_tokens - 1, 1)
    return [
        ("vllm:request_success_total", "counter", completions_per_s),
        ("vllm:prompt_tokens_total", "counter", completions_per_s * load.in_tokens),
        ("vllm:generation_tokens_total", "counter", completions_per_s * load.out_tokens),
        ("vllm:time_to_first_token_seconds_sum", "counter", completions_per_s * load.ttft_s),
        ("vllm:time_to_first_token_seconds_count", "counter", completions_per_s),
        ("vllm:inter_token_latency_seconds_sum", "counter", tokens_per_s * load.itl_s),
        ("vllm:inter_token_latency_seconds_count", "counter", tokens_per_s),
        ("vllm:num_requests_running", "gauge", load.running),
        ("vllm:num_requests_waiting", "gauge", load.waiting),
    ]


def exposition_lines(loads: Sequence[ServerLoad]) -> list[tuple[str, float, bool]]:
    """(line prefix or `# TYPE` comment, value per second or gauge value, is counter), grouped by family."""
    per_server = [(load.labels, _families(load)) for load in loads]
    if not per_server:
        return []
    lines: list[tuple[str, float, bool]] = []
    for index, (name, kind, _) in enumerate(per_server[0][1]):
        lines.append((f"# TYPE {name} {kind}", math.nan, False))
        lines += [
            (f"{name}{{{labels}}}", families[index][2], kind == "counter") for labels, families in per_server
        ]
    return lines


def render(lines: Sequence[tuple[str, float, bool]], elapsed_s: float, timestamp_ms: int) -> str:
    """Prometheus text exposition of `exposition_lines` at `elapsed_s` seconds after the start.

    Each sample carries `timestamp_ms`, the time it was rendered, so a scrape delayed by a busy
    machine does not bend the rates. Example: rpm 60 -> `vllm:request_success_total{...} 10 <ms>`
    at elapsed 10 s.
    """
    out = [
        prefix
        if math.isnan(value)
        else f"{prefix} {value * elapsed_s if counter else value:.6g} {timestamp_ms}"
        for prefix, value, counter in lines
    ]
    return "\n".join(out) + "\n" if out else ""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a scrape that timed out closes its socket: nothing to report, the next one comes


class VllmExporter:
    """`GET /metrics` on a free loopback port, served from daemon threads until `stop()`.

    The body is rendered every `refresh_s` by a background thread and served as is, so a scrape
    costs only the copy even when the machine is busy.
    """

    def __init__(self, loads: Sequence[ServerLoad], refresh_s: float = 0.5) -> None:
        self.lines = exposition_lines(loads)
        self.scrapes = 0
        self.refresh_s = refresh_s
        self._started_s = time.monotonic()
        self._body = self._render()
        self._stop = threading.Event()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter._body
                exporter.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # one line per scrape would flood the benchmark's output

        self._server = _QuietServer((LOOPBACK, 0), Handler)
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="vllm-exporter", daemon=True),
            threading.Thread(target=self._refresh, name="vllm-exporter-render", daemon=True),
        ]

    def _render(self) -> bytes:
        return render(self.lines, time.monotonic() - self._started_s, int(time.time() * 1000)).encode()

    def _refresh(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self._body = self._render()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> VllmExporter:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
