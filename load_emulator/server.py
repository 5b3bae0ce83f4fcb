"""One emulated server (a Deployment): its arrival stream, its replicas and their event loop.

Called by :class:`load_emulator.engine.FleetEngine`. ``advance_to(t)`` processes, in time order,
arrivals, replica step ends, replicas becoming ready and drain deadlines, up to ``t``. Long
decode runs are booked when they end; ``flush()`` books the iterations already finished so
counters are current (the engine calls it before scrapes and reports).

- **Routing** (``EngineConfig.routing``, :mod:`load_emulator.routing`): ``round-robin`` over the
  serving replicas in pod-name order (what a Kubernetes Service does on average), or
  ``least-loaded`` (fewest running + waiting, then lower KV usage: a queue-aware gateway). An
  arrival when no replica serves is *rejected* (counted in the server's stats; no vLLM pod sees
  it, as with a Service without ready endpoints).
- **Start-up**: a pod serves from ``ready_since_s + startup_delay_s``; pending pods never serve.
- **Removal** (``EngineConfig.removal``): ``drain`` stops routing to the pod at once and lets it
  finish its queue for ``drain_grace_s`` (then aborts the rest, like SIGKILL after the grace
  period); ``drop`` aborts everything at once.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator

from load_emulator.patterns import Arrival
from load_emulator.replica import ReplicaSim, Request
from load_emulator.routing import Routing, pick_replica
from load_emulator.stats import ServerStats

ReplicaFactory = Callable[[str, str, int], ReplicaSim | None]
"""``(pod, accelerator, max_batch) -> replica`` or None when there is no perf data for it."""


class ServerSim:
    def __init__(
        self,
        arrivals: Iterator[Arrival] | None,
        *,
        routing: Routing = "round-robin",
        removal: str = "drain",
        drain_grace_s: float = 30.0,
        start_s: float = 0.0,
    ) -> None:
        self.stats = ServerStats()
        self.routing = routing
        self.removal = removal
        self.drain_grace_s = drain_grace_s
        self.replicas: dict[str, ReplicaSim] = {}
        self.serving: list[ReplicaSim] = []
        self.starting: list[tuple[float, str]] = []  # (serving_from_s, pod), sorted
        self.draining: dict[str, float] = {}  # pod -> deadline_s
        self.now_s = start_s
        self._arrivals = arrivals
        self._next: Arrival | None = None
        if arrivals is not None:
            # A server first seen mid-run joins its pattern at start_s: earlier arrivals never happened.
            self._next = next((a for a in arrivals if a.t_s >= start_s), None)
        self._heap: list[tuple[float, int, ReplicaSim]] = []
        self._seq = 0
        self._rr = 0

    # --- cluster changes ------------------------------------------------------------------------
    def add_replica(self, replica: ReplicaSim, serving_from_s: float) -> None:
        self.replicas[replica.pod] = replica
        if serving_from_s <= self.now_s:
            self._serve(replica)
        else:
            self.starting.append((serving_from_s, replica.pod))
            self.starting.sort()

    def remove_replica(self, pod: str) -> None:
        replica = self.replicas.get(pod)
        if replica is None or pod in self.draining:
            return
        self.starting = [(t, p) for t, p in self.starting if p != pod]
        if replica in self.serving:
            self.serving.remove(replica)
        if self.removal == "drop" or replica.load == 0:
            self._forget(replica)
        else:
            self.draining[pod] = self.now_s + self.drain_grace_s

    def _serve(self, replica: ReplicaSim) -> None:
        self.serving.append(replica)
        self.serving.sort(key=lambda r: r.pod)

    def _forget(self, replica: ReplicaSim) -> None:
        replica.drop_all(self.now_s)
        replica.event_seq = -1
        self.replicas.pop(replica.pod, None)
        self.draining.pop(replica.pod, None)

    # --- time -------------------------------------------------------------------------------------
    def advance_to(self, t_end_s: float) -> None:
        heap = self._heap
        inf = math.inf
        while True:
            while heap and heap[0][1] != heap[0][2].event_seq:
                heapq.heappop(heap)  # stale entry: that replica's step changed since
            t_step = heap[0][0] if heap else inf
            t_arrival = self._next.t_s if self._next is not None else inf
            t_ready = self.starting[0][0] if self.starting else inf
            t_drain = min(self.draining.values()) if self.draining else inf
            if t_step <= t_arrival and t_step <= t_ready and t_step <= t_drain:
                if t_step > t_end_s:
                    break
                self.now_s = t_step
                replica = heapq.heappop(heap)[2]
                replica.on_step_end()
                self._schedule(replica)
                if self.draining and replica.pod in self.draining and replica.load == 0:
                    self._forget(replica)
                continue
            t = min(t_arrival, t_ready, t_drain)
            if t > t_end_s:
                break
            self.now_s = t
            if t_ready == t:
                pod = self.starting.pop(0)[1]
                self._serve(self.replicas[pod])
            elif t_drain == t:
                pod = min(self.draining, key=self.draining.__getitem__)
                self._forget(self.replicas[pod])
            else:
                self._arrive(self._next)  # type: ignore[arg-type]
        self.now_s = max(self.now_s, t_end_s)

    def flush(self) -> None:
        """Book the decode iterations finished by ``now_s`` (before a scrape or a report)."""
        for replica in self.replicas.values():
            replica.commit_until(self.now_s)

    def _schedule(self, replica: ReplicaSim) -> None:
        if replica.state == 0:
            replica.event_seq = -1
            return
        self._seq += 1
        replica.event_seq = self._seq
        heapq.heappush(self._heap, (replica.end_s, self._seq, replica))

    def _arrive(self, arrival: Arrival) -> None:
        assert self._arrivals is not None
        self._next = next(self._arrivals, None)
        self.stats.arrival(arrival.t_s)
        replica = self._route()
        if replica is None:
            self.stats.rejected(arrival.t_s)
            return
        self._seq += 1
        request = Request(self._seq, arrival.t_s, arrival.in_tokens, arrival.out_tokens)
        if replica.enqueue(request, arrival.t_s):
            self._schedule(replica)

    def submit(
        self, in_tokens: int, out_tokens: int, pod: str | None = None, finish_reason: str = "stop"
    ) -> tuple[Request, ReplicaSim] | None:
        """A request from outside the pattern (an HTTP client) arriving at ``now_s``.

        ``pod`` sends it to that replica (a client talking to one pod); None routes it as a pattern
        arrival. Returns the request and the replica holding it, or None when nothing serves it:
        no serving replica (or ``pod`` is not serving), or the replica aborted it on arrival
        (longer than its whole KV cache). The caller advances the engine to the arrival time first.
        """
        t_s = self.now_s
        self.stats.arrival(t_s)
        replica = self._route() if pod is None else next((r for r in self.serving if r.pod == pod), None)
        if replica is None:
            self.stats.rejected(t_s)
            return None
        self._seq += 1
        request = Request(self._seq, t_s, in_tokens, out_tokens, finish_reason=finish_reason)
        if replica.enqueue(request, t_s):
            self._schedule(replica)
        return None if request.aborted else (request, replica)

    def abort(self, request: Request, replica: ReplicaSim) -> None:
        """``request``'s client went away at ``now_s`` (:meth:`ReplicaSim.abort`)."""
        if replica.abort(request, self.now_s) and replica.pod in self.replicas:
            self._schedule(replica)

    def _route(self) -> ReplicaSim | None:
        if not self.serving:
            return None
        self._rr = (self._rr + 1) % len(self.serving)
        return pick_replica(self.serving, self.routing, self._rr)
