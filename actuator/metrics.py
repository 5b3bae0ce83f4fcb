"""The actuator's ``GET /metrics``: what became of the Events it recorded.

Series: ``inferno_actuator_events_total{outcome}`` (``posted``, ``failed``: the API server refused
it; ``dropped``: the queue was full; ``lost``: still queued when the flush time ran out at
shutdown) and ``inferno_actuator_events_pending`` (queued or being posted). Read from the
recorder at every scrape, so nothing is kept twice. Called by :mod:`actuator.app`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from actuator.events import EventRecorder

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]


class _EventCollector(Collector):
    def __init__(self, recorder: EventRecorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "inferno_actuator_events", "Events the actuator recorded, by outcome", labels=["outcome"]
        )
        for outcome, count in asdict(self._recorder.counts).items():
            total.add_metric([outcome], float(count))
        yield total
        yield GaugeMetricFamily(
            "inferno_actuator_events_pending",
            "Events queued or being posted",
            value=float(self._recorder.pending()),
        )


def exposition(recorder: EventRecorder) -> bytes:
    """The Prometheus text format of the recorder's counts, now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_EventCollector(recorder))
    return generate_latest(registry)
