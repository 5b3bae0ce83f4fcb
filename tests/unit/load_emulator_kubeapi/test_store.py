"""The store's Python API without HTTP: metadata stamping, versions, no-op writes, cascade, waits."""

from __future__ import annotations

import asyncio

import pytest

from load_emulator.kubeapi import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS, ApiError, Change, ObjectStore
from load_emulator.kubeapi import builders as b


def test_create_stamps_metadata_and_defaults() -> None:
    store = ObjectStore(wall_clock=lambda: 0.0)
    dep = store.create(b.deployment("llama", "team-a"))
    meta = dep["metadata"]
    assert meta["uid"] and meta["resourceVersion"] == "2"  # the namespace was created first
    assert meta["generation"] == 1 and meta["creationTimestamp"] == "1970-01-01T00:00:00Z"
    assert "status" not in dep
    assert store.get(NAMESPACES, "", "team-a")["metadata"]["name"] == "team-a"
    assert store.create(b.config_map("cm", "team-a", {"a": "1"}))["metadata"].get("generation") is None


def test_generate_name_and_already_exists() -> None:
    store = ObjectStore()
    made = store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-", "namespace": "n"}}
    )
    assert made["metadata"]["name"].startswith("x-") and len(made["metadata"]["name"]) == 7
    store.create(b.config_map("cm", "n", {}))
    with pytest.raises(ApiError) as err:
        store.create(b.config_map("cm", "n", {}))
    assert (err.value.code, err.value.reason) == (409, "AlreadyExists")


def test_namespaces_must_exist_when_not_automatic() -> None:
    store = ObjectStore(auto_namespaces=False)
    with pytest.raises(ApiError) as err:
        store.create(b.config_map("cm", "missing", {}))
    assert err.value.code == 404


def test_generation_moves_with_spec_only_and_noop_writes_nothing() -> None:
    store = ObjectStore()
    dep = store.create(b.deployment("d", "n"))
    rv = dep["metadata"]["resourceVersion"]
    same = store.replace(DEPLOYMENTS, "n", "d", dep)
    assert same["metadata"]["resourceVersion"] == rv
    dep["metadata"]["labels"]["x"] = "y"
    relabelled = store.replace(DEPLOYMENTS, "n", "d", dep)
    assert relabelled["metadata"]["generation"] == 1 and relabelled["metadata"]["resourceVersion"] != rv
    relabelled["spec"]["replicas"] = 4
    assert store.replace(DEPLOYMENTS, "n", "d", relabelled)["metadata"]["generation"] == 2


def test_status_is_kept_on_the_main_resource_and_set_by_the_status_subresource() -> None:
    store = ObjectStore()
    store.create(b.deployment("d", "n"))
    store.set_status(DEPLOYMENTS, "n", "d", {"readyReplicas": 1})
    body = store.get(DEPLOYMENTS, "n", "d")
    body["status"] = {"readyReplicas": 9}
    body["spec"]["replicas"] = 2
    kept = store.replace(DEPLOYMENTS, "n", "d", body)
    assert kept["status"] == {"readyReplicas": 1} and kept["spec"]["replicas"] == 2
    body = store.get(DEPLOYMENTS, "n", "d")
    body["status"], body["spec"]["replicas"] = {"readyReplicas": 2}, 7
    only_status = store.replace(DEPLOYMENTS, "n", "d", body, subresource="status")
    assert only_status["status"] == {"readyReplicas": 2} and only_status["spec"]["replicas"] == 2


def test_stale_resource_version_is_a_conflict() -> None:
    store = ObjectStore()
    old = store.create(b.deployment("d", "n"))
    store.update(DEPLOYMENTS, "n", "d", lambda obj: obj["spec"].update(replicas=3))
    old["spec"]["replicas"] = 5
    with pytest.raises(ApiError) as err:
        store.replace(DEPLOYMENTS, "n", "d", old)
    assert (err.value.code, err.value.reason) == (409, "Conflict")
    assert "the object has been modified" in err.value.message


def test_invalid_objects_are_422() -> None:
    store = ObjectStore()
    bad = b.deployment("Bad_Name", "n")
    with pytest.raises(ApiError) as err:
        store.create(bad)
    assert (
        err.value.code == 422
        and err.value.details
        and err.value.details["causes"][0]["field"] == "metadata.name"
    )
    negative = b.deployment("d", "n", replicas=-1)
    with pytest.raises(ApiError) as err:
        store.create(negative)
    assert "spec.replicas" in err.value.message


def test_delete_cascades_to_dependents_unless_orphaned() -> None:
    store = ObjectStore()
    owner = store.create(b.config_map("owner", "n", {}))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    child = b.config_map("child", "n", {})
    child["metadata"]["ownerReferences"] = [ref]
    store.create(child)
    store.delete(CONFIGMAPS, "n", "owner")
    assert store.find(CONFIGMAPS, "n", "child") is None
    owner = store.create(b.config_map("owner", "n", {}))
    child["metadata"]["ownerReferences"] = [{**ref, "uid": owner["metadata"]["uid"]}]
    store.create(child)
    store.delete(CONFIGMAPS, "n", "owner", orphan=True)
    assert store.find(CONFIGMAPS, "n", "child") is not None


def test_reads_are_copies() -> None:
    store = ObjectStore()
    store.create(b.config_map("cm", "n", {"a": "1"}))
    store.get(CONFIGMAPS, "n", "cm")["data"]["a"] = "changed"
    store.list(CONFIGMAPS)[0]["data"]["a"] = "changed"
    assert store.get(CONFIGMAPS, "n", "cm")["data"] == {"a": "1"}


def test_subscribers_see_every_write() -> None:
    store = ObjectStore()
    seen: list[Change] = []
    unsubscribe = store.subscribe(seen.append)
    store.create(b.config_map("cm", "n", {}))
    store.delete(CONFIGMAPS, "n", "cm")
    unsubscribe()
    store.create(b.config_map("cm2", "n", {}))
    assert [(c.type, c.resource.kind, c.object["metadata"]["name"]) for c in seen] == [
        ("ADDED", "Namespace", "n"),
        ("ADDED", "ConfigMap", "cm"),
        ("DELETED", "ConfigMap", "cm"),
    ]


async def test_wait_for_change_wakes_on_a_write_and_times_out_otherwise() -> None:
    store = ObjectStore()
    since = store.resource_version
    assert await store.wait_for_change(since, 0.01) == since
    waiter = asyncio.create_task(store.wait_for_change(since, 5.0))
    await asyncio.sleep(0)
    store.create(b.config_map("cm", "n", {}))
    assert await asyncio.wait_for(waiter, 1.0) > since


def test_pods_start_pending_and_apply_upserts() -> None:
    store = ObjectStore()
    pod = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
                        "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Running"}})  # fmt: skip
    assert pod["status"] == {"phase": "Pending"}
    store.apply(b.config_map("cm", "n", {"a": "1"}))
    store.apply(b.config_map("cm", "n", {"a": "2"}))
    assert store.get(CONFIGMAPS, "n", "cm")["data"] == {"a": "2"}
    assert store.list(PODS, "n", field_selector="metadata.name=p")[0]["metadata"]["name"] == "p"
