"""emulator/messaging/wire.py: the send request's validation, the 202 body and callback events,
as pure functions (over HTTP: test_api_send.py and test_validation.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.messaging.wire import (
    MAX_MEDIA,
    MAX_RECIPIENTS,
    MAX_TAG,
    MAX_TEXT,
    FieldError,
    SendRequest,
    callback_event,
    message_body,
    message_body_json,
    parse_send_request,
)
from emulator.state.models import Message

NOW = 1_767_322_800.0  # 2026-01-02T03:00:00Z
SMS = {"applicationId": "app", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}


def errors(body: Any) -> list[tuple[str, str]]:
    result = parse_send_request(body, NOW)
    assert isinstance(result, list), result
    return [(e.field_name, e.description) for e in result]


def test_a_valid_request_with_every_field() -> None:
    body = {
        **SMS, "to": ["+15552221111", "+15552221112"], "media": ["https://example.com/a.png"], "tag": "t",
        "priority": "high", "expiration": "2026-01-03T00:00:00Z", "unknownField": 1,
    }  # fmt: skip
    assert parse_send_request(body, NOW) == SendRequest(
        application_id="app", to=("+15552221111", "+15552221112"), from_="+15554443333", text="hi",
        media=("https://example.com/a.png",), tag="t", priority="high", expiration="2026-01-03T00:00:00Z",
        expiration_at=NOW + 21 * 3600,
    )  # fmt: skip


def test_defaults_and_a_single_recipient_as_a_string() -> None:
    request = parse_send_request({**SMS, "to": "+15552221111", "text": None, "media": ["http://x/a"]}, NOW)
    assert isinstance(request, SendRequest)
    assert request.to == ("+15552221111",) and request.text == ""
    assert (request.tag, request.priority, request.expiration, request.expiration_at) == (None, "default", None, None)


@pytest.mark.parametrize("sender", ["+15554443333", "MyShop", "A1 b-c+_&", "X"])
def test_senders_numbers_or_alphanumeric_ids(sender: str) -> None:
    assert isinstance(parse_send_request({**SMS, "from": sender}, NOW), SendRequest)


@pytest.mark.parametrize("sender", ["+invalid", "15554443333", "123456", "TwelveChars1", "+0123", "bad!", 5])
def test_other_senders_are_refused_in_bandwidths_words(sender: Any) -> None:
    assert errors({**SMS, "from": sender}) == [
        ("from", f"'{sender}' must be replaced with a valid E164 formatted telephone number")
    ]


def test_every_problem_is_reported_at_once_by_field() -> None:
    body = {"to": ["+0555", "+0555", 7], "text": 5, "tag": 3, "priority": "urgent", "expiration": "tomorrow"}
    assert errors(body) == [
        ("applicationId", "'applicationId' must not be empty"),
        ("from", "'from' must not be empty"),
        ("to", "'+0555' must be replaced with a valid E164 formatted telephone number"),
        ("to", "'+0555' must be replaced with a valid E164 formatted telephone number"),
        ("to", "'7' must be replaced with a valid E164 formatted telephone number"),
        ("text", "'text' must be a string"),
        ("tag", "'tag' must be a string"),
        ("priority", "'urgent' is not a valid priority: use 'default' or 'high'"),
        ("expiration", "'tomorrow' is not a valid RFC 3339 date-time"),
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"applicationId": 5}, ("applicationId", "'applicationId' must be a string")),
        ({"to": []}, ("to", "'to' must contain at least one recipient")),
        ({"to": {"a": 1}}, ("to", "'to' must be an array of E164 telephone numbers")),
        ({"to": ["+15552221111", "+15552221111"]}, ("to", "'to' must not contain duplicate telephone numbers")),
        (
            {"to": [f"+1555222{i:04d}" for i in range(MAX_RECIPIENTS + 1)]},
            ("to", f"'to' must not contain more than {MAX_RECIPIENTS} recipients"),
        ),
        ({"text": "x" * (MAX_TEXT + 1)}, ("text", f"'text' must be at most {MAX_TEXT} characters")),
        ({"text": ""}, ("text", "'text' or 'media' must be provided")),
        ({"media": "https://x/a"}, ("media", "'media' must be an array of URLs")),
        ({"media": ["ftp://x/a"]}, ("media", "'ftp://x/a' is not a valid http or https URL")),
        ({"media": ["https://x/" + "a" * 4096]}, ("media", "a media URL must be at most 4096 characters")),
        ({"media": ["https://x/a"] * (MAX_MEDIA + 1)}, ("media", f"'media' must not contain more than {MAX_MEDIA} items")),
        ({"tag": "t" * (MAX_TAG + 1)}, ("tag", f"'tag' must be at most {MAX_TAG} characters")),
        ({"expiration": "2026-01-02T03:00:00Z"}, ("expiration", "'expiration' must be in the future")),
        ({"expiration": "2026-01-03T00:00:00"}, ("expiration", "'2026-01-03T00:00:00' is not a valid RFC 3339 date-time")),
    ],
)
def test_one_problem(change: dict[str, Any], expected: tuple[str, str]) -> None:
    assert errors({**SMS, **change}) == [expected]


@pytest.mark.parametrize("body", [None, [], "text", 5])
def test_a_body_that_is_not_an_object(body: Any) -> None:
    assert parse_send_request(body, NOW) == [FieldError("body", "The request body must be a JSON object")]
    assert FieldError("body", "x").to_json() == {"fieldName": "body", "description": "x"}


def message(**fields: Any) -> Message:
    defaults: dict[str, Any] = {
        "id": "m1", "account_id": "9900000", "application_id": "app", "direction": "out", "from_": "+15554443333",
        "to": ("+15552221111", "+15552221112"), "owner": "+15554443333", "time": NOW, "segment_count": 1,
        "text": "hello",
    }  # fmt: skip
    return Message(**{**defaults, **fields})


def test_the_202_body_has_only_the_fields_that_are_set() -> None:
    assert message_body(message()) == {
        "id": "m1", "owner": "+15554443333", "applicationId": "app", "time": "2026-01-02T03:00:00.000Z",
        "segmentCount": 1, "direction": "out", "to": ["+15552221111", "+15552221112"], "from": "+15554443333",
        "text": "hello", "priority": "default",
    }  # fmt: skip
    full = message_body(message(media=("https://x/a.png",), tag="t", expiration="2026-01-03T00:00:00Z"))
    assert (full["media"], full["tag"], full["expiration"]) == (["https://x/a.png"], "t", "2026-01-03T00:00:00Z")


@given(
    text=st.text(max_size=20),
    tag=st.none() | st.text(max_size=5),
    media=st.lists(st.text(max_size=8), max_size=2).map(tuple),
    expiration=st.none() | st.just("2026-01-03T00:00:00Z"),
    to=st.lists(st.sampled_from(["+15552221111", "+15552221112", 'a"\\b\u00e9\U0001f600']), min_size=1, max_size=3).map(tuple),
    segments=st.integers(1, 20),
    time=st.floats(0, 4_000_000_000),
)
def test_the_202_text_is_what_json_dumps_gives_for_the_202_body(
    text: str, tag: str | None, media: tuple[str, ...], expiration: str | None, to: tuple[str, ...], segments: int,
    time: float,
) -> None:
    m = message(text=text, tag=tag, media=media, expiration=expiration, to=to, segment_count=segments, time=time)
    assert message_body_json(m) == json.dumps(message_body(m))


def test_an_outbound_event_has_no_text_and_always_a_tag() -> None:
    event = callback_event(
        message(), type="message-delivered", to="+15552221111", time=NOW + 1, description="ok", carrier_name="C"
    )
    assert event == {
        "time": "2026-01-02T03:00:01.000Z", "type": "message-delivered", "to": "+15552221111", "description": "ok",
        "carrierName": "C",
        "message": {
            "id": "m1", "owner": "+15554443333", "applicationId": "app", "time": "2026-01-02T03:00:00.000Z",
            "segmentCount": 1, "direction": "out", "to": ["+15552221111", "+15552221112"], "from": "+15554443333",
            "text": "", "tag": "", "priority": "default",
        },
    }  # fmt: skip


def test_message_sending_always_lists_media_and_a_failure_carries_its_code() -> None:
    sending = callback_event(message(), type="message-sending", to="+15552221111", time=NOW, description="sending")
    assert sending["message"]["media"] == [] and "errorCode" not in sending
    failed = callback_event(
        message(tag="t"), type="message-failed", to="+15552221112", time=NOW, description="bad", error_code=4720
    )
    assert failed["errorCode"] == 4720 and failed["message"]["tag"] == "t" and "media" not in failed["message"]
    assert "carrierName" not in failed


def test_an_inbound_event_carries_the_text_and_no_tag() -> None:
    inbound = message(direction="in", from_="+15559998888", to=("+15554443333",), media=("https://x/m.jpg",))
    event = callback_event(inbound, type="message-received", to="+15554443333", time=NOW, description="Incoming message received")
    assert event["message"]["text"] == "hello" and event["message"]["media"] == ["https://x/m.jpg"]
    assert "tag" not in event["message"] and "priority" not in event["message"]
