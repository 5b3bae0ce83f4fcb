"""What-if runs: the real control loop (collect -> optimize -> act) against the emulated fleet.

Layout: :mod:`.kube` (the collector's and the actuator's Kubernetes ports over an
``EmulatedCluster``), :mod:`.prom` (Prometheus over the engine's exact counters), :mod:`.driver`
(virtual-time loop with the controller's ``CycleRunner``), :mod:`.records` (rows, churn,
attainment), :mod:`.report` (table, CSV, PNG plots), ``python -m load_emulator.whatif`` (the CLI).
"""

from load_emulator.whatif.driver import Scenario, WhatIfRun
from load_emulator.whatif.records import Row, Summary, replica_changes, summarize, template_changes

__all__ = ["Row", "Scenario", "Summary", "WhatIfRun", "replica_changes", "summarize", "template_changes"]
