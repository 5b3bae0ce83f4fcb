"""E2e: the container image, built from the Dockerfile and run as the manifests describe its pod.

Role: proves issue 20's "done when". The image is built with the project's own script
(scripts/build-image.sh: buildah, a Debian base made with mmdebstrap and cached, requirements.lock);
the Deployment's four containers run in one podman pod on the host's network with the manifest's
security settings and the shipped RBAC's ServiceAccount token (in-cluster config against the local
kube-apiserver); one acting cycle through the controller's `GET /invoke` with the bearer token
patches the real Deployment. A dependency install that fails fails the build: a lock with a wrong
hash, and an index nobody answers on, each stop `buildah bud` with a non-zero exit and no image.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .cluster.local_cluster import LocalCluster
from .conftest import _unavailable
from .harness.data import DYNAMIC_CONFIGMAP, GPU_LABEL, PRODUCTS, STATIC_CONFIGMAP, ServerSpec
from .harness.image import (
    ImagePod,
    build_image,
    missing_tools,
    podman,
    write_secret_dir,
)
from .harness.rbac import apply_rbac
from .harness.scenario import Scenario
from .harness.services import SERVICES, invoke_report, scenario_settings

pytestmark = pytest.mark.e2e

TAG = "localhost/inferno-autoscaler:e2e"
API_TOKEN = "e2e-image-token-0123456789abcdef"
SERVER = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=3000, in_tokens=128, out_tokens=32,
)  # fmt: skip


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built once per run (later runs reuse the base and the dependency layer)."""
    if missing_tools():
        _unavailable(f"{', '.join(missing_tools())} (bash scripts/build-image.sh --tools)")
    started = time.monotonic()
    done = build_image(TAG)
    assert done.returncode == 0, f"the image build failed:\n{done.stdout[-6000:]}"
    print(f"image {TAG} built in {time.monotonic() - started:.0f} s")
    return TAG


def test_image_contains_the_services_only(image: str) -> None:
    script = (
        "import importlib.util as u, sys, sysconfig;"
        "site = sysconfig.get_paths()['purelib'];"
        "print(*(m for m in ('controller', 'collector', 'optimizer', 'actuator', 'plumbing', 'contract',"
        " 'load_emulator', 'tests', 'pip', 'setuptools', 'kubernetes.aio') if u.find_spec(m)), sep=',')"
    )
    found = podman("run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", script)
    assert found.strip().split(",") == [
        "controller",
        "collector",
        "optimizer",
        "actuator",
        "plumbing",
        "contract",
    ]
    labels = podman("image", "inspect", "--format", "{{json .Labels}}", image)
    for key in ("source", "version", "licenses", "revision"):
        assert f'"org.opencontainers.image.{key}"' in labels, labels
    assert '"org.opencontainers.image.licenses":"Apache-2.0"' in labels
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).strip()
    assert user == "10001:10001"


@pytest.fixture
def service_account(local_cluster: LocalCluster) -> Iterator[tuple[str, str]]:
    """The shipped RBAC; afterwards the namespace holds no ConfigMap or Lease of this test (the
    RBAC tests share it and create their own)."""
    namespace, name = apply_rbac(local_cluster)
    yield namespace, name
    core = client.CoreV1Api(local_cluster.api_client)
    for configmap in (STATIC_CONFIGMAP, DYNAMIC_CONFIGMAP):
        try:
            core.delete_namespaced_config_map(configmap, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
    try:
        client.CoordinationV1Api(local_cluster.api_client).delete_namespaced_lease(
            "inferno-autoscaler", namespace
        )
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def pod_dirs(scenario: Scenario, local_cluster: LocalCluster, service_account: tuple[str, str]) -> Path:
    """The Secret inferno-api-token and the ServiceAccount's projected token, as the kubelet mounts them."""
    namespace, name = service_account
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    status = (
        client.CoreV1Api(local_cluster.api_client)
        .create_namespaced_service_account_token(name, namespace, request)
        .status
    )
    assert status is not None and status.token
    root = scenario.work_dir / "pod"
    write_secret_dir(root / "api-token", {"token": API_TOKEN}, gid=10001)
    write_secret_dir(
        root / "serviceaccount",
        {"token": status.token, "ca.crt": local_cluster.ca_cert.read_text(), "namespace": namespace},
        gid=10001,
    )
    return root


@pytest.fixture
def image_pod(
    image: str, scenario: Scenario, local_cluster: LocalCluster, pod_dirs: Path
) -> Iterator[ImagePod]:
    host_port = local_cluster.server_url.removeprefix("https://").rsplit(":", 1)
    settings = scenario_settings(scenario.prometheus.url, [scenario.ns], "inferno", {})
    # The pod shares the host's network here: the services listen on loopback only, not 0.0.0.0.
    settings |= {f"INFERNO_{name.upper()}_HOST": "127.0.0.1" for name in SERVICES}
    pod = ImagePod(
        image, f"inferno-autoscaler-{int(time.time())}", "inferno",
        secrets={"inferno-api-token": pod_dirs / "api-token"},
        service_account_dir=pod_dirs / "serviceaccount",
        apiserver=(host_port[0], int(host_port[1])),
        overrides=settings,
    )  # fmt: skip
    try:
        yield pod
    finally:
        pod.stop()


def test_the_image_pod_scales_a_real_deployment(scenario: Scenario, image_pod: ImagePod) -> None:
    scenario.config_namespace = "inferno"  # the Role grants its two ConfigMaps there only
    scenario.add_nodes("L4", count=1, gpus_per_node=4)
    scenario.add_nodes("A100", count=2, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(SERVER)
    scenario.start_emulator()
    scenario.wait_load(SERVER.name)
    image_pod.start()

    for container in ("controller", "collector", "optimizer", "actuator"):
        info = image_pod.inspect(container)
        host = info["HostConfig"]
        assert info["Config"]["User"] == "10001:10001", container
        assert host["ReadonlyRootfs"] is True, container
        assert "no-new-privileges" in host["SecurityOpt"], container
        assert info["EffectiveCaps"] in (None, []), (container, info["EffectiveCaps"])
        assert host["NetworkMode"] == "host" and info["Pod"], container

    port = image_pod.ports["controller"]
    try:  # the token is set, so even a caller on the pod's own network needs it
        urllib.request.urlopen(f"http://127.0.0.1:{port}/invoke", timeout=30)
        pytest.fail("GET /invoke without the token was answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401

    report: dict[str, object] = {}
    for _ in range(20):  # the first cycles may find the Lease still held, or no load yet
        report = invoke_report(port, timeout_s=90, token=API_TOKEN)
        actions = report.get("actions") or []
        assert isinstance(actions, list)
        if any(a["deployment"] == SERVER.name and a["outcome"] == "applied" for a in actions):
            break
        time.sleep(2)
    else:
        pytest.fail(f"no applied action in 20 cycles; last report {report}\n{image_pod.logs()}")
    assert report["outcome"] == "ok", report
    decisions = report["decisions"]
    assert isinstance(decisions, list)
    decision = next(d for d in decisions if d["server"] == SERVER.name)
    dep = scenario.deployment(SERVER.name)
    assert dep.spec is not None and dep.spec.template.spec is not None and dep.metadata is not None
    assert dep.spec.replicas == decision["replicas"] > SERVER.replicas
    assert (dep.spec.template.spec.node_selector or {})[GPU_LABEL] == PRODUCTS[decision["accelerator"]]
    assert (dep.metadata.labels or {})["inferno.server.allocation.accelerator"] == decision["accelerator"]
    assert scenario.inferno_events(SERVER.name), "the actuator posts Events from its container"


BOGUS_HASH = "0" * 64


@pytest.mark.parametrize(
    ("lock", "env", "expected"),
    [
        pytest.param(
            f"six==1.16.0 --hash=sha256:{BOGUS_HASH}\n", {}, "DO NOT MATCH THE HASHES", id="wrong-hash"
        ),
        pytest.param(
            f"six==1.16.0 --hash=sha256:{BOGUS_HASH}\n",
            {"PIP_INDEX_URL": "http://127.0.0.1:9/simple"},
            "No matching distribution found for six",
            id="index-unreachable",
        ),
    ],
)
def test_a_failed_dependency_install_fails_the_build(
    tmp_path: Path, lock: str, env: dict[str, str], expected: str
) -> None:
    if missing_tools():
        _unavailable(f"{', '.join(missing_tools())} (bash scripts/build-image.sh --tools)")
    repo = Path(__file__).resolve().parents[2]
    for name in ("Dockerfile", "pyproject.toml", "README.md"):
        shutil.copy(repo / name, tmp_path / name)
    for package in ("plumbing", "contract", "optimizer", "collector", "actuator", "controller"):
        shutil.copytree(repo / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "requirements.lock").write_text(lock)
    tag = "localhost/inferno-autoscaler:e2e-broken"
    podman("rmi", "--force", tag, check=False)

    done = build_image(tag, context=tmp_path, target="build", env=env)

    assert done.returncode != 0, done.stdout[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]
    assert "Successfully tagged" not in done.stdout
    assert podman("images", "--quiet", "--filter", f"reference={tag}").strip() == ""
