"""The benchmarks' code stamp (benchmarks/provenance.py) on a throwaway git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks import provenance


def _git(repo: Path, *argv: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_stamp_names_the_commit_and_says_when_the_tree_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    assert provenance.code_commit() == "unknown"  # no git repository

    _git(tmp_path, "init", "-q")
    for name in ("optimizer.py", "README.md"):
        (tmp_path / name).write_text("one\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "--short", "HEAD")
    assert provenance.code_commit() == head
    assert provenance.code_commit(with_time=True).startswith(f"{head} ")
    assert provenance.code_commit(with_time=True).endswith(" UTC")

    (tmp_path / "README.md").write_text("two\n")
    assert provenance.code_commit() == f"{head}+dirty"
    assert provenance.code_commit("optimizer.py") == head  # only the named paths count
    (tmp_path / "untracked.txt").write_text("x\n")
    (tmp_path / "README.md").write_text("one\n")
    assert provenance.code_commit() == head  # untracked files are not code that ran
