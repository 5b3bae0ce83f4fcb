"""Server-side printing for kubectl: Table answers for lists, gets and watches; kubectl itself."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from load_emulator.kubeapi import builders as b
from load_emulator.kubeapi.tables import human_age
from tests.unit.load_emulator_kubeapi.conftest import Cluster

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (119, "119s"), (200, "3m20s"), (1500, "25m"), (5 * 3600 + 600, "5h10m"), (30 * 3600, "30h"),
     (3 * 86400 + 4 * 3600, "3d4h"), (12 * 86400, "12d")],
    ids=["s", "under-2m", "m-s", "m", "h-m", "h", "d-h", "d"],
)  # fmt: skip
def test_human_age(seconds: float, text: str) -> None:
    assert human_age(seconds) == text


async def test_tables_for_lists_and_gets(cluster: Cluster) -> None:
    cluster.store.create(b.node("a100-0", {"gpu": "a100"}, {"nvidia.com/gpu": 4}))
    cluster.store.create(b.deployment("llama", "team-a", replicas=2, gpus=1))
    cluster.reconcile()
    async with aiohttp.ClientSession(cluster.server.url, headers={"Accept": TABLE}) as http:
        async with http.get("/apis/apps/v1/namespaces/team-a/deployments") as resp:
            table = await resp.json()
        assert [c["name"] for c in table["columnDefinitions"]] == [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
        ]
        assert table["rows"][0]["cells"][:4] == ["llama", "0/2", 2, 0]
        assert table["rows"][0]["object"]["metadata"]["name"] == "llama"
        async with http.get("/api/v1/namespaces/team-a/pods") as resp:
            rows = (await resp.json())["rows"]
        assert [r["cells"][2] for r in rows] == ["Running", "Running"]
        async with http.get("/api/v1/nodes/a100-0") as resp:
            assert (await resp.json())["rows"][0]["cells"][:2] == ["a100-0", "Ready"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
async def test_kubectl_get_and_scale(cluster: Cluster, tmp_path: Path) -> None:
    cluster.store.create(b.deployment("llama", "team-a", replicas=1))
    cluster.reconcile()
    env = {**os.environ, "KUBECONFIG": str(cluster.server.write_kubeconfig(tmp_path / "kubeconfig"))}

    async def kubectl(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "kubectl", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    assert "deployment.apps/llama scaled" in await kubectl(
        "scale", "-n", "team-a", "deploy/llama", "--replicas=3"
    )
    cluster.reconcile()
    lines = (await kubectl("get", "deploy", "-n", "team-a")).splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["llama", "0/3", "3", "0"]
