"""A throwaway Prometheus on 127.0.0.1 scraping loopback targets listed in a file_sd file.

Role: `LocalPrometheus` runs Debian's `prometheus` binary (it has no Kubernetes discovery, so
targets are set with `set_targets`, written to file_sd JSON files that Prometheus re-reads on
change; rule files are set with `set_rules`, which makes it reload them). `jobs=2` adds a second
scrape job with its own file_sd directory (`set_targets(..., job=1)`): the same targets in both
scrape every pod twice, as two jobs or an HA pair behind one endpoint do. Callers: the
`local_prometheus` fixture in tests/e2e/conftest.py, `python -m e2e.cluster`, the e2e scenarios
that point it at the load emulator's vLLM metrics, and tests/e2e/test_alerts.py.
Targets must be loopback addresses: the tests never send traffic off this machine.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import shutil
import signal
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import LOOPBACK, ManagedProcess, free_port, make_run_dir, wait_for

JOB = "inferno-e2e"


@dataclass(frozen=True)
class ScrapeTarget:
    address: str  # "127.0.0.1:8000"
    labels: Mapping[str, str] = field(default_factory=dict)  # e.g. namespace, deployment, pod

    def __post_init__(self) -> None:
        host = self.address.rsplit(":", 1)[0].strip("[]")
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"scrape target {self.address!r} is not a loopback address")


def find_prometheus() -> Path | None:
    """$INFERNO_E2E_PROMETHEUS, then `prometheus` on PATH (Debian puts it in /usr/bin)."""
    if env := os.environ.get("INFERNO_E2E_PROMETHEUS"):
        return Path(env) if Path(env).is_file() else None
    found = shutil.which("prometheus")
    return Path(found) if found else None


class LocalPrometheus:
    def __init__(
        self,
        binary: Path | None = None,
        scrape_interval_s: float = 1.0,
        keep_dir: bool = False,
        jobs: int = 1,
    ) -> None:
        resolved = binary or find_prometheus()
        if resolved is None:
            raise FileNotFoundError("prometheus not found: run tests/e2e/cluster/install.sh")
        self.binary = resolved
        self.scrape_interval_s = scrape_interval_s
        self.keep_dir = keep_dir
        self.jobs = jobs
        self.port = 0
        self._root: Path | None = None
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def root(self) -> Path:
        if self._root is None:
            raise RuntimeError("LocalPrometheus is not started")
        return self._root

    def start(self) -> LocalPrometheus:
        self._root = root = make_run_dir("inferno-e2e-prometheus-")
        self.port = free_port()
        for job in range(self.jobs):
            (root / self._targets_dir(job)).mkdir()
            self.set_targets([], job=job)
        (root / "rules").mkdir()
        interval = f"{int(self.scrape_interval_s * 1000)}ms"
        (root / "prometheus.yml").write_text(
            json.dumps(
                {  # JSON is valid YAML: no PyYAML needed
                    "global": {
                        "scrape_interval": interval,
                        "evaluation_interval": interval,
                        "scrape_timeout": interval,
                    },
                    "rule_files": [str(root / "rules" / "*.yml")],
                    "scrape_configs": [
                        {
                            "job_name": JOB if job == 0 else f"{JOB}-{job + 1}",
                            "file_sd_configs": [
                                {
                                    "files": [str(root / self._targets_dir(job) / "*.json")],
                                    "refresh_interval": "1s",
                                }
                            ],
                        }
                        for job in range(self.jobs)
                    ],
                },
                indent=1,
            )
        )
        argv = [
            str(self.binary),
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
        ]
        self._proc = ManagedProcess("prometheus", argv, root / "prometheus.log")
        atexit.register(self.stop)
        try:
            self._proc.start()
            self._wait(lambda: self._get("/-/ready") is not None, what="prometheus ready", timeout_s=60)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                proc.stop()
        finally:  # even on a second Ctrl-C the temp dir goes
            root, self._root = self._root, None
            if root is not None and not self.keep_dir:
                shutil.rmtree(root, ignore_errors=True)
            atexit.unregister(self.stop)

    # ---- fault injection (tests/e2e/test_faults*.py) ---------------------------------------
    def stop_server(self) -> None:
        """Stop the Prometheus process only: port, config, targets and TSDB stay for start_server."""
        if self._proc is not None:
            self._proc.stop()

    def start_server(self, timeout_s: float = 60.0) -> None:
        """Start the stopped Prometheus again on the same port and data; wait until it is ready."""
        old = self._proc
        if old is None:
            raise RuntimeError("LocalPrometheus is not started")
        if old.running():
            return
        self._proc = ManagedProcess(old.name, old.argv, old.log_path)
        self._proc.start()
        self._wait(
            lambda: self._get("/-/ready") is not None, what="prometheus ready again", timeout_s=timeout_s
        )

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _targets_dir(job: int) -> str:
        return "targets" if job == 0 else f"targets-{job + 1}"

    def set_targets(self, targets: Sequence[ScrapeTarget], name: str = "targets", job: int = 0) -> None:
        """Replace the target list `name` of scrape job `job` (0: the first; the emulator's list is
        "targets", others add their own file); written atomically so Prometheus never reads half a
        file."""
        groups = [{"targets": [t.address], "labels": dict(t.labels)} for t in targets]
        path = self.root / self._targets_dir(job) / f"{name}.json"
        tmp = path.with_name(f".{name}.json.tmp")  # not matched by the *.json glob
        tmp.write_text(json.dumps(groups))
        tmp.replace(path)

    def set_rules(self, name: str, groups: Sequence[Mapping[str, Any]] | None) -> None:
        """Write the rule file `name` (a rules file's `groups`; None removes it) and reload the rules."""
        path = self.root / "rules" / f"{name}.yml"
        if groups is None:
            path.unlink(missing_ok=True)
        else:
            tmp = path.with_name(f".{name}.yml.tmp")
            tmp.write_text(json.dumps({"groups": list(groups)}))  # JSON is valid YAML
            tmp.replace(path)
        if self._proc is not None and self._proc.pid is not None:
            os.kill(self._proc.pid, signal.SIGHUP)  # Prometheus re-reads its config and rule files

    def rule_groups(self) -> list[dict[str, Any]]:
        """GET /api/v1/rules: the loaded groups with each rule's health, state and last error."""
        groups: list[dict[str, Any]] = (self._get("/api/v1/rules") or {}).get("data", {}).get("groups", [])
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v1/alerts: pending and firing alerts with their labels."""
        alerts: list[dict[str, Any]] = (self._get("/api/v1/alerts") or {}).get("data", {}).get("alerts", [])
        return alerts

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; returns the `result` list (for a vector: [{"metric": {...}, "value": [t, "v"]}])."""
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if body is None or body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query_value(self, promql: str) -> float | None:
        """The value of a single-sample vector result, or None when the result is empty."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for_value(self, promql: str, timeout_s: float = 30.0) -> float:
        """Poll until the query returns a sample (the first scrape may not be ingested yet)."""
        found: list[float] = []

        def check() -> bool:
            value = self.query_value(promql)
            if value is not None:
                found.append(value)
            return value is not None

        self._wait(check, what=f"a sample for {promql}", timeout_s=timeout_s)
        return found[-1]

    def target_health(self, address: str) -> str | None:
        body = self._get("/api/v1/targets?state=active")
        for target in (body or {}).get("data", {}).get("activeTargets", []):
            if target.get("labels", {}).get("instance") == address:
                return str(target.get("health"))
        return None

    def wait_target_up(self, address: str, timeout_s: float = 30.0) -> None:
        self._wait(
            lambda: self.target_health(address) == "up", what=f"target {address} up", timeout_s=timeout_s
        )

    def _wait(self, check: Any, *, what: str, timeout_s: float) -> None:
        def guarded() -> bool:
            if self._proc is not None:
                self._proc.check_running()
            return bool(check())

        wait_for(guarded, what=what, timeout_s=timeout_s)

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip().startswith(b"{") else {}
