"""The hostile suite's hypothesis settings and its case counter.

``HOSTILE``: one settings object for every property test here, so the whole suite's size is one
number. ``INFERNO_HOSTILE_EXAMPLES`` (default 100) is the examples per test; the default keeps the
suite under about a minute on two cores. ``deadline=None``: an in-process HTTP round trip on a
loaded machine can take tens of milliseconds, which is not what these tests measure.
``derandomize`` under CI (``CI=true``): CI runs the same cases every time, so a red build is about
the change under test; runs elsewhere keep exploring new cases (and hypothesis keeps any failure
it finds in ``.hypothesis/`` to replay first).

``count(name)`` is called once per generated case; ``conftest.py`` prints the totals at the end of
the run (and writes them as JSON to ``INFERNO_HOSTILE_REPORT`` when set).
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("INFERNO_HOSTILE_EXAMPLES", "100"))
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

HOSTILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=IN_CI,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    print_blob=True,
)

CASES: Counter[str] = Counter()


def count(name: str) -> None:
    CASES[name] += 1
