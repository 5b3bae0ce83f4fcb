"""Emulated vLLM fleet and load patterns, for what-if runs and tests.

Independent of the optimizer's queueing model (it never imports ``optimizer.model``): it
*simulates* continuous batching iteration by iteration from the data files' perf parameters, so
its latencies can confirm or contradict the model. Layout:

- engine (pure, virtual clock): :mod:`.engine` (``FleetEngine``: ``advance_to``, ``sync``,
  ``window``), :mod:`.server` (routing, start-up, drain), :mod:`.replica` and
  :mod:`.replica_steps` (batching), :mod:`.timing` (time model), :mod:`.stats` (exact stats),
  :mod:`.histograms` (vLLM counters and buckets);
- load: :mod:`.patterns`, :mod:`.trace`, :mod:`.pattern_factory`, :mod:`.tokens`;
- cluster port: :mod:`.cluster` (``ClusterView``), :mod:`.emulated_cluster`, :mod:`.k8s_cluster`,
  :mod:`.labels` (label mode);
- adapters: :mod:`.exporter` (prometheus-client), :mod:`.metrics_http` (aiohttp, loopback),
  :mod:`.realtime`, :mod:`.serve`, :mod:`.fleet`, :mod:`.report`, :mod:`.cli`.
"""

from load_emulator.cluster import ClusterView, DeploymentState, PodState
from load_emulator.emulated_cluster import EmulatedCluster
from load_emulator.engine import EngineConfig, FleetEngine, catalog_of
from load_emulator.patterns import Arrival, Constant, Diurnal, LoadPattern, Ramp, Spikes, Steps
from load_emulator.stats import WindowStats
from load_emulator.tokens import TokenSpec
from load_emulator.trace import TraceReplay

__all__ = [
    "Arrival",
    "ClusterView",
    "Constant",
    "DeploymentState",
    "Diurnal",
    "EmulatedCluster",
    "EngineConfig",
    "FleetEngine",
    "LoadPattern",
    "PodState",
    "Ramp",
    "Spikes",
    "Steps",
    "TokenSpec",
    "TraceReplay",
    "WindowStats",
    "catalog_of",
]
