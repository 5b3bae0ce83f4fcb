"""Failure injection for tests: make the next N matching HTTP requests fail or stall.

A :class:`Fault` matches requests by verb (``get``, ``list``, ``create``, ``update``, ``patch``,
``delete``), resource plural, namespace, name and subresource (``None`` matches anything). When one
matches, the server first sleeps ``delay_s`` (longer than the client's ``_request_timeout`` makes
a timeout), then answers ``status`` with a ``Status`` body (``409`` reads as a Conflict, ``500``
as InternalError), or, with ``status=0``, serves the request normally after the delay. Only the
HTTP layer (:mod:`.routes`) consults the injector; the store's Python API is never affected.

    store.faults.add(Fault(verb="patch", resource="deployments", name="llama", status=409, count=2))
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import ApiError, conflict


@dataclass
class Fault:
    status: int = 500
    count: int = 1  # requests to affect; -1 for every matching request until cleared
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    delay_s: float = 0.0
    message: str = "injected failure"

    def matches(self, verb: str, resource: str, namespace: str, name: str, subresource: str) -> bool:
        wanted = (self.verb, self.resource, self.namespace, self.name, self.subresource)
        actual = (verb, resource, namespace, name, subresource)
        return self.count != 0 and all(w is None or w == a for w, a in zip(wanted, actual, strict=True))

    def error(self, resource: str, group: str, name: str) -> ApiError | None:
        if self.status == 0:
            return None
        if self.status == 409:
            return conflict(resource, group, name)
        return ApiError(self.status, self.message)


@dataclass(frozen=True)
class FiredFault:
    fault: Fault
    verb: str
    resource: str
    namespace: str
    name: str


class FaultInjector:
    """The pending faults, first added first matched; ``fired`` records each use."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: list[FiredFault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail_next(
        self, verb: str, resource: str, *, name: str | None = None, status: int = 500, count: int = 1
    ) -> Fault:
        """Shorthand: the next ``count`` ``verb`` requests on ``resource`` (named ``name``) fail."""
        return self.add(Fault(status=status, count=count, verb=verb, resource=resource, name=name))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(
        self, verb: str, resource: str, namespace: str, name: str, subresource: str = ""
    ) -> Fault | None:
        """The first fault matching this request, its count used up by one; ``None`` if none."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(verb, resource, namespace, name, subresource):
                    if fault.count > 0:
                        fault.count -= 1
                    self._faults = [f for f in self._faults if f.count != 0]
                    self.fired.append(FiredFault(fault, verb, resource, namespace, name))
                    return fault
        return None
