"""The load history (controller/history.py): buckets, trimming, reading it back, rejecting garbage."""

from __future__ import annotations

import json

import pytest

from controller.forecast import ForecastPolicy
from controller.history import (
    HistoryError,
    ServerHistory,
    decode,
    encode,
    prune,
    recent_series,
    record,
    season_series,
)

POLICY = ForecastPolicy(recent_s=600.0, season_s=3600.0, season_bucket_s=300.0)


def test_samples_in_one_bucket_are_averaged() -> None:
    h = record({}, {"a": 100.0}, 30.0, POLICY)
    h = record(h, {"a": 110.0}, 50.0, POLICY)
    assert h["a"].recent.points == ((0, 105.0, 2),)
    assert recent_series(h["a"], 50.0, POLICY) == [105.0]


def test_gaps_are_filled_forward_and_old_buckets_dropped() -> None:
    h = record({}, {"a": 10.0}, 0.0, POLICY)
    h = record(h, {"a": 20.0}, 180.0, POLICY)  # buckets 1 and 2 missing
    assert recent_series(h["a"], 180.0, POLICY) == [10.0, 10.0, 10.0, 20.0]
    h = record(h, {"a": 30.0}, 900.0, POLICY)  # keeps 10 buckets: 6..15
    assert [i for i, _, _ in h["a"].recent.points] == [15]
    assert recent_series(h["a"], 960.0, POLICY) == []  # not measured now: no series


def test_unmeasured_and_bad_rates_change_nothing() -> None:
    h = record({}, {"a": 10.0}, 0.0, POLICY)
    assert record(h, {"a": float("nan"), "b": -1.0}, 60.0, POLICY) == h


def test_the_season_is_read_one_season_back() -> None:
    h: dict[str, ServerHistory] = {}
    for t in range(0, 3600 + 600, 60):
        h = record(h, {"a": 100.0 if t < 1800 else 200.0}, float(t), POLICY)
    # a season (3600 s) after 1740 s: 1740, 1800, 1860 s fall in the 300 s buckets 5, 6, 6
    assert season_series(h["a"], 3600.0 + 1740.0, 120.0, POLICY) == [100.0, 200.0, 200.0]
    assert season_series(h["a"], 100.0, 120.0, POLICY) is None  # nothing a season before


def test_encode_decode_round_trip() -> None:
    h = record({}, {"a": 100.0, "b": 5.5}, 30.0, POLICY)
    h = record(h, {"a": 120.0}, 400.0, POLICY)
    assert decode(encode(h, POLICY), POLICY) == h


GOOD = json.loads(encode(record({}, {"a": 1.0}, 0.0, POLICY), POLICY))


def _with(path: tuple[str, ...], value: object) -> str:
    doc = json.loads(json.dumps(GOOD))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "version"),
        (_with(("version",), 2), "version 2"),
        (_with(("bucketS",), 30), "buckets"),
        (_with(("servers",), []), "servers is not an object"),
        (_with(("servers", "a", "recent"), "x"), "a.recent: not a list"),
        (_with(("servers", "a", "recent"), [[0, -1, 1]]), "bad bucket, rate"),
        (_with(("servers", "a", "recent"), [[0, 1, 0]]), "bad bucket, rate"),
        (_with(("servers", "a", "recent"), [[0, 1]]), "is not \\[bucket"),
        (_with(("servers", "a", "recent"), [[3, 1, 1], [2, 1, 1]]), "not ascending"),
        (_with(("servers", "a", "recent"), [[0, float("nan"), 1]]), "bad bucket"),
    ],
    ids=["not-json", "a-list", "version", "buckets", "servers-list", "series-str", "negative", "no-samples",
         "short-point", "descending", "nan"],
)  # fmt: skip
def test_corrupt_history_is_rejected_with_its_reason(text: str, message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        decode(text, POLICY)


def test_prune_drops_servers_that_do_not_ask_and_servers_gone_past_every_kept_bucket() -> None:
    h = record({}, {"ask": 10.0, "other": 20.0, "gone": 30.0}, 0.0, POLICY)
    h = record(h, {"ask": 11.0}, 3000.0, POLICY)  # "gone" last measured 3000 s ago: season still holds it
    assert set(prune(h, {"other"}, 3000.0, POLICY)) == {"ask", "gone"}
    # recent keeps 600 s and season 3600 + 600 s: past that nothing of "gone" is left to read
    h = record(h, {"ask": 12.0}, 4300.0, POLICY)
    assert set(prune(h, set(), 4300.0, POLICY)) == {"ask"}
    assert prune(h, set(), 4199.0, POLICY).keys() == {"ask", "other", "gone"}
