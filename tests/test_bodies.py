"""JSON request bodies read at the door (emulator/web/bodies.py): the check of the bytes that
lets a plain body skip the walk through its decoded value must never let a refused one in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.web.bodies import MAX_DEPTH, BodyError, _plainly_safe, check_value, load_json

# Text with lone surrogates and non-ASCII characters among plain ones.
TEXT = st.text(alphabet=st.sampled_from(["a", "\\", "u", "é", "\U0001f600", "\ud800", "\udfff", '"']), max_size=6)
VALUES = st.recursive(
    st.none() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=40,
)
ENCODINGS = ["ascii-escapes", "utf-8", "utf-16", "utf-16-le", "utf-32", "utf-32-be"]


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def encode(value: Any, encoding: str) -> bytes:
    if encoding == "ascii-escapes":
        return json.dumps(value).encode()
    return json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass")


def refused(value: Any) -> bool:
    try:
        check_value(value)
    except BodyError:
        return True
    return False


@given(value=VALUES | st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2).map(nested), encoding=st.sampled_from(ENCODINGS))
def test_a_body_that_skips_the_walk_is_never_one_the_walk_refuses(value: Any, encoding: str) -> None:
    raw = encode(value, encoding)
    try:
        decoded = json.loads(raw)
    except ValueError:
        return
    if _plainly_safe(raw):
        assert not refused(decoded)
    # Either way, load_json refuses exactly what the walk refuses.
    if refused(decoded):
        with pytest.raises(BodyError):
            load_json(raw)
    else:
        assert load_json(raw) == decoded


def test_what_sdks_send_skips_the_walk_and_the_rest_does_not() -> None:
    assert _plainly_safe(json.dumps({"from": "+1", "to": ["+2"], "text": "hi", "applicationId": "a"}).encode())
    assert not _plainly_safe(json.dumps({"text": "caf\u00e9"}).encode())  # the \u escape
    assert not _plainly_safe('{"text": "café"}'.encode())
    assert not _plainly_safe(json.dumps(nested(MAX_DEPTH + 1)).encode())
    with pytest.raises(BodyError, match="nested"):
        load_json(json.dumps(nested(MAX_DEPTH + 1)).encode())
