"""The what-if ports against the real collector and actuator: what they read is what the fleet does.

- The emulated Prometheus, read by the real collector, gives back the load the engine generated
  (arrival rate, token means and their spread within sampling error of the exact window statistics).
- The emulated Kubernetes API, patched by the real actuator, changes the cluster (replicas,
  accelerator with its node selector and GPU count, ``--max-num-seqs``), and planning again from the
  patched Deployment yields no patch (idempotence, as on a real API server).
- A stale ``resourceVersion`` is a 409 conflict.
"""

from __future__ import annotations

import asyncio

import pytest

from actuator.deployment import flag_value
from collector.core import collect
from contract.data.loader import validate_system
from load_emulator.whatif import Scenario, WhatIfRun
from plumbing.client import ErrorKind, UpstreamError
from tests.conftest import SAMPLES

pytestmark = pytest.mark.sim
SERVER, DEPLOYMENT, NS = "Premium-llama_13b", "premium-llama-13b", "inferno-demo"


def _ready_run(warmup_s: float = -1) -> WhatIfRun:
    scenario = Scenario(SAMPLES / "small", servers=(SERVER,), duration_s=0, seed=5, warmup_s=warmup_s)
    what_if = WhatIfRun(scenario)
    asyncio.run(what_if.run())  # warm-up only: pods ready, a rate window of samples by default
    return what_if


def test_collector_reads_back_the_generated_load() -> None:
    # A whole token window of serving pods: its start has requests in flight as its end has, as on
    # a server running for a while (a window opening at the pods' start counts prompts of requests
    # not completed yet: the means read high).
    default = Scenario(SAMPLES / "small")
    what_if = _ready_run(default.startup_delay_s + default.collector.token_window_s)
    s = what_if.scenario
    assembled = asyncio.run(collect(what_if.clock(), what_if.stages.ports, s.collector, {}))
    (server,) = assembled.result.servers
    assert server.trusted and server.load_source == "prometheus", server
    now_s = what_if.clock()
    truth = what_if.engine.window(SERVER, now_s - s.collector.rate_window_s, now_s)
    assert server.arrival_rpm == pytest.approx(truth.arrival_rpm, rel=0.25)
    (spec,) = validate_system(assembled.result.system).servers.servers
    sizes = what_if.engine.window(SERVER, now_s - s.collector.token_window_s, now_s)  # their own window
    assert spec.load.in_tokens == pytest.approx(sizes.mean_in_tokens, rel=0.1)
    assert spec.load.out_tokens == pytest.approx(sizes.mean_out_tokens, rel=0.25)
    # The spread, from the emulated length histograms (1-2-5 buckets): near the requests' own.
    assert spec.load.in_tokens_cv2 is not None and spec.load.out_tokens_cv2 is not None
    assert spec.load.in_tokens_cv2 == pytest.approx(sizes.in_tokens_cv2, rel=0.35, abs=0.1)
    assert spec.load.out_tokens_cv2 == pytest.approx(sizes.out_tokens_cv2, rel=0.35, abs=0.1)
    assert server.observed_ttft_ms == pytest.approx(truth.ttft_mean_ms, rel=0.25)
    assert server.observed_itl_ms == pytest.approx(truth.itl_mean_ms, rel=0.25)
    assert server.current_replicas == server.ready_replicas >= 1
    # The KV cache's tokens (usage gauge and vllm:cache_config_info's size): at a steady load each
    # running request holds its prompt and on average half of its output so far, length-weighted.
    m = server.measured
    assert m is not None and m.running_per_pod > 0 and m.context_tokens_per_pod > 0
    steady = sizes.mean_in_tokens + (1.0 + sizes.out_tokens_cv2) * sizes.mean_out_tokens / 2.0
    assert m.context_tokens_per_pod / m.running_per_pod == pytest.approx(steady, rel=0.25)


def test_actuator_patches_change_the_cluster_and_replan_to_nothing() -> None:
    what_if = _ready_run()
    kube = what_if.kube
    before = asyncio.run(kube.list_deployments([NS]))[(NS, DEPLOYMENT)]
    patch = {
        "metadata": {
            "resourceVersion": before["metadata"]["resourceVersion"],
            "labels": {"inferno.server.allocation.accelerator": "A100"},
        },
        "spec": {
            "replicas": 4,
            "template": {
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
                    "containers": [
                        {
                            "name": "vllm",
                            "args": ["--model", "llama_13b", "--max-num-seqs", "24"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                }
            },
        },
    }
    asyncio.run(kube.patch_deployment(NS, DEPLOYMENT, patch))
    (state,) = what_if.fleet.cluster.deployments(what_if.clock())
    assert (state.replicas, state.accelerator, state.max_batch) == (4, "A100", 24)
    after = asyncio.run(kube.list_deployments([NS]))[(NS, DEPLOYMENT)]
    pod = after["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert flag_value(pod["containers"][0]["args"], "--max-num-seqs") == "24"
    assert after["metadata"]["labels"]["inferno.server.allocation.accelerator"] == "A100"
    with pytest.raises(UpstreamError) as stale:
        asyncio.run(kube.patch_deployment(NS, DEPLOYMENT, patch))
    assert stale.value.kind is ErrorKind.CONFLICT


def test_a_cycle_applies_then_the_next_plans_from_the_patched_state() -> None:
    what_if = WhatIfRun(
        Scenario(SAMPLES / "small", servers=(SERVER,), duration_s=180, seed=5, tokens="deterministic")
    )
    asyncio.run(what_if.run())
    assert [r.outcome for r in what_if.reports] == ["ok"] * 3
    for report in what_if.reports:
        (action,) = report.actions
        assert action.outcome.value in {"applied", "unchanged"}, action
        assert action.replicas_target is not None
    # What the last cycle decided is what the cluster runs.
    (state,) = what_if.fleet.cluster.deployments(what_if.clock())
    last = what_if.reports[-1].actions[0]
    assert state.replicas == last.replicas_target
    assert state.accelerator == last.accelerator_target and state.max_batch == last.max_batch_target


def test_the_emulated_prometheus_counts_the_pods_that_report_as_the_collector_expects() -> None:
    # Every replica the engine runs is scraped: reporting = Ready, no hold. One pod left out of the
    # scrapes for a whole rate window: the real collector holds the server and scales its load.
    default = Scenario(SAMPLES / "small")
    what_if = _ready_run(default.startup_delay_s + 2 * default.collector.rate_window_s)
    s = what_if.scenario
    assembled = asyncio.run(collect(what_if.clock(), what_if.stages.ports, s.collector, {}))
    (server,) = assembled.result.servers
    assert server.hold is None and server.trusted, server.notes
    ready = server.ready_replicas
    if ready < 2:
        pytest.skip(f"the sample runs {ready} replica(s): nothing to leave out")

    engine = what_if.engine
    every = engine.replicas
    dropped = next(replica.pod for _, replica in every())
    engine.replicas = lambda: ((st, r) for st, r in every() if r.pod != dropped)  # type: ignore[method-assign]
    what_if.prometheus.scrape(what_if.clock())
    held = asyncio.run(collect(what_if.clock(), what_if.stages.ports, s.collector, {}))
    (server_held,) = held.result.servers
    assert server_held.hold is not None, server_held.notes
    assert f"{ready - 1} of {ready} pod(s)" in server_held.hold.text
    assert any("pods not reporting" in n for n in server_held.notes), server_held.notes
