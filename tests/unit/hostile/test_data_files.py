"""Hostile data files (hypothesis): the reference data sets and samples/, each mutated, through the
loader (``contract.data.loader``): the outcome is a SystemData or a ``DataError`` whose message
names the file (and the entry and field, for a validation error), never another exception. What
loads is then optimized without an exception other than a ``ValueError`` or an ``ArithmeticError``
with a message: the two the optimizer service answers with a 422. (An ``ArithmeticError`` here is
the core overflowing on extreme but schema-valid parameters, e.g. ``alpha`` = 1e308 dividing by
zero in ``optimizer/model/sizing.py``; plausibility bounds in the loader would turn it into a
``DataError``.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contract.data.loader import DATA_FILES, DataError, load_system, parse_json
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings
from tests.conftest import REFERENCE_SETS, SAMPLES
from tests.unit.hostile.profile import HOSTILE, count
from tests.unit.hostile.strategies import mutated

SETS: dict[str, Path] = {f"{p.parent.name}/{p.name}": p for p in REFERENCE_SETS}
SETS |= {f"samples/{name}": SAMPLES / name for name in ("small", "large")}
TEXTS: dict[str, dict[str, str]] = {
    key: {name: (path / name).read_text() for name in DATA_FILES if (path / name).exists()}
    for key, path in SETS.items()
}
DOCS: dict[str, dict[str, Any]] = {
    key: {name: json.loads(text) for name, text in files.items()} for key, files in TEXTS.items()
}
SMALL = {key for key in SETS if key.endswith("small")}
GREEDY = OptimizerSettings(solver="greedy", time_limit_s=2.0)


def assert_names_its_file(exc: DataError, source: str) -> None:
    message = str(exc)
    assert message.strip(), "empty DataError"
    for line in message.splitlines():
        assert line.startswith((*DATA_FILES, source)), f"line does not say which file: {line!r}"


def load_and_maybe_optimize(key: str, documents: dict[str, Any], what: str) -> None:
    try:
        system = load_system(documents, key)
    except DataError as exc:
        assert_names_its_file(exc, key)
        return
    if key in SMALL:  # the large sets take seconds each; their loading is what is tested here
        try:
            solution = optimize(system, GREEDY)
        except (ValueError, ArithmeticError) as exc:
            assert str(exc).strip(), what
        else:
            assert len(solution.decisions) == len(system.servers.servers), what


@HOSTILE
@given(data=st.data(), key=st.sampled_from(sorted(SETS)))
def test_a_mutated_document(data: st.DataObject, key: str) -> None:
    file = data.draw(st.sampled_from(sorted(DOCS[key])), label="file")
    what, doc = data.draw(mutated(DOCS[key][file]), label="mutation")
    count("loader: mutated document")
    load_and_maybe_optimize(key, {**DOCS[key], file: doc}, f"{key}/{file}: {what}")


EDITS = st.sampled_from(["truncate", "delete", "insert", "replace"])


@HOSTILE
@given(data=st.data(), key=st.sampled_from(sorted(SETS)), edit=EDITS)
def test_a_mutated_file_text(data: st.DataObject, key: str, edit: str) -> None:
    file = data.draw(st.sampled_from(sorted(TEXTS[key])), label="file")
    text = TEXTS[key][file]
    at = data.draw(st.integers(0, len(text)), label="at")
    junk = data.draw(st.text(min_size=1, max_size=8) | st.sampled_from(["NaN", "-1", "1e999", "{", "]", '"']))
    length = data.draw(st.integers(1, 40), label="length")
    new = {
        "truncate": text[:at],
        "delete": text[:at] + text[at + length :],
        "insert": text[:at] + junk + text[at:],
        "replace": text[:at] + junk + text[at + len(junk) :],
    }[edit]
    count("loader: mutated file text")
    source = f"{key}/{file}"
    try:
        doc = parse_json(new, source)
    except DataError as exc:
        assert str(exc).startswith(source) and "line" in str(exc)
        return
    load_and_maybe_optimize(key, {**DOCS[key], file: doc}, f"{source}: {edit} at {at}")


@HOSTILE
@given(key=st.sampled_from(sorted(SETS)), data=st.data())
def test_a_missing_or_unexpected_file(key: str, data: st.DataObject) -> None:
    documents = dict(DOCS[key])
    dropped = data.draw(st.sets(st.sampled_from(sorted(documents))), label="dropped")
    extra = data.draw(st.sampled_from(["", "placement-data.json", "README.md", "model-data.json.bak"]))
    for name in dropped:
        del documents[name]
    if extra:
        documents[extra] = {}
    count("loader: files missing or unexpected")
    try:
        load_system(documents, key)
    except DataError as exc:
        message = str(exc)
        assert message.startswith(key) or message.split(":", maxsplit=1)[0] in DATA_FILES, message
        if {"accelerator-data.json", "model-data.json"} & dropped:
            assert "is missing" in message
        elif extra not in DATA_FILES and extra:
            assert extra in message
