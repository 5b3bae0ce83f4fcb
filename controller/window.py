"""The scale-down stabilisation window: the one home of the rule, pure, its state passed in and out.

The controller keeps the state between cycles (:class:`controller.cycle.CycleRunner`); no other
service holds a copy. In each cycle:

1. :func:`open_cycle` prunes what has left each server's window, forgets Deployments no longer
   managed, and enters a server whose window is empty (first sight after a start or a leader
   change, a new server, one back after a gap longer than its window) at its current count.
2. :func:`floors` gives each server the replicas its window holds. The optimizer receives them as
   ``floorReplicas``: it keeps held replicas only on cards no other server needs, or gives them
   up with a reason, so no plan counts cards twice.
3. :func:`record` enters, after the actuator's answer, what each server it acted on needs: the
   action's ``replicas_needed`` (the load's count within the server's bounds, not the held count,
   which would prolong a hold for ever) on the target accelerator.

The rule. A server of class ``c`` has a window of ``window_s = policy.window_s(c)`` seconds. Its
floor at ``now_s`` on its current accelerator ``a`` with ``current`` replicas is::

    floor = min(current, max{n : (t, a, n) entered, t > now_s - window_s})      (0 when none)

It never holds above the current count nor another accelerator's count (counts of different cards
are not comparable; the Deployment's rollout paces a move). A server the actuator has not yet
acted on is held at its current count, for one cycle even with a window of 0: the first rates
after a start are the least reliable (a rate window reaching back before a new pod's first sample
reads low), and a new leader must not undo what the window held under the old one.

Example: entries A100 6 at 100 s and A100 2 at 160 s, window 300 s; at 420 s, 5 replicas on
A100: the 100 s entry has left (100 <= 120), floor = min(5, 2) = 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from contract.collect import ManagedServer
from contract.update import ServerAction

DeploymentKey = tuple[str, str]
"""(namespace, deployment): the window follows the Deployment, whatever its server name."""


@dataclass(frozen=True)
class Need:
    """What a server needed at ``at_s``: ``replicas`` on ``accelerator``."""

    at_s: float
    accelerator: str
    replicas: int


@dataclass(frozen=True)
class ServerWindow:
    """One Deployment's entries still in its window, and whether the actuator acted on it yet."""

    needs: tuple[Need, ...] = ()
    acted: bool = False


WindowState = Mapping[DeploymentKey, ServerWindow]


@dataclass(frozen=True)
class WindowPolicy:
    """Window lengths: ``default_s`` for every class but those in ``by_class_s``; 0 turns it off."""

    default_s: float
    by_class_s: Mapping[str, float] = field(default_factory=dict)

    def window_s(self, service_class: str) -> float:
        return self.by_class_s.get(service_class, self.default_s)


def _key(server: ManagedServer) -> DeploymentKey:
    return (server.namespace, server.deployment)


def open_cycle(
    state: WindowState, servers: Sequence[ManagedServer], policy: WindowPolicy, now_s: float
) -> dict[DeploymentKey, ServerWindow]:
    """The state for this cycle: entries pruned to each window, unmanaged Deployments forgotten,
    and a server with an empty window entered at its current count (window > 0, replicas running
    on a known accelerator)."""
    opened: dict[DeploymentKey, ServerWindow] = {}
    for server in servers:
        key = _key(server)
        known = state.get(key, ServerWindow())
        window_s = policy.window_s(server.service_class)
        needs = tuple(n for n in known.needs if n.at_s > now_s - window_s)
        if not needs and window_s > 0 and server.current_replicas > 0 and server.current_accelerator:
            needs = (Need(now_s, server.current_accelerator, server.current_replicas),)
        opened[key] = ServerWindow(needs, known.acted)
    return opened


def floor_of(window: ServerWindow, accelerator: str, current_replicas: int) -> int:
    """The replicas ``window`` holds on ``accelerator`` for a server running ``current_replicas``
    (entries already pruned by :func:`open_cycle`); its current count before the first action."""
    if not window.acted:
        return max(current_replicas, 0)
    held = max((n.replicas for n in window.needs if n.accelerator == accelerator), default=0)
    return max(0, min(current_replicas, held))


def floors(state: WindowState, servers: Iterable[ManagedServer]) -> dict[str, int]:
    """Each server's floor by server name, from the state :func:`open_cycle` returned."""
    return {
        s.server: floor_of(state.get(_key(s), ServerWindow()), s.current_accelerator, s.current_replicas)
        for s in servers
    }


def record(
    state: WindowState, actions: Sequence[ServerAction], now_s: float
) -> dict[DeploymentKey, ServerWindow]:
    """The state with what each acted-on server needs entered at ``now_s``. A skipped server
    (``replicas_needed`` None: untrusted data, a safety rule) keeps its entries as they are."""
    recorded = dict(state)
    for action in actions:
        if action.replicas_needed is None or not action.deployment:
            continue
        known = recorded.get(action.key, ServerWindow())
        need = Need(now_s, action.accelerator_target, action.replicas_needed)
        recorded[action.key] = ServerWindow((*known.needs, need), acted=True)
    return recorded
