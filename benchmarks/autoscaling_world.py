"""The autoscaling benchmark's world: a limited-capacity slice of samples/large and a diurnal+spikes load.

Used by :mod:`benchmarks.bench_autoscaling` and ``tests/sim/test_autoscaling_bench.py``.

World (``benchmarks/data/autoscaling/``, written by :func:`write_world` from ``samples/large``):
the three ``llama_13b`` servers of samples/large (Premium, Bronze, Free) at :data:`LOAD_SCALE`
times the samples' rates (means of 60, 120 and 240 req/min), and a capacity of
:data:`CAPACITY_CARDS` cards per type. Why scaled: the emulator costs about 50-100 us of CPU per
request with this many replicas; the 27 servers of samples/large at their rates make 10.9 M
requests per day (15-20 minutes of CPU per policy, over an hour for the four on a shared
2-core machine), while this world makes about 0.6 M per policy-day; with the real loop's ~75 ms
of CPU per 60 s cycle, a policy-day costs 2.5-5 CPU-minutes (5 minutes of wall time for the four
with ``--jobs 4`` on an idle 2-core machine, 15 on a busy one).
One model keeps the three classes competing for the same card types; half the rate still gives
1..13 replicas per server between the trough and the peak, so scaling is not all 1-replica floors.
Capacity: the cheapest fitting types (G2, MI300X) hold the mean load but not the peak, so at the
peaks a policy must move servers to other types or leave the low-priority class short. Start:
every policy starts from the same feasible allocation, the optimizer's plan for the trough rate
(``currentAlloc`` in server-data; the HPA-style policy keeps its GPU types and batch sizes).

Load (:class:`DiurnalSpikes`): ``mean * (1 + a sin(2 pi (t - P/4) / P)) * (1 + noise) * spike(t)``
with the trough at t = 0 and the peak at 12 h; ``spike(t)`` is ``factor`` inside each of
``count`` seeded bursts of ``duration_s`` (the same instants for every server: a fleet-wide
event), 1 outside. Example: mean 120 req/min, a = 0.5, noise 0.1, factor 1.8 -> at most
120 * 1.5 * 1.1 * 1.8 = 356 req/min.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.data.loader import load_system_dir
from contract.data.system import SystemData
from load_emulator.patterns import INF, Diurnal, LoadPattern, RatePattern, stable_seed
from load_emulator.tokens import TokenDistribution, TokenSpec
from optimizer.optimize import optimize

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "samples" / "large"
WORLD_DIR = ROOT / "benchmarks" / "data" / "autoscaling"
MODELS = ("llama_13b",)
LOAD_SCALE = 0.5
CAPACITY_CARDS: dict[str, int] = {
    "G2": 10,
    "MI300X": 8,
    "MI250": 6,
    "A100": 8,
    "H100": 8,
    "L40S": 8,
    "MI210": 8,
    "L4": 16,
    "AIU2": 16,
}
"""Cards per type. With unlimited cards the optimizer wants 1 MI300X + 13 G2 at the mean rates
(0.5x samples/large) and 13 MI300X at 1.45x (the peak is about 1.45x samples/large's rates);
these counts hold the mean on the cheap types, not the peak."""
DAY_S = 86400.0
WEIGHTS_GB = {"llama_13b": 26.0}
"""Weights per model in GB (fp16: 2 bytes per parameter)."""
STARTUP_INIT_S = 64.0
"""Pod creation to serving, without the weights: vLLM's imports and engine start (34 s), Dynamo
bytecode transform (10 s), graph compilation from a warm torch.compile cache (13 s) and CUDA graph
capture (7 s), as Tensorfuse measured for Llama-3.1-8B on L40S with a persistent cache
("Reducing GPU Cold Start Time when using vLLM", tensorfuse.io, Sep 2025: 82 s in all with
cached weights and compile artefacts, 294 s cold)."""
LOAD_GB_PER_S = 16.0 / 18.0
"""Weights loaded per card per second from a local cache: 16 GB in 18 s, same source."""


def startup_s(model: str, cards: int) -> float:
    """Pod creation to serving for ``model`` on a unit of ``cards`` cards: the fixed start plus the
    weights, loaded in parallel shards by a tensor-parallel unit. Example: llama_13b on one card:
    64 + 26 / 0.89 = 93 s; on 4 cards 64 + 7.3 = 71 s. The image and the weights are assumed cached
    on the node (the cold case, a download per pod, adds minutes); vendors other than NVIDIA
    publish no such figures, so the same rule stands for them."""
    return round(STARTUP_INIT_S + WEIGHTS_GB[model] / (LOAD_GB_PER_S * max(cards, 1)), 1)


def write_world(out: Path = WORLD_DIR, source: Path = SOURCE) -> Path:
    """Write the benchmark's data directory: samples/large's files, 3 servers, capped cards, the start."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (
        "accelerator-data.json",
        "model-data.json",
        "serviceclass-data.json",
        "optimizer-data.json",
        "placement-data.json",
    ):
        shutil.copyfile(source / name, out / name)
    models = json.loads((out / "model-data.json").read_text())
    units = {
        a["name"]: a.get("multiplicity", 1)
        for a in json.loads((out / "accelerator-data.json").read_text())["accelerators"]
    }
    for entry in models["models"]:
        if entry["name"] in WEIGHTS_GB:
            entry["startupS"] = startup_s(
                entry["name"], units[entry["acc"]] * max(entry.get("accCount", 1), 1)
            )
    (out / "model-data.json").write_text(json.dumps(models, indent=2) + "\n")
    servers = json.loads((source / "server-data.json").read_text())
    servers["servers"] = [s for s in servers["servers"] if s["model"] in MODELS]
    for server in servers["servers"]:
        load = server["currentAlloc"]["load"]
        load["arrivalRate"] = load["arrivalRate"] * LOAD_SCALE
    (out / "server-data.json").write_text(json.dumps(servers, indent=2) + "\n")
    capacity = {"count": [{"type": t, "count": n} for t, n in CAPACITY_CARDS.items()]}
    (out / "capacity-data.json").write_text(json.dumps(capacity, indent=2) + "\n")
    start = start_allocation(load_system_dir(out), 1.0 - LoadShape().amplitude)
    for server in servers["servers"]:
        server["currentAlloc"].update(start[server["name"]])
    (out / "server-data.json").write_text(json.dumps(servers, indent=2) + "\n")
    return out


def start_allocation(system: SystemData, rate_factor: float) -> dict[str, dict[str, Any]]:
    """The optimizer's plan for every server at ``rate_factor`` x its rate, as ``currentAlloc`` fields."""
    servers = [
        s.model_copy(
            update={
                "current_alloc": s.current_alloc.model_copy(
                    update={
                        "load": s.load.model_copy(
                            update={"arrival_rate_rpm": s.load.arrival_rate_rpm * rate_factor}
                        )
                    }
                )
            }
        )
        for s in system.servers.servers
    ]
    solution = optimize(
        system.model_copy(update={"servers": system.servers.model_copy(update={"servers": servers})})
    )
    out: dict[str, dict[str, Any]] = {}
    for d in solution.decisions:
        if d.allocation is None:
            raise ValueError(f"no start allocation for {d.server}: {d.reasons}")
        a = d.allocation
        out[d.server] = {"accelerator": a.accelerator, "numReplicas": a.num_replicas, "maxBatch": a.max_batch}
    return out


@dataclass(frozen=True)
class LoadShape:
    """The diurnal+spikes shape, in multiples of each server's mean rate; seeded."""

    amplitude: float = 0.5
    period_s: float = DAY_S
    noise: float = 0.1
    noise_interval_s: float = 300.0
    spike_count: int = 4
    spike_factor: float = 1.8
    spike_duration_s: float = 600.0
    first_spike_s: float = 3600.0
    seed: int = 0

    def spikes(self, horizon_s: float) -> tuple[tuple[float, float], ...]:
        """``(start_s, end_s)`` of each burst: uniform in ``[first_spike_s, horizon - duration]``, sorted."""
        rng = random.Random(stable_seed(self.seed, "spikes"))
        last_s = max(horizon_s - self.spike_duration_s, self.first_spike_s)
        starts = sorted(rng.uniform(self.first_spike_s, last_s) for _ in range(self.spike_count))
        return tuple((s, s + self.spike_duration_s) for s in starts)


@dataclass
class DiurnalSpikes(RatePattern):
    """A :class:`Diurnal` rate times ``factor`` inside each ``(start_s, end_s)`` spike."""

    diurnal: Diurnal
    spikes: tuple[tuple[float, float], ...]
    factor: float
    tokens: TokenSpec

    def _spike_at(self, t_s: float) -> tuple[bool, float]:
        """(inside a spike, time of the next spike boundary)."""
        for start_s, end_s in self.spikes:
            if start_s <= t_s < end_s:
                return True, end_s
            if t_s < start_s:
                return False, start_s
        return False, INF

    def rate_rpm(self, t_s: float) -> float:
        inside, _ = self._spike_at(t_s)
        return self.diurnal.rate_rpm(t_s) * (self.factor if inside else 1.0)

    def rate_bound_rpm(self, t_s: float) -> tuple[float, float]:
        inside, until_s = self._spike_at(t_s)
        bound, _ = self.diurnal.rate_bound_rpm(t_s)
        return bound * (self.factor if inside else 1.0), until_s


def workloads(
    system: SystemData,
    shape: LoadShape,
    horizon_s: float,
    distribution: TokenDistribution = "geometric",
) -> dict[str, LoadPattern]:
    """One :class:`DiurnalSpikes` per server around its ``arrivalRate`` and token means."""
    spikes = shape.spikes(horizon_s)
    out: dict[str, LoadPattern] = {}
    for server in system.servers.servers:
        load = server.load
        tokens = TokenSpec(load.in_tokens, load.out_tokens, distribution)
        diurnal = Diurnal(
            load.arrival_rate_rpm,
            tokens,
            amplitude=shape.amplitude,
            period_s=shape.period_s,
            phase_s=shape.period_s / 4,
            noise=shape.noise,
            noise_interval_s=shape.noise_interval_s,
            seed=stable_seed(shape.seed, server.name),
        )
        out[server.name] = DiurnalSpikes(diurnal, spikes, shape.spike_factor, tokens)
    return out


def minute_means_rpm(pattern: LoadPattern, t0_s: float, t1_s: float, step_s: float = 5.0) -> list[float]:
    """The pattern's mean rate over each whole minute of ``[t0_s, t1_s)``, sampled every ``step_s``."""
    out: list[float] = []
    minute_s = 60.0
    n_minutes = max(math.ceil((t1_s - t0_s) / minute_s - 1e-9), 0)
    per_minute = max(round(minute_s / step_s), 1)
    for m in range(n_minutes):
        start = t0_s + m * minute_s
        samples = [pattern.rate_rpm(start + (i + 0.5) * minute_s / per_minute) for i in range(per_minute)]
        out.append(sum(samples) / len(samples))
    return out


def peak_rpm(pattern: LoadPattern, t0_s: float, t1_s: float) -> float:
    """The highest one-minute mean rate in ``[t0_s, t1_s)`` (0 for an empty span)."""
    return max(minute_means_rpm(pattern, t0_s, t1_s), default=0.0)


def peak_by_server(loads: Mapping[str, LoadPattern], t0_s: float, t1_s: float) -> dict[str, float]:
    return {name: peak_rpm(p, t0_s, t1_s) for name, p in loads.items()}
