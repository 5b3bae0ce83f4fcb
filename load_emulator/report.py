"""Per-server report rows over a window, against the service-class targets, and their text table.

Called by the ``simulate`` CLI command (and, in phase 2, the what-if report). Targets come from the
inferno service-class data (``slo-ttft`` and ``slo-itl``, ms; 0 = not considered). The ITL target
is judged on each request's TPOT (its mean inter-token gap), the TTFT target on each request.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from contract.data.system import SystemData
from load_emulator.engine import FleetEngine
from load_emulator.stats import WindowStats


@dataclass(frozen=True)
class ServerRow:
    server: str
    deployment: str
    accelerator: str
    replicas: int
    ready: int
    ttft_target_ms: float
    itl_target_ms: float
    stats: WindowStats

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["stats"] = {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out["stats"].items()
        }
        return out


def server_rows(engine: FleetEngine, system: SystemData | None, t0_s: float, t1_s: float) -> list[ServerRow]:
    classes = system.class_by_name() if system is not None else {}
    rows: list[ServerRow] = []
    for entry in engine.entries.values():
        state = entry.state
        spec = classes.get(state.service_class)
        target = spec.target_for(state.model) if spec else None
        ttft_ms = target.slo_ttft_ms if target else 0.0
        itl_ms = target.slo_itl_ms if target else 0.0
        rows.append(
            ServerRow(
                server=state.server,
                deployment=state.name,
                accelerator=state.accelerator,
                replicas=state.replicas,
                ready=state.ready_replicas,
                ttft_target_ms=ttft_ms,
                itl_target_ms=itl_ms,
                stats=engine.window(state.server, t0_s, t1_s, ttft_ms, itl_ms),
            )
        )
    return rows


COLUMNS = (
    ("server", 22, "{:<22}"),
    ("acc", 9, "{:>9}"),
    ("rep", 4, "{:>4}"),
    ("rdy", 4, "{:>4}"),
    ("rpm", 7, "{:>7.1f}"),
    ("done/s", 7, "{:>7.2f}"),
    ("ttft50", 8, "{:>8.0f}"),
    ("ttft95", 8, "{:>8.0f}"),
    ("/tgt", 6, "{:>6.0f}"),
    ("itl50", 7, "{:>7.1f}"),
    ("itl95", 7, "{:>7.1f}"),
    ("/tgt", 6, "{:>6.0f}"),
    ("slo%", 6, "{:>6.1f}"),
    ("rej", 5, "{:>5d}"),
)


def format_table(rows: list[ServerRow]) -> str:
    """Fixed-width table; times in ms, ``slo%`` is the share of requests meeting both targets."""
    header = " ".join(
        f"{name:>{width}}" if i else f"{name:<{width}}" for i, (name, width, _) in enumerate(COLUMNS)
    )
    lines = [header]
    for row in rows:
        s = row.stats
        values = (
            row.server[:22], row.accelerator[:9], row.replicas, row.ready, s.arrival_rpm, s.throughput_rps,
            s.ttft_p50_ms, s.ttft_p95_ms, row.ttft_target_ms, s.itl_p50_ms, s.itl_p95_ms,
            row.itl_target_ms, s.slo_attainment * 100, s.rejected,
        )  # fmt: skip
        lines.append(" ".join(fmt.format(v) for (_, _, fmt), v in zip(COLUMNS, values, strict=True)))
    return "\n".join(lines)
