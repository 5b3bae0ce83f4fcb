"""Apply the shipped RBAC (manifests/namespace.yaml + rbac.yaml) to the local cluster, as is.

Role: the RBAC scenarios test the manifests an operator deploys, not a copy: the YAML documents
are created through the admin client; objects that already exist (the cluster is shared by the
session) are left as they are. Returns the ServiceAccount's namespace and name.
"""

from __future__ import annotations

from pathlib import Path

import yaml  # type: ignore[import-untyped]
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

from ..cluster.local_cluster import LocalCluster
from .data import REPO

MANIFESTS = REPO / "manifests"


def manifest_documents(*names: str) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for name in names:
        docs += [d for d in yaml.safe_load_all(Path(MANIFESTS / name).read_text()) if d]
    return docs


def apply_rbac(cluster: LocalCluster) -> tuple[str, str]:
    """Create namespace, ServiceAccount, ClusterRole(Binding), Role(Binding); (namespace, SA name)."""
    docs = manifest_documents("namespace.yaml", "rbac.yaml")
    for doc in docs:
        try:
            utils.create_from_dict(cluster.api_client, doc)  # type: ignore[no-untyped-call]
        except utils.FailToCreateError as exc:
            statuses = {e.status for e in exc.api_exceptions if isinstance(e, ApiException)}
            if statuses != {409}:
                raise
    [account] = [d for d in docs if d.get("kind") == "ServiceAccount"]
    meta = account["metadata"]
    assert isinstance(meta, dict)
    namespace, name = str(meta["namespace"]), str(meta["name"])
    # The namespace's default ServiceAccount appears asynchronously; ours is created above.
    client.CoreV1Api(cluster.api_client).read_namespaced_service_account(name, namespace)
    return namespace, name
