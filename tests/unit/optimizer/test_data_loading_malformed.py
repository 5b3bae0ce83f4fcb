"""Inputs the hostile properties (tests/unit/hostile) found crashing the loader, kept as examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.data.loader import DataError, dump_system, load_system_dir, validate_system

SMALL = Path(__file__).resolve().parents[3] / "samples" / "small"


@pytest.mark.parametrize("bad", [None, 3, "Premium", {"model": "llama_13b"}])
def test_model_targets_not_a_list_is_a_data_error_naming_the_class(bad: object) -> None:
    data = dump_system(load_system_dir(SMALL))
    data["serviceClasses"]["serviceClasses"][2]["modelTargets"] = bad
    with pytest.raises(DataError) as caught:
        validate_system(data, "samples/small")
    assert "serviceClasses[2]" in str(caught.value) and "modelTargets" in str(caught.value)
