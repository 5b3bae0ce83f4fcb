"""The real-cluster demo command end to end, on the session's local cluster and Prometheus.

Runs ``python -m load_emulator.demo --cluster-state <state>`` (what ``scripts/demo-cluster.sh``
runs, minus starting its own cluster) for 30 s of load with a cycle every 6 s, while this test
watches the API server and Prometheus on its own: the demo's Deployments must get their spec
patched by the actuator (``metadata.generation`` > 1), Prometheus must hold the emulated pods'
vLLM series, a Deployment must answer an OpenAI completion at the address the demo prints (its
pods serve the API, :mod:`load_emulator.openai_api.pods`), the table must be printed every cycle,
and the demo must stop its services and delete what it applied. The demo takes ~45 s (30 s of
load); with the session's cluster start, 75-110 s measured on a busy 2-core machine.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from .cluster.local_cluster import LocalCluster
from .cluster.prometheus import LocalPrometheus
from .harness.data import REPO

NAMESPACE = "e2e-demo-cluster"
DURATION_S = 30
RUN_TIMEOUT_S = 150  # start-up and clean-up included; the run is bounded by --duration-s


def _generations(apps: client.AppsV1Api) -> dict[str, int]:
    deployments = apps.list_namespaced_deployment(NAMESPACE).items
    return {
        d.metadata.name: int(d.metadata.generation or 0)
        for d in deployments
        if d.metadata and d.metadata.name
    }


def _completion(log_text: str, deployment: str) -> dict[str, Any] | None:
    """A (non-streamed) completion from ``deployment`` through the address the demo printed."""
    found = re.search(r"serves the OpenAI API at http://([0-9.]+:\d+)/pods/", log_text)
    if not found:
        return None
    url = f"http://{found.group(1)}/deployments/{NAMESPACE}/{deployment}/v1/completions"
    body = json.dumps({"prompt": "how long is the queue", "max_tokens": 4, "ignore_eos": True}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def test_demo_on_the_local_cluster_patches_deployments(
    local_cluster: LocalCluster, local_prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({
        "server": local_cluster.server_url,
        "kubeconfig": str(local_cluster.kubeconfig_path),
        "prometheus": local_prometheus.url,
        "prometheus_targets_dir": str(local_prometheus.root / "targets"),
    }))  # fmt: skip
    argv = [sys.executable, "-m", "load_emulator.demo", "--cluster-state", str(state),
            "--namespace", NAMESPACE, "--duration-s", str(DURATION_S), "--cycle-s", "6",
            "--first-cycle-s", "10", "--workdir", str(tmp_path / "work")]  # fmt: skip
    apps = client.AppsV1Api(local_cluster.api_client)
    core = client.CoreV1Api(local_cluster.api_client)
    max_generation: dict[str, int] = {}
    series = 0.0
    completion: dict[str, Any] | None = None
    log = (tmp_path / "demo.out").open("w+")
    proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # the namespace comes and goes with the demo
                for name, gen in _generations(apps).items():
                    max_generation[name] = max(gen, max_generation.get(name, 0))
                query = f'count(vllm:request_success_total{{namespace="{NAMESPACE}"}})'
                series = max(series, local_prometheus.query_value(query) or 0.0)
                if completion is None and max_generation:
                    completion = _completion((tmp_path / "demo.out").read_text(), min(max_generation))
            time.sleep(1.0)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        leftover = core.list_node(label_selector=f"inferno.e2e/pool={NAMESPACE}").items
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.seek(0)
        out = log.read()
        log.close()
        local_cluster.delete_gpu_nodes(pool=NAMESPACE)
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(NAMESPACE)

    assert code == 0, out[-4000:]
    assert "kubectl get deploy -n e2e-demo-cluster -w" in out, out[:2000]
    cycles = re.search(r"demo: (\d+) cycles, .*service exit codes \[(.*)\]", out)
    assert cycles, out[-3000:]
    assert int(cycles.group(1)) >= 3 and out.count("TTFT ms pred/p50/p95/slo") >= 3, out[-3000:]
    assert cycles.group(2) == "0, 0, 0, 0", out[-3000:]
    # The demo's Deployments were patched on the real API server, and Prometheus scraped their pods.
    assert len(max_generation) == 5, max_generation
    assert any(gen > 1 for gen in max_generation.values()), (max_generation, out[-3000:])
    assert series > 0, out[-3000:]
    assert completion is not None, out[-3000:]
    assert completion["usage"]["completion_tokens"] == 4 and completion["object"] == "text_completion"
    trusted = [int(m) for m in re.findall(r"load trusted for (\d+)/5", out)]
    assert trusted and max(trusted) > 0, out[-3000:]
    # Predicted latencies come from the cycle report: at least one row has a number, not "-".
    assert re.search(r"\s\d+/(\d+|-)/(\d+|-)/\d+\s", out), out[-3000:]
    # It deleted the nodes it created (the namespace may still be terminating).
    assert not leftover, [n.metadata.name for n in leftover if n.metadata]
