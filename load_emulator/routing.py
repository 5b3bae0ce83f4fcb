"""Which serving replica an arrival goes to: a Kubernetes Service's spread, or a queue-aware gateway.

Called by :class:`load_emulator.server.ServerSim` for every arrival (pattern or HTTP client) and
chosen by ``EngineConfig.routing`` (``--routing`` on the command lines). Pure: the replicas'
state in, one replica out.

- ``round-robin``: each replica in turn, in pod-name order: what a Service's kube-proxy spread
  gives on average. Blind to queues: after a scale-up the first pods keep receiving their share
  while the backlog queued in them during the overload waits behind it.
- ``least-loaded``: the replica with the fewest requests in it (waiting + running), ties to the
  lower KV-cache usage, then in turn from the round-robin position (so idle, equal replicas share
  the load). This is what a queue-aware inference gateway does: the Gateway API Inference
  Extension's endpoint picker, which llm-d's inference scheduler builds on, scores each vLLM pod
  by its waiting queue (``queue-scorer``, from ``vllm:num_requests_waiting``) and its KV-cache
  usage (``kv-cache-utilization-scorer``, ``1 - vllm:kv_cache_usage_perc``) and sends the
  request to the best score (``max-score-picker``); see
  ``pkg/epp/scheduling/framework/plugins/scorer/{queue,kvcache_utilization}.go`` in
  kubernetes-sigs/gateway-api-inference-extension. The emulator counts running requests too (a
  picker also has a ``running`` scorer) and reads the replicas' exact state, where a real picker
  reads metrics scraped some tens of milliseconds earlier.

Neither moves a request once it is queued in a pod: vLLM has no request migration, so a backlog
drains in the pod that holds it. What least-loaded changes is that new arrivals stop joining it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar, get_args

Routing = Literal["round-robin", "least-loaded"]
ROUTINGS: tuple[Routing, ...] = get_args(Routing)


class Routable(Protocol):
    """What routing reads of a replica (``ReplicaSim`` has both)."""

    @property
    def load(self) -> int:
        """Requests in the replica: running + waiting (vLLM's two request gauges)."""
        ...

    def kv_usage(self) -> float:
        """KV-cache blocks in use over the usable ones, 0..1 (``vllm:kv_cache_usage_perc``)."""
        ...


R = TypeVar("R", bound=Routable)


def pick_replica(serving: Sequence[R], routing: Routing, turn: int) -> R | None:
    """The replica for the next arrival; None when nothing serves.

    ``turn`` is the caller's round-robin counter (``0 <= turn < len(serving)`` is not required;
    it is taken modulo the count). Example: loads ``[4, 1, 1]`` with KV usages ``[0.9, 0.5,
    0.2]`` -> round-robin at turn 0 picks replica 0; least-loaded picks replica 2 (load 1, lower KV).
    """
    n = len(serving)
    if n == 0:
        return None
    start = turn % n
    if routing == "round-robin":
        return serving[start]
    order = [serving[(start + i) % n] for i in range(n)]
    return min(order, key=lambda r: (r.load, r.kv_usage()))
