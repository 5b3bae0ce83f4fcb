"""What one cycle costs its backends: PromQL queries, Kubernetes API calls, peak RSS.

Role: helpers of `bench_cycle`.

- `CountingProxy`: a plain HTTP reverse proxy on 127.0.0.1 in front of Prometheus; the collector
  is pointed at it, so every query it sends is counted (`/api/v1/query*` paths).
- `apiserver_calls`: kube-apiserver's own `apiserver_request_total`, summed by
  (verb, group, resource, subresource). The difference across one cycle, restricted to the calls
  the collector and actuator make (`OUR_CALLS`), is their API-call count; the other components
  (controller-manager, scheduler, KWOK) use watches, UPDATE and status subresources, so they do
  not land in these keys. Events are left out: the deployment controller's rollout Events land
  in the same counter as the actuator's (one per applied or failed patch).
- `peak_rss_mib`: `VmHWM` of a process from /proc, i.e. its peak resident set.
- `cpu_seconds`: user + system CPU time of a process; its difference across a cycle is what the
  cycle cost in CPU, whatever else the shared machine was doing (wall times are not).
"""

from __future__ import annotations

import os
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
QUERY_PREFIX = "/api/v1/query"
# (verb, group, resource, subresource) -> short name, for the calls our services make.
OUR_CALLS = {
    ("LIST", "apps", "deployments", ""): "list deployments",
    ("GET", "", "configmaps", ""): "get configmaps",
    ("PATCH", "apps", "deployments", ""): "patch deployments",
    ("LIST", "", "nodes", ""): "list nodes",
    ("LIST", "", "pods", ""): "list pods",
}
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class CountingProxy:
    """Forwards GET/POST to `upstream` (Prometheus) and counts the query requests."""

    def __init__(self, upstream: str, timeout_s: float = 30.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.queries = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, body: bytes | None) -> None:
                if self.path.startswith(QUERY_PREFIX):
                    with proxy._lock:
                        proxy.queries += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() in {"content-type", "accept"}}
                request = urllib.request.Request(
                    proxy.upstream + self.path, data=body, headers=headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(request, timeout=timeout_s) as resp:
                        status, payload, ctype = resp.status, resp.read(), resp.headers.get("Content-Type")
                except urllib.error.HTTPError as exc:
                    status, payload, ctype = exc.code, exc.read(), exc.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._forward(self.rfile.read(length))

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="prom-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_request_totals(text: str) -> Counter[tuple[str, str, str, str]]:
    """`apiserver_request_total` samples summed by (verb, group, resource, subresource)."""
    totals: Counter[tuple[str, str, str, str]] = Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        key = (labels.get("verb", ""), labels.get("group", ""), labels.get("resource", ""),
               labels.get("subresource", ""))  # fmt: skip
        totals[key] += int(float(match["value"]))
    return totals


def apiserver_calls(api_client: Any) -> Counter[tuple[str, str, str, str]]:
    """The API server's request counters, read with the admin client (`GET /metrics`)."""
    resp = api_client.call_api("GET", api_client.configuration.host + "/metrics", _request_timeout=30)
    return parse_request_totals(resp.read().decode())


def our_calls(
    before: Counter[tuple[str, str, str, str]], after: Counter[tuple[str, str, str, str]]
) -> dict[str, int]:
    """Calls of the collector and actuator between two snapshots, by short name (zeros left out)."""
    out = {name: after[key] - before[key] for key, name in OUR_CALLS.items()}
    return {name: n for name, n in out.items() if n}


def peak_rss_mib(pid: int) -> float:
    """Peak resident set (VmHWM) of a live process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmHWM for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far, seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_by_name(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = cpu_seconds(pid)
        except OSError:
            continue  # exited
    return out


def service_pids(service_names: tuple[str, ...], parent_pid: int) -> dict[str, int]:
    """Pids of `python -m plumbing.entry <name>` children of `parent_pid`, by service name."""
    found: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid != parent_pid or b"plumbing.entry" not in argv:
            continue
        name = argv[argv.index(b"plumbing.entry") + 1].decode()
        if name in service_names:
            found[name] = int(proc.name)
    return found
