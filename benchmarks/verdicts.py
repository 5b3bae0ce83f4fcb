"""A benchmark's targets judged on its published run: one :class:`Verdict` per target.

Every published result states its targets this way, in its Markdown (a "Targets" list) and its
JSON (a ``verdicts`` list of ``{target, holds, detail}``), so the README can quote them and a
reader sees at once which hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    target: str
    holds: bool
    detail: str


def markdown_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """``- HOLDS: <target>: <detail>`` (or FAILS), one line per verdict."""
    return [f"- {'HOLDS' if v.holds else 'FAILS'}: {v.target}: {v.detail}" for v in verdicts]


def as_json(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    return [asdict(v) for v in verdicts]
