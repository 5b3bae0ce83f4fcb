"""An in-memory Kubernetes API server subset, for the embedded demo and tests.

The official ``kubernetes`` client, pointed at :func:`start_kubeapi`'s URL (``Configuration(host=
...)`` or the kubeconfig from :meth:`KubeApiServer.write_kubeconfig`), works unchanged for what an
autoscaler does: Deployments (with ``/scale`` and ``/status``), ReplicaSets, Pods, Nodes,
ConfigMaps, Namespaces, core and ``events.k8s.io`` Events and Leases; lists with selectors and
paging; get, create, replace, merge / JSON / strategic merge patches, delete; ``watch=true``.

- :mod:`.store`: the objects, a Python API for drivers, change notifications.
- :mod:`.faults`: make chosen requests fail or stall (``store.faults``).
- :mod:`.controller`: optional Deployment -> ReplicaSet -> Pod controller, scheduler and kubelet.
- :mod:`.server`: aiohttp on 127.0.0.1; :mod:`.routes`, :mod:`.watch`: the REST paths.
- :mod:`.patches`, :mod:`.strategic`, :mod:`.selectors`, :mod:`.objects`: the apiserver's rules.
- :mod:`.builders`: nodes, Deployments, ConfigMaps as dicts.

Used by the load emulator's embedded cluster (the README demo) and by tests. Loopback only.
"""

from .controller import BuiltinController, ControllerSettings
from .errors import ApiError
from .faults import Fault, FaultInjector
from .resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    EVENTS_V1,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    ResourceType,
)
from .server import KubeApiServer, RequestRecord, ThreadedKubeApi, build_app, start_kubeapi
from .store import Change, ObjectStore

__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "EVENTS",
    "EVENTS_V1",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "PODS",
    "REPLICASETS",
    "ApiError",
    "BuiltinController",
    "Change",
    "ControllerSettings",
    "Fault",
    "FaultInjector",
    "KubeApiServer",
    "ObjectStore",
    "RequestRecord",
    "ResourceType",
    "ThreadedKubeApi",
    "build_app",
    "start_kubeapi",
]
