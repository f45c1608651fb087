"""The terminal log: one line per send, inbound message and callback attempt (docs/callbacks.md,
'The terminal log')."""

from __future__ import annotations

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
