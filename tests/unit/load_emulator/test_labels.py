"""Label mode: a seeded random walk of the load labels that never leaves its bounds."""

from __future__ import annotations

import itertools

import pytest

from load_emulator.cluster import (
    LABEL_LOAD_IN_TOKENS,
    LABEL_LOAD_OUT_TOKENS,
    LABEL_LOAD_RPM,
    LABEL_LOAD_TOKENS,
)
from load_emulator.emulated_cluster import EmulatedCluster
from load_emulator.labels import LabelWalker, WalkBounds

BOUNDS = WalkBounds(rpm=(10.0, 100.0), in_tokens=(50.0, 60.0), out_tokens=(100.0, 400.0), step_fraction=0.3)


def _cluster() -> EmulatedCluster:
    cluster = EmulatedCluster({"A": ("A", 1)}, None, startup_delay_s=0)
    for name in ("a", "b"):
        cluster.add_deployment("ns", name, model="m", accelerator="A", max_batch=8, replicas=1)
    return cluster


def test_walk_stays_in_bounds_and_writes_through_the_port() -> None:
    cluster = _cluster()
    walker = LabelWalker(cluster, BOUNDS, seed=1)
    seen_rpm: set[float] = set()
    for step in range(500):
        written = walker.step(float(step))
        for labels in written.values():
            rpm = float(labels[LABEL_LOAD_RPM])
            seen_rpm.add(rpm)
            assert 10.0 <= rpm <= 100.0
            assert 50 <= int(labels[LABEL_LOAD_IN_TOKENS]) <= 60
            assert 100 <= int(labels[LABEL_LOAD_OUT_TOKENS]) <= 400
            assert labels[LABEL_LOAD_TOKENS] == labels[LABEL_LOAD_OUT_TOKENS]
    assert min(seen_rpm) < 25 and max(seen_rpm) > 85  # it does wander across the range
    (state, _) = cluster.deployments(0.0)
    assert state.labels[LABEL_LOAD_RPM] == written[("ns", "a")][LABEL_LOAD_RPM]


def test_walk_is_repeatable_by_seed_and_starts_from_current_labels() -> None:
    def walk(seed: int) -> list[dict[tuple[str, str], dict[str, str]]]:
        walker = LabelWalker(_cluster(), BOUNDS, seed=seed)
        return [walker.step(float(t)) for t in range(20)]

    assert walk(3) == walk(3) and walk(3) != walk(4)
    cluster = _cluster()
    cluster.set_labels("ns", "a", {LABEL_LOAD_RPM: "42", LABEL_LOAD_OUT_TOKENS: "9999"})
    first = LabelWalker(cluster, BOUNDS).step(0.0)
    assert first[("ns", "a")][LABEL_LOAD_RPM] == "42"
    assert first[("ns", "a")][LABEL_LOAD_OUT_TOKENS] == "250"  # out of bounds: start mid-range


def test_pattern_follows_the_walk() -> None:
    cluster = _cluster()
    walker = LabelWalker(cluster, BOUNDS, seed=2)
    pattern = walker.pattern("ns", "a")
    assert pattern.rate_rpm(0.0) == 0.0
    walker.step(0.0)
    rpm, _, out = walker.current("ns", "a")  # type: ignore[misc]
    assert pattern.rate_rpm(0.0) == rpm
    arrivals = list(itertools.islice(pattern.arrivals(1), 2000))
    assert sum(a.out_tokens for a in arrivals) / 2000 == pytest.approx(out, rel=0.1)


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="rpm"):
        WalkBounds(rpm=(5.0, 1.0))
    with pytest.raises(ValueError, match="step_fraction"):
        WalkBounds(step_fraction=0.0)
