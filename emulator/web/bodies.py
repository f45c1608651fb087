"""JSON request bodies, read once and checked before any handler looks inside.

Python's ``json`` accepts two things no Bandwidth client sends and the rest of the emulator
cannot hold: nesting deep enough to exhaust the interpreter's stack, and lone UTF-16
surrogates (``"\\ud800"``), which are not Unicode text and cannot be encoded as UTF-8 when a
list, a log line or the --db file later writes them. Both are refused here, at the door, so
nothing stored can hold them (docs/compatibility.md, 'What the emulator refuses').
"""

from __future__ import annotations

import json
from typing import Any

# Bandwidth's request bodies are two or three levels deep; this leaves room for any
# extension without letting a body reach the interpreter's recursion limit later on.
MAX_DEPTH = 32


class BodyError(ValueError):
    """A body that is refused; ``field`` is the top-level key it is about, or ``body``."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(description)
        self.field = field
        self.description = description


def is_text(value: str) -> bool:
    """False when ``value`` holds a lone surrogate (it then has no UTF-8 form)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def surrogate_problem(name: str) -> str:
    return f"'{name}' contains a lone UTF-16 surrogate (such as \\ud800), which is not a Unicode character"


def check_value(value: Any, field: str = "body") -> None:
    """Raise :class:`BodyError` if ``value`` nests deeper than :data:`MAX_DEPTH` or holds a
    string that is not Unicode text. Iterative: a hostile value cannot exhaust the stack."""
    stack: list[tuple[Any, int, str]] = [(value, 0, field)]
    while stack:
        item, depth, top = stack.pop()
        if isinstance(item, str):
            if not is_text(item):
                raise BodyError(top, surrogate_problem(top))
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise BodyError("body", f"The request body is nested more than {MAX_DEPTH} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    name = key if depth == 0 and field == "body" else top
                    if not is_text(key):
                        raise BodyError(top, surrogate_problem("body" if depth == 0 else top))
                    stack.append((child, depth + 1, name))
            else:
                stack.extend((child, depth + 1, top) for child in item)


def load_json(raw: bytes) -> Any:
    """The decoded body; :class:`BodyError` if it is not JSON the emulator can hold."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BodyError("body", f"The request body is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # also UnicodeDecodeError: bytes that are not UTF-8, -16 or -32
        raise BodyError("body", "The request body is not valid JSON") from None
    if not _plainly_safe(raw):
        check_value(body)
    return body


def _plainly_safe(raw: bytes) -> bool:
    """Whether the body's bytes alone show it holds neither problem, so that walking the
    decoded value can be skipped (the common case: what an SDK sends).

    ASCII bytes without a ``\\u`` escape decode to no surrogate: as UTF-8 they are ASCII text,
    and as UTF-16 or UTF-32 every unit they make is below U+8000 or not a character at all.
    A value nests no deeper than its count of ``[`` and ``{`` bytes.
    """
    return raw.isascii() and b"\\u" not in raw and raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH
