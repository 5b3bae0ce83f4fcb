"""The kubernetes side of leader election: one named Lease read and written as plain JSON.

Used by :mod:`controller.__main__`: :func:`build_elector` makes the :class:`LeaderElector` from
the settings (identity = the pod name, else host name and pid).
The synchronous client runs in threads (``asyncio.to_thread``); every call has a timeout. Writes
carry the resourceVersion read, so the API server answers 409 (``LeaseConflictError``) when
another replica wrote in between: the guard that makes "two leaders" impossible at the API level.
Times are written as RFC 3339 MicroTime (``2026-11-23T11:42:22.123456Z``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from controller.leader import LeaderElector, LeaseConflictError, LeaseRecord, LeaseTimings
from controller.settings import ControllerSettings
from plumbing.kube import api_error, api_status, load_api_client


def _micro_time(wall_s: float | None) -> str | None:
    if wall_s is None:
        return None
    return datetime.fromtimestamp(wall_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> float | None:
    return datetime.fromisoformat(text).timestamp() if isinstance(text, str) and text else None


def record_of(lease: dict[str, Any]) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_s=float(spec.get("leaseDurationSeconds") or 0),
        acquire_time_s=_parse_time(spec.get("acquireTime")),
        renew_time_s=_parse_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
    )


def lease_body(name: str, namespace: str, record: LeaseRecord) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if record.resource_version:
        metadata["resourceVersion"] = record.resource_version  # 409 if the lease moved meanwhile
    spec = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": math.ceil(record.duration_s),
        "acquireTime": _micro_time(record.acquire_time_s),
        "renewTime": _micro_time(record.renew_time_s),
        "leaseTransitions": record.transitions,
    }
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


class KubeLeasePort:
    """get / create / replace of one named Lease; 409 -> LeaseConflictError, else UpstreamError."""

    def __init__(self, api_client: Any, name: str, namespace: str, timeout_s: float) -> None:
        self._api = client.CoordinationV1Api(api_client)
        self.name, self.namespace, self.timeout_s = name, namespace, timeout_s

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
        try:
            resp = await asyncio.to_thread(fn, *args, _preload_content=False, _request_timeout=self.timeout_s)
        except Exception as exc:
            error, status = api_error(exc, f"{what} lease"), api_status(exc)
            if status == 404 and what == "get":
                return None
            if status == 409:
                raise LeaseConflictError(error.message) from None
            raise error from None
        data = json.loads(resp.data)
        return data if isinstance(data, dict) else {}

    async def get(self) -> LeaseRecord | None:
        lease = await self._call("get", self._api.read_namespaced_lease, self.name, self.namespace)
        return None if lease is None else record_of(lease)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        body = lease_body(self.name, self.namespace, replace(record, resource_version=""))
        return record_of(
            await self._call("create", self._api.create_namespaced_lease, self.namespace, body) or {}
        )

    async def replace(self, record: LeaseRecord) -> LeaseRecord:
        body = lease_body(self.name, self.namespace, record)
        call = self._api.replace_namespaced_lease
        return record_of(await self._call("replace", call, self.name, self.namespace, body) or {})


def build_elector(settings: ControllerSettings, api_client: Any | None = None) -> LeaderElector:
    """The elector of Lease ``lease_namespace/lease_name``; each API call times out after a retry period."""
    # Two processes with one identity would both lead: without a pod name, host name + pid.
    identity = settings.pod_name or f"{socket.gethostname()}-{os.getpid()}"
    timings = LeaseTimings(settings.lease_duration_s, settings.renew_deadline_s, settings.retry_period_s)
    port = KubeLeasePort(
        api_client if api_client is not None else load_api_client(),
        settings.lease_name,
        settings.lease_namespace,
        timeout_s=timings.retry_period_s,
    )
    return LeaderElector(port, identity, timings)
