"""Assertions on the callback journal whose failure messages show what did happen.

Pure functions over the control API's JSON (``GET /_emulator/messages/{id}``), shared by
the async and the sync client, so a failing test prints the journal instead of a bare
``assert [...] == [...]``.
"""

from __future__ import annotations

import difflib
from typing import Any

from emulator.delivery.clock import parse_isoformat

Outcome = int | str  # an HTTP status the webhook answered, or an error text such as "timeout"


def _epoch(iso: str | None) -> float | None:
    if iso is None:
        return None
    return parse_isoformat(iso)


def _offset(iso: str | None, origin: float | None) -> str:
    t = _epoch(iso)
    if t is None or origin is None:
        return "?"
    return f"+{t - origin:.3f}s"


def outcome(attempt: dict[str, Any]) -> Outcome:
    """What one attempt came to: the status code, or the error text when there was no answer."""
    code: int | None = attempt["statusCode"]
    if code is not None:
        return code
    error: str = attempt["error"]
    return error


def happened(callback: dict[str, Any]) -> bool:
    """Whether the event has taken place: it was attempted at least once, or it had nowhere to go."""
    return bool(callback["attempts"]) or callback["state"] in ("delivered", "exhausted", "skipped")


def _first_time(callback: dict[str, Any]) -> float:
    if callback["attempts"]:
        return _epoch(callback["attempts"][0]["time"]) or 0.0
    return _epoch(callback.get("plannedAt")) or 0.0


def describe_callback(callback: dict[str, Any], origin: float | None) -> str:
    head = f"{callback['type']:<18} to {callback['recipient']:<13} {callback['state']:<9}"
    attempts = callback["attempts"]
    if attempts:
        done = ", ".join(f"{outcome(a)} at {_offset(a['time'], origin)}" for a in attempts)
        tail = f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}: {done}"
    elif callback["state"] == "skipped":
        tail = "no callback URL for this application"
    else:
        tail = "not attempted yet"
    if callback["state"] == "pending" and callback.get("nextAttemptAt"):
        tail += f"; next attempt at {_offset(callback['nextAttemptAt'], origin)} (advance the clock?)"
    return f"  {head} {tail}"


def describe_journal(message: dict[str, Any]) -> str:
    origin = _epoch(message.get("time"))
    callbacks = message.get("callbacks", [])
    lines = [f"journal of message {message['id']} (times relative to the message's {message.get('time')}):"]
    lines += [describe_callback(c, origin) for c in callbacks] or ["  (no callbacks at all)"]
    return "\n".join(lines)


def _diff(expected: list[Any], actual: list[Any]) -> str:
    # One item per line, so the diff shows which events or attempts are missing or extra.
    lines = difflib.ndiff([repr(x) for x in expected], [repr(x) for x in actual])
    return "\n".join("  " + line for line in lines if not line.startswith("?"))


def check_callbacks(message: dict[str, Any], expected: list[str], *, recipient: str | None = None) -> list[dict[str, Any]]:
    """The message's callbacks that have happened, in the order they were first attempted,
    must have exactly the ``expected`` event types (for ``recipient`` only, if given)."""
    __tracebackhide__ = True
    callbacks = [c for c in message.get("callbacks", []) if recipient is None or c["recipient"] == recipient]
    done = sorted((c for c in callbacks if happened(c)), key=lambda c: (_first_time(c), c.get("plannedAt") or ""))
    actual = [c["type"] for c in done]
    if actual != list(expected):
        who = f" to {recipient}" if recipient else ""
        raise AssertionError(
            f"callbacks of message {message['id']}{who} are not as expected\n"
            f"  expected: {list(expected)}\n"
            f"  actual:   {actual}\n"
            f"diff (- expected, + actual):\n{_diff(list(expected), actual)}\n"
            f"{describe_journal(message)}"
        )
    return done


def select_callback(message: dict[str, Any], *, type: str | None = None, recipient: str | None = None) -> dict[str, Any]:
    __tracebackhide__ = True
    matching = [
        c
        for c in message.get("callbacks", [])
        if (type is None or c["type"] == type) and (recipient is None or c["recipient"] == recipient)
    ]
    if len(matching) != 1:
        wanted = ", ".join(f"{k}={v!r}" for k, v in (("type", type), ("recipient", recipient)) if v is not None) or "no filter"
        problem = "no callback" if not matching else f"{len(matching)} callbacks"
        raise AssertionError(
            f"{problem} of message {message['id']} match {wanted}; name the type and recipient of exactly one\n"
            f"{describe_journal(message)}"
        )
    found: dict[str, Any] = matching[0]
    return found


def check_attempts(
    message: dict[str, Any],
    expected: list[Outcome],
    *,
    type: str | None = None,
    recipient: str | None = None,
    state: str | None = None,
    offsets: list[float] | None = None,
) -> dict[str, Any]:
    """One callback's attempts came to exactly ``expected`` (status codes or error texts such
    as ``"timeout"``); optionally its final ``state`` and each attempt's ``offsets`` in
    seconds after the first attempt."""
    __tracebackhide__ = True
    callback = select_callback(message, type=type, recipient=recipient)
    attempts = callback["attempts"]
    actual = [outcome(a) for a in attempts]
    first = _epoch(attempts[0]["time"]) if attempts else None
    actual_offsets = [round((_epoch(a["time"]) or 0.0) - (first or 0.0), 3) for a in attempts]
    problems = []
    if actual != list(expected):
        problems.append(
            f"  attempts expected: {list(expected)}\n  attempts actual:   {actual}\n"
            f"diff (- expected, + actual):\n{_diff(list(expected), actual)}"
        )
    if state is not None and callback["state"] != state:
        problems.append(f"  state expected: {state!r}, actual: {callback['state']!r}")
    if offsets is not None and [round(float(o), 3) for o in offsets] != actual_offsets:
        problems.append(f"  offsets expected: {list(offsets)}\n  offsets actual:   {actual_offsets}")
    if problems:
        raise AssertionError(
            f"attempts of the {callback['type']} callback to {callback['recipient']} "
            f"(message {message['id']}) are not as expected\n" + "\n".join(problems) + f"\n{describe_journal(message)}"
        )
    return callback
