"""Which code a published result came from: the commit checked out, and whether the tree differed.

Every benchmark stamps its results with :func:`code_commit`, so a reader can check out the code
that produced a figure. Uncommitted changes in the working tree run too; the stamp says so
(``+dirty``) rather than naming a commit that did not produce the figure.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*argv: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *argv],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            env={**os.environ, "TZ": "UTC"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def code_commit(*paths: str, with_time: bool = False) -> str:
    """The short commit checked out, ``+dirty`` when the working tree (only ``paths`` in it, when
    given) has uncommitted changes, then its commit time when ``with_time``; ``unknown`` without
    git. E.g. ``6ce1e2a``, ``6ce1e2a+dirty``, ``6ce1e2a 21:10 UTC``."""
    head = _git("log", "-1", "--format=%h %cd", "--date=format-local:%H:%M")
    if not head:
        return "unknown"
    commit, _, time_utc = head.partition(" ")
    if _git("status", "--porcelain", "--untracked-files=no", "--", *paths):
        commit += "+dirty"
    return f"{commit} {time_utc} UTC" if with_time else commit
