"""Log redaction with its shortcuts (a memo of credential-looking keys, a case-folded look for
"bearer" before the regex) hides exactly what the regexes alone hide."""

from __future__ import annotations

import re
from typing import Any

import pytest

from plumbing.logs import REDACTED, redact_secrets

_KEY = re.compile(r"(token|authorization|password|secret|credential|api_key)", re.IGNORECASE)
_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)


def _by_regex(value: Any) -> Any:
    """The redaction with no shortcut, as it was written first."""
    if isinstance(value, str):
        return _BEARER.sub("Bearer " + REDACTED, value)
    if isinstance(value, dict):
        return {k: REDACTED if _KEY.search(str(k)) else _by_regex(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_by_regex(v) for v in value]
    return value


STRINGS = [
    "Authorization: Bearer abc.def",
    "sent BEARER  xyz to the API",
    "bEaReR\ttok",
    "bearer",  # no token after it: left as it is
    "Ｂearer fullwidth-B, not a match",
    "İ ſ K ı: bearer k",  # characters whose case folding is special
    "no secret here",
    "",
]


@pytest.mark.parametrize("text", STRINGS)
def test_strings_are_redacted_as_by_the_regex(text: str) -> None:
    event = {"event": "x", "detail": text, "reasons": [text, {"inner": text}]}
    assert redact_secrets(None, "info", dict(event)) == {k: _by_regex(v) for k, v in event.items()}


def test_credential_keys_are_hidden_every_time_they_appear() -> None:
    for _ in range(3):  # the key memo answers from the second line on
        event = {
            "event": "x",
            "api_token": "t",
            "token_file": "/run/token",
            "nested": {"Password": "p", "n": 1},
        }
        out = redact_secrets(None, "info", dict(event))
        assert out["api_token"] == REDACTED
        assert out["token_file"] == "/run/token"  # a path, not a secret
        assert out["nested"] == {"Password": REDACTED, "n": 1}
