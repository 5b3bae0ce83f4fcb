"""The built-in controller: an in-memory stand-in for kube-controller-manager, scheduler and kubelet.

Optional (pass it to :func:`.server.start_kubeapi`, or call :meth:`BuiltinController.reconcile`
yourself). Each pass, over the store's Python API:

1. Deployments -> ReplicaSets: one ReplicaSet ``<deploy>-<pod-template-hash>`` per Deployment with
   ``spec.replicas`` copied. A template change (nodeSelector, args, resources, ...) makes a new
   hash; the old ReplicaSets and their pods are deleted at once and the new ones created: the
   *Recreate* strategy, whatever ``spec.strategy`` says (no surge, no rolling).
2. ReplicaSets -> Pods ``<rs>-<5 chars>`` with the template's labels plus ``pod-template-hash``, a
   controlling ownerReference to the ReplicaSet; scale-down removes unscheduled, then not-ready,
   then the newest pods first.
3. Scheduling (:mod:`.scheduling`): an unbound pod gets ``spec.nodeName``, phase ``Running``, a
   ``status.podIP`` in 127.0.0.0/8 (127.0.1.1 upward) and ``hostIP`` 127.0.0.1, or stays
   ``Pending`` with a ``PodScheduled=False, reason Unschedulable`` condition.
4. Readiness: a pod this controller bound turns Ready once ``clock() - bound_at >=
   startup_delay_s`` (the clock is injected: tests pass a fake). Afterwards its status is the
   driver's: set ``Ready`` False on a pod and the controller leaves it so.
5. Status of ReplicaSets and Deployments: replicas, updatedReplicas, readyReplicas,
   availableReplicas (= ready; minReadySeconds ignored), unavailableReplicas, observedGeneration.
   No conditions are written.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from .pods import bind, is_ready, make_pod, mark_ready, mark_unschedulable, pick_victims
from .resources import DEPLOYMENTS, NODES, PODS, REPLICASETS
from .scheduling import add_usage, choose_node
from .store import Obj, ObjectStore

log = logging.getLogger(__name__)
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class ControllerSettings:
    startup_delay_s: float = 0.0
    """Seconds from a pod's binding to Ready (by the injected clock); 0: Ready on the same pass."""
    poll_interval_s: float = 0.2
    """How often :meth:`BuiltinController.run` reconciles when nothing changes (start-up timers)."""
    seed: int = 0
    """Seed of the pod name suffixes, so runs are repeatable."""


def template_hash(template: Any) -> str:
    """A 10-character name-safe digest of a pod template (stands in for ``pod-template-hash``)."""
    value = int.from_bytes(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        value, digit = divmod(value, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[digit])
    return "".join(chars)


def owned_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def owner_ref(owner: Obj) -> dict[str, Any]:
    m = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}  # fmt: skip


class BuiltinController:
    def __init__(
        self,
        store: ObjectStore,
        clock: Callable[[], float] = time.monotonic,
        settings: ControllerSettings | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings or ControllerSettings()
        self._clock = clock
        self._wall_clock = wall_clock
        self._rand = random.Random(self.settings.seed)
        self._bound_at: dict[str, float] = {}  # pod uid -> clock() at binding
        self._made_ready: set[str] = set()
        self._stopped = False

    # -- the pass ---------------------------------------------------------------------------------

    def reconcile(self) -> int:
        """One pass over everything; returns the number of writes it made."""
        with self.store.locked():
            before = self.store.resource_version
            for deploy in self.store.list(DEPLOYMENTS):
                self._sync_deployment(deploy)
            for rs in self.store.list(REPLICASETS):
                self._sync_replicaset(rs)
            self._schedule()
            self._update_readiness()
            for rs in self.store.list(REPLICASETS):
                self._write_status(rs, self._pods_of([rs]), rs)
            for deploy in self.store.list(DEPLOYMENTS):
                rss = [rs for rs in self.store.list(REPLICASETS, deploy["metadata"]["namespace"])
                       if owned_by(rs, deploy["metadata"]["uid"])]  # fmt: skip
                current = [rs for rs in rss if rs["metadata"]["name"] == self._rs_name(deploy)]
                self._write_status(deploy, self._pods_of(rss), current[0] if current else None)
            return self.store.resource_version - before

    async def run(self) -> None:
        """Reconcile on every store change and every ``poll_interval_s``, until :meth:`stop`."""
        while not self._stopped:
            try:
                self.reconcile()
            except Exception:  # a bad object must not stop the cluster
                log.exception("built-in controller: reconcile failed")
            await self.store.wait_for_change(self.store.resource_version, self.settings.poll_interval_s)

    def stop(self) -> None:
        self._stopped = True

    # -- steps ------------------------------------------------------------------------------------

    @staticmethod
    def _rs_name(deploy: Obj) -> str:
        return f"{deploy['metadata']['name']}-{template_hash(deploy['spec'].get('template') or {})}"

    def _sync_deployment(self, deploy: Obj) -> None:
        m, spec = deploy["metadata"], deploy.get("spec") or {}
        ns, want = m["namespace"], self._rs_name(deploy)
        pod_hash = want.rsplit("-", 1)[1]
        for rs in self.store.list(REPLICASETS, ns):
            if owned_by(rs, m["uid"]) and rs["metadata"]["name"] != want:
                self.store.delete(REPLICASETS, ns, rs["metadata"]["name"])  # recreate: old pods go with it
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        replicas = int(spec.get("replicas") or 0)
        existing = self.store.find(REPLICASETS, ns, want)
        if existing is None:
            labels = dict(template["metadata"]["labels"])
            meta = {"name": want, "namespace": ns, "labels": labels, "ownerReferences": [owner_ref(deploy)]}
            spec_rs = {"replicas": replicas, "selector": selector, "template": template}
            self.store.create(
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta, "spec": spec_rs}
            )
        elif existing["spec"].get("replicas") != replicas:
            self.store.update(REPLICASETS, ns, want, lambda rs: rs["spec"].update(replicas=replicas))

    def _pods_of(self, owners: list[Obj]) -> list[Obj]:
        uids = {o["metadata"]["uid"] for o in owners}
        if not owners:
            return []
        pods = self.store.list(PODS, owners[0]["metadata"]["namespace"])
        return [p for p in pods if any(owned_by(p, uid) for uid in uids)]

    def _sync_replicaset(self, rs: Obj) -> None:
        ns, want = rs["metadata"]["namespace"], int(rs["spec"].get("replicas") or 0)
        pods = self._pods_of([rs])
        for victim in pick_victims(pods, len(pods) - want):
            self.store.delete(PODS, ns, victim["metadata"]["name"])
        taken = {p["metadata"]["name"] for p in pods}
        for _ in range(want - len(pods)):
            name = self._pod_name(rs["metadata"]["name"], taken)
            taken.add(name)
            self.store.create(make_pod(rs, name, owner_ref(rs)), PODS, ns)

    def _pod_name(self, rs_name: str, taken: set[str]) -> str:
        while True:
            name = f"{rs_name}-{''.join(self._rand.choices(SAFE_ALPHABET, k=5))}"
            if name not in taken and len(name) <= 253:
                return name

    def _schedule(self) -> None:
        pods, nodes = self.store.list(PODS), self.store.list(NODES)
        active = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        used: dict[str, dict[str, float]] = {}
        ips = {str((p.get("status") or {}).get("podIP")) for p in active}
        for pod in active:
            if pod["spec"].get("nodeName"):
                add_usage(used, pod["spec"]["nodeName"], pod["spec"])
        now = self._timestamp()
        for pod in sorted(active, key=lambda p: int(p["metadata"]["resourceVersion"])):
            if pod["spec"].get("nodeName"):
                continue
            m = pod["metadata"]
            node, message = choose_node(pod["spec"], nodes, used)
            if node is None:
                self.store.update(
                    PODS, m["namespace"], m["name"], partial(mark_unschedulable, message=message, now=now)
                )
                continue
            add_usage(used, node, pod["spec"])
            ip = self._next_ip(ips)
            self.store.update(PODS, m["namespace"], m["name"], partial(bind, node=node, ip=ip, now=now))
            self._bound_at[m["uid"]] = self._clock()

    @staticmethod
    def _next_ip(taken: set[str]) -> str:
        for i in range(254 * 254):
            ip = f"127.0.{1 + i // 254}.{1 + i % 254}"
            if ip not in taken:
                taken.add(ip)
                return ip
        raise RuntimeError("the emulated pod network 127.0.1.0-127.0.254.254 is full")

    def _update_readiness(self) -> None:
        now_s, now = self._clock(), self._timestamp()
        live = set()
        for pod in self.store.list(PODS):
            uid = pod["metadata"]["uid"]
            live.add(uid)
            bound_at = self._bound_at.get(uid)
            if (
                bound_at is None
                or uid in self._made_ready
                or now_s - bound_at < self.settings.startup_delay_s
            ):
                continue
            self._made_ready.add(uid)
            if not is_ready(pod):
                m = pod["metadata"]
                self.store.update(PODS, m["namespace"], m["name"], partial(mark_ready, now=now))
        self._bound_at = {uid: t for uid, t in self._bound_at.items() if uid in live}
        self._made_ready &= live

    def _write_status(self, owner: Obj, pods: list[Obj], current: Obj | None) -> None:
        ready = sum(1 for p in pods if is_ready(p))
        updated = len(self._pods_of([current])) if current is not None else 0
        replicas = int(owner["spec"].get("replicas") or 0)
        status: dict[str, Any] = {"observedGeneration": owner["metadata"].get("generation", 1)}
        values = {"replicas": len(pods), "updatedReplicas": updated, "readyReplicas": ready,
                  "availableReplicas": ready, "unavailableReplicas": max(replicas - ready, 0)}  # fmt: skip
        if owner["kind"] == "ReplicaSet":
            values = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                      "availableReplicas": ready}  # fmt: skip
        status.update({k: v for k, v in values.items() if v})  # the apiserver omits zero counts
        if owner.get("status") != status:
            m = owner["metadata"]
            rt = DEPLOYMENTS if owner["kind"] == "Deployment" else REPLICASETS
            self.store.set_status(rt, m["namespace"], m["name"], status, merge=False)

    def _timestamp(self) -> str:
        return datetime.fromtimestamp(self._wall_clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
