"""Hostile HTTP requests to all four services: any body, content type, method, path, query string
or Authorization header gets a clear JSON 4xx (or a 2xx when it happens to be valid), never a 500,
never a trace. The real aiohttp apps run over fakes on loopback (see services.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.hostile.profile import HOSTILE, count
from tests.unit.hostile.services import MAX_BODY_BYTES, SERVICES, TOKEN, Answer, LiveApp
from tests.unit.hostile.strategies import JSON, dumps

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module", params=sorted(SERVICES))
def live(request: pytest.FixtureRequest) -> Iterator[tuple[str, LiveApp]]:
    name = request.param
    app = LiveApp(SERVICES[name][0](TOKEN))
    try:
        yield name, app
    finally:
        app.close()


def assert_clear(answer: Answer, what: str) -> dict[str, Any] | None:
    """Never a 5xx or a trace; an error is a JSON object with a non-empty ``error`` message."""
    assert answer.status < 500, f"{what}: {answer.status} {answer.text[:300]}"
    assert "Traceback" not in answer.text and 'File "' not in answer.text, what
    if answer.status < 400:
        return None
    assert answer.headers.get("Content-Type", "").startswith("application/json"), (what, answer.text[:200])
    body = json.loads(answer.text)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip(), what
    return body


DEEP = st.integers(min_value=65, max_value=20_000).map(lambda n: b"[" * n + b"]" * n) | st.integers(
    min_value=65, max_value=5_000
).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
BODIES = (
    st.binary(max_size=256)
    | JSON.map(dumps)
    | st.dictionaries(
        st.sampled_from(["cycle_id", "solution", "servers", "placement", "dry_run", "accelerators", "spec"]),
        JSON,
    ).map(dumps)
    | DEEP
    | st.sampled_from([b"NaN", b"[NaN]", b'{"x": Infinity}', b"-Infinity", b"\xef\xbb\xbf{}", b"\x00", b""])
    | st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
     "application/json; charset=latin-1", "", "\u00e9/\u00e9"]
)  # fmt: skip


@HOSTILE
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_any_body_on_the_main_endpoint(live: tuple[str, LiveApp], body: bytes, content_type: str) -> None:
    name, app = live
    _, method, path = SERVICES[name]
    count(f"{name}: raw body")
    answer = app.call(method, path, data=body, headers={**AUTH, "Content-Type": content_type})
    assert_clear(answer, f"{name} {method} {path} body={body[:80]!r}")


def test_deep_nesting_is_a_400_naming_the_limit(live: tuple[str, LiveApp]) -> None:
    name, app = live
    _, method, path = SERVICES[name]
    if method != "POST":
        pytest.skip(f"{name} reads no body")
    answer = app.call(method, path, data=b"[" * 20_000 + b"]" * 20_000, headers=AUTH)
    body = assert_clear(answer, name)
    assert answer.status == 400 and body is not None and "nested deeper than 64" in body["error"]


def test_a_body_over_the_limit_is_a_json_413(live: tuple[str, LiveApp]) -> None:
    name, app = live
    _, method, path = SERVICES[name]
    if method != "POST":
        pytest.skip(f"{name} reads no body")
    answer = app.call(method, path, data=b" " * (MAX_BODY_BYTES + 1), headers=AUTH)
    body = assert_clear(answer, name)
    assert answer.status == 413 and body is not None and str(MAX_BODY_BYTES) in body["error"]


# Percent-encoded, as a client must send them; the server decodes unicode, '/' and '..' itself.
SEGMENT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12).map(
    lambda text: quote(text, safe="")
)
PATHS = st.sampled_from(
    ["/invoke", "/collect", "/optimize", "/update", "/healthz", "/readyz", "/metrics", "/"]
) | st.lists(SEGMENT, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"])
QUERY = st.dictionaries(
    st.text(max_size=10), st.text(max_size=20) | st.sampled_from(["NaN", "-1", "1e308"]), max_size=4
)


@HOSTILE
@given(method=METHODS, path=PATHS, query=QUERY)
def test_any_method_path_and_query(
    live: tuple[str, LiveApp], method: str, path: str, query: dict[str, str]
) -> None:
    name, app = live
    count(f"{name}: method/path/query")
    answer = app.call(method, path, params=query, headers=AUTH)
    if method == "HEAD":
        assert answer.status < 500, (name, method, path, answer.status)
        return
    assert_clear(answer, f"{name} {method} {path}?{query}")


HEADER_VALUE = st.binary(max_size=48).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
AUTHORIZATION = (
    HEADER_VALUE
    | st.sampled_from([b"Bearer", b"Bearer ", b"bearer", b"Basic dXNlcjpwYXNz", f"Bearer {TOKEN}x".encode(),
                       f"Bearer {TOKEN[:-1]}".encode(), f"Token {TOKEN}".encode(),
                       f"Bearer  {TOKEN} extra".encode(), b"Bearer \xff\xfe", "Bearer é".encode()])
    | HEADER_VALUE.map(lambda v: b"Bearer " + v)
)  # fmt: skip


@HOSTILE
@given(authorization=AUTHORIZATION)
def test_only_the_exact_bearer_token_gets_in(live: tuple[str, LiveApp], authorization: bytes) -> None:
    """Raw bytes on the wire: the guard sees whatever aiohttp's parser lets through."""
    name, app = live
    _, method, path = SERVICES[name]
    count(f"{name}: Authorization")
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 2\r\nAuthorization: "
        + authorization
        + b"\r\n\r\n{}"
    )
    answer = app.raw(request)
    assert answer.status < 500, (name, authorization, answer.status, answer.text[:200])
    assert "Traceback" not in answer.text
    assert TOKEN not in answer.text
    scheme, _, value = authorization.partition(b" ")
    exact = scheme.lower() == b"bearer" and value.strip(b" \t") == TOKEN.encode()
    if exact:
        assert answer.status != 401
    elif answer.status != 400 or answer.headers.get("Content-Type", "").startswith("application/json"):
        # a 400 in plain text is aiohttp's parser refusing the header before any handler runs
        assert_clear(answer, f"{name} Authorization={authorization!r}")
        assert answer.status == 401, (name, authorization, answer.status)
