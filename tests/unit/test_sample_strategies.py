"""Sample vLLM Deployments roll one pod at a time, so a rollout never waits for a free GPU."""

from __future__ import annotations

from pathlib import Path

import yaml  # type: ignore[import-untyped]

from actuator.rollout import surge_pods

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "inference-deployments.yaml"


def test_every_sample_deployment_has_max_surge_0_and_max_unavailable_1() -> None:
    deployments = [d for d in yaml.safe_load_all(SAMPLES.read_text()) if d and d.get("kind") == "Deployment"]
    assert len(deployments) == 3
    for d in deployments:
        strategy = d["spec"]["strategy"]
        assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
        assert surge_pods(d, 8) == 0, d["metadata"]["name"]
