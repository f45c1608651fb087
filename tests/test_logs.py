"""The terminal log: one line per send, inbound message and callback attempt (docs/callbacks.md,
'The terminal log')."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from support import Receiver, advance, send

from emulator.logs import JsonFormatter, TextFormatter

BODY = {"from": "+19195550100", "to": ["+15551230001"], "text": "hi", "applicationId": "app-1"}


@pytest.fixture
def activity(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="emulator.activity")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "emulator.activity" and r.fields["event"] == event]  # type: ignore[attr-defined]


async def test_a_line_per_send_and_per_attempt_with_the_next_attempt(make_client, receiver: Receiver, activity):
    receiver.fail(2, 500)
    client = await make_client()
    message_id = (await (await send(client, BODY)).json())["id"]
    await advance(client, 3600)

    (sent,) = lines(activity, "send")
    assert sent.fields["messageId"] == message_id and sent.fields["url"] == receiver.url  # type: ignore[attr-defined]
    assert f"sent {message_id} from +19195550100 to +15551230001" in sent.getMessage()
    attempts = lines(activity, "callback-attempt")
    assert [(r.fields["status"], r.fields["attempt"], r.fields["outcome"]) for r in attempts] == [  # type: ignore[attr-defined]
        (500, 1, "retry"), (500, 2, "retry"), (200, 3, "delivered"),
    ]
    first = attempts[0]
    assert first.levelno == logging.WARNING
    assert first.fields["nextAttemptAt"] > first.fields["virtualTime"]  # type: ignore[attr-defined]
    text = first.getMessage()
    assert text.startswith(f"[{first.fields['virtualTime']}] callback message-delivered for {message_id}")  # type: ignore[attr-defined]
    assert f"to +15551230001: POST {receiver.url} -> 500 (attempt 1); retry: next attempt at" in text
    assert "(+1m)" in text
    assert attempts[2].levelno == logging.INFO and attempts[2].fields["nextAttemptAt"] is None  # type: ignore[attr-defined]


async def test_exhaustion_and_connection_errors_are_said(make_client, receiver: Receiver, activity):
    receiver.fail(100, 503)
    client = await make_client({"applications": [{"id": "app-1", "retrySchedule": [0, 60]}]})
    await send(client, BODY)
    await advance(client, 3600)
    attempts = lines(activity, "callback-attempt")
    assert [(r.fields["attempt"], r.fields["outcome"], r.fields["state"]) for r in attempts] == [  # type: ignore[attr-defined]
        (1, "retry", "pending"), (2, "exhausted", "exhausted"),
    ]
    assert "exhausted: no attempt left in the retry window" in attempts[1].getMessage()


async def test_inbound_messages_are_logged(make_client, receiver: Receiver, activity):
    client = await make_client()
    resp = await client.post("/_emulator/inbound", json={"from": "+15551230001", "to": ["+19195550100"], "text": "yo"})
    assert resp.status in (200, 201, 202), await resp.text()
    (inbound,) = lines(activity, "inbound")
    assert inbound.fields["recipient"] == "+19195550100" and inbound.fields["url"] == receiver.url  # type: ignore[attr-defined]
    assert "inbound " in inbound.getMessage() and "from +15551230001 to +19195550100" in inbound.getMessage()


async def test_a_one_time_hint_when_callbacks_have_no_url(make_client, activity):
    client = await make_client(callback_url=None)
    for _ in range(3):
        assert (await send(client, BODY)).status == 202
    await advance(client, 60)
    skipped = lines(activity, "callback-skipped")
    hints = [r for r in skipped if r.levelno == logging.WARNING]
    assert len(hints) == 1 and len(skipped) == 3  # the hint, then one debug line for each other callback
    assert "--callback-url" in hints[0].getMessage() and "app-1" in hints[0].getMessage()


async def test_nothing_is_formatted_when_the_log_is_off(make_client, receiver: Receiver, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="emulator.activity")
    import emulator.logs

    def refuse(*args, **kwargs):
        raise AssertionError("formatted a line nobody reads")

    monkeypatch.setattr(emulator.logs, "_emit", refuse)
    client = await make_client()
    await send(client, BODY)
    await advance(client, 60)
    assert len(receiver.requests) == 1


async def test_json_lines_carry_the_same_facts_as_fields(make_client, receiver: Receiver, activity):
    receiver.fail(1, 500)
    client = await make_client()
    await send(client, BODY)
    await advance(client, 120)
    formatted = [json.loads(JsonFormatter().format(r)) for r in activity.records if r.name == "emulator.activity"]
    attempt = next(e for e in formatted if e["event"] == "callback-attempt")
    assert {k: attempt[k] for k in ("type", "recipient", "url", "status", "error", "attempt", "outcome")} == {
        "type": "message-delivered", "recipient": "+15551230001", "url": receiver.url,
        "status": 500, "error": None, "attempt": 1, "outcome": "retry",
    }
    assert attempt["nextAttemptAt"] and attempt["virtualTime"] and attempt["messageId"] and attempt["callbackId"]
    assert attempt["level"] == "warning" and attempt["message"].startswith("[")
    text = TextFormatter().format(activity.records[-1])
    assert "emulator.activity" not in text and (" INFO [" in text or " WARNING [" in text)


def test_setup_logging_levels_and_access_log():
    from emulator.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("aiohttp.access").level
    try:
        setup_logging("json", "warning", access_log=True)
        assert root.level == logging.WARNING and isinstance(root.handlers[0].formatter, JsonFormatter)
        assert logging.getLogger("aiohttp.access").level == logging.INFO
        setup_logging("text", "debug")
        assert root.level == logging.DEBUG and logging.getLogger("aiohttp.access").level == logging.WARNING
    finally:
        root.handlers[:], level, access = saved
        root.setLevel(level)
        logging.getLogger("aiohttp.access").setLevel(access)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):
    """``setup_logging`` as the CLI calls it, writing to a StringIO instead of stderr, at a
    fixed wall time; returns ``start(fmt) -> (handler, stream)``. Everything is put back after."""
    import io
    import sys
    import time

    import emulator.logs
    from emulator.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("aiohttp.access").level
    monkeypatch.setattr(emulator.logs, "_terminal", None)
    # 2025-11-30 12:00:00.101 UTC: the ordinary path (LogRecord) and the fast one read the same clock.
    monkeypatch.setattr(time, "time", lambda: 1_764_504_000.101)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()

    def start(fmt: str) -> tuple[logging.Handler, io.StringIO]:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        setup_logging(fmt, "info")
        return root.handlers[0], stream

    yield start
    root.handlers[:], level, access = saved
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access)
    monkeypatch.undo()
    time.tzset()


FIELDS = {"event": "send", "virtualTime": "2026-11-30T12:00:00.000Z", "messageId": "m-1", "to": ["+15551230001"], "tag": None}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_terminal_writes_what_the_formatter_would(terminal, fmt: str):
    from emulator.logs import _emit

    _, stream = terminal(fmt)
    _emit(logging.INFO, FIELDS, "sent m-1 from +1 to +2")
    _emit(logging.WARNING, FIELDS, "callback for m-1: 500")
    fast = stream.getvalue()  # not on an event loop: written at once (on one: test below)
    # Another handler on the way: the ordinary path, LogRecord and formatter, which must give the same text.
    seen: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(collector)
    _emit(logging.INFO, FIELDS, "sent m-1 from +1 to +2")
    _emit(logging.WARNING, FIELDS, "callback for m-1: 500")
    assert len(seen) == 2
    ordinary = stream.getvalue()[len(fast):]
    assert fast == ordinary and len(fast.splitlines()) == 2
    if fmt == "text":
        assert fast.startswith("2025-11-30 12:00:00,101 INFO [2026-11-30T12:00:00.000Z] sent m-1 from +1 to +2\n")
    else:
        first = json.loads(fast.splitlines()[0])
        assert first["time"] == "2025-11-30T12:00:00+0000" and first["level"] == "info" and first["messageId"] == "m-1"


async def test_the_terminal_writes_a_loop_iterations_lines_at_once_and_in_order(terminal, monkeypatch):
    from emulator.logs import _emit

    _, stream = terminal("text")
    writes: list[str] = []
    write = stream.write
    monkeypatch.setattr(stream, "write", lambda text: writes.append(text) or write(text))
    for n in range(3):
        _emit(logging.INFO, FIELDS, f"line {n}")
    assert writes == []  # waiting for the end of this iteration of the loop
    await asyncio.sleep(0)  # one iteration
    assert len(writes) == 1 and [line.rsplit(" ", 1)[1] for line in writes[0].splitlines()] == ["0", "1", "2"]
    _emit(logging.INFO, FIELDS, "line 3")
    logging.getLogger("emulator").warning("something else")  # the waiting line goes first
    assert [line.rsplit(" ", 1)[1] for line in stream.getvalue().splitlines()[3:]] == ["3", "else"]


async def test_a_send_takes_the_fast_path_in_the_cli_setup(terminal, make_client, receiver: Receiver, monkeypatch):
    handler, stream = terminal("text")
    client = await make_client()

    def refuse(*args, **kwargs):
        raise AssertionError("made a LogRecord for an activity line only the terminal shows")

    monkeypatch.setattr(logging.getLogger("emulator.activity"), "makeRecord", refuse)
    message_id = (await (await send(client, BODY)).json())["id"]
    handler.flush()
    (line,) = [line for line in stream.getvalue().splitlines() if " sent " in line]
    assert line.startswith("2025-11-30 12:00:00,101 INFO [")
    assert f"sent {message_id} from +19195550100 to +15551230001 (sms, 1 segment); callbacks to {receiver.url}" in line
