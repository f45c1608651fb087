"""Every send validation rule (docs/bandwidth-behaviour.md, 'Sending'), each answered with a fieldErrors entry."""

from __future__ import annotations

import pytest
from support import send

SMS = {"applicationId": "app-1", "to": ["+15552221111"], "from": "+15554443333", "text": "hi"}


async def field_errors(client, body) -> list[dict]:
    resp = await send(client, body)
    assert resp.status == 400, await resp.text()
    data = await resp.json()
    assert data["type"] == "request-validation" and data["description"] == "Your request could not be accepted"
    return data["fieldErrors"]


@pytest.mark.parametrize(
    "sender",
    ["+15554443333", "MyShop", "A", "Shop-1 & Co", "ab_c+d", "x2345678901"],
)
async def test_valid_senders(client, sender):
    assert (await send(client, {**SMS, "from": sender})).status == 202


@pytest.mark.parametrize(
    "sender",
    ["+invalid", "15554443333", "+0123", "123456", "TooLongName12", "Shop!", "", "+1555444333344445"],
    ids=["plus-letters", "no-plus", "leading-zero", "digits-only", "12-chars", "bad-char", "empty", "16-digits"],
)
async def test_invalid_senders(client, sender):
    [error] = await field_errors(client, {**SMS, "from": sender})
    assert error["fieldName"] == "from"


@pytest.mark.parametrize(
    "to, words",
    [
        ([], "at least one"),
        (["+15552221111", "+15552221111"], "duplicate"),
        ([f"+1555222{i:04d}" for i in range(11)], "more than 10"),
        (["5552221111"], "E164"),
        ({"a": 1}, "array"),
    ],
)
async def test_recipient_rules(client, to, words):
    errors = await field_errors(client, {**SMS, "to": to})
    assert {e["fieldName"] for e in errors} == {"to"}
    assert any(words in e["description"] for e in errors)


async def test_ten_recipients_are_allowed(client):
    assert (await send(client, {**SMS, "to": [f"+1555222{i:04d}" for i in range(10)]})).status == 202


async def test_length_limits(client):
    assert (await send(client, {**SMS, "text": "x" * 2048, "tag": "t" * 1024})).status == 202
    errors = await field_errors(client, {**SMS, "text": "x" * 2049, "tag": "t" * 1025})
    assert sorted(e["fieldName"] for e in errors) == ["tag", "text"]


async def test_an_application_id_is_bounded(client):
    assert (await send(client, {**SMS, "applicationId": "a" * 256})).status == 202
    [error] = await field_errors(client, {**SMS, "applicationId": "a" * 257})
    assert error == {"fieldName": "applicationId", "description": "'applicationId' must be at most 256 characters"}


async def test_media_rules(client):
    url = "https://example.com/" + "a" * (4096 - len("https://example.com/"))
    assert (await send(client, {**SMS, "media": [url] + [f"https://example.com/{i}.png" for i in range(9)]})).status == 202
    [error] = await field_errors(client, {**SMS, "media": [url + "b"]})
    assert error["fieldName"] == "media" and "4096" in error["description"]
    [error] = await field_errors(client, {**SMS, "media": [f"https://example.com/{i}.png" for i in range(11)]})
    assert error["fieldName"] == "media" and "10" in error["description"]
    [error] = await field_errors(client, {**SMS, "media": ["ftp://example.com/a.png"]})
    assert error["fieldName"] == "media"


async def test_text_or_media_is_required(client):
    body = {k: v for k, v in SMS.items() if k != "text"}
    [error] = await field_errors(client, body)
    assert error["fieldName"] == "text"
    assert (await send(client, {**body, "media": ["https://example.com/a.png"]})).status == 202


@pytest.mark.parametrize("expiration", ["2999-01-02T03:04:05+00:00", "2999-01-02T03:04:05.000Z", "2999-01-02T05:04:05+02:00"])
async def test_expiration_formats_the_sdks_send(client, expiration):
    assert (await send(client, {**SMS, "expiration": expiration})).status == 202


@pytest.mark.parametrize("expiration", ["2001-01-01T00:00:00Z", "2999-01-02T03:04:05", "tomorrow", 12345])
async def test_bad_expiration(client, expiration):
    [error] = await field_errors(client, {**SMS, "expiration": expiration})
    assert error["fieldName"] == "expiration"


async def test_priority_enum(client):
    assert (await send(client, {**SMS, "priority": "high"})).status == 202
    [error] = await field_errors(client, {**SMS, "priority": "urgent"})
    assert error["fieldName"] == "priority"


async def test_every_problem_is_reported_at_once(client):
    errors = await field_errors(client, {"from": "+invalid", "to": [], "text": "x" * 3000, "priority": "low"})
    assert {e["fieldName"] for e in errors} == {"applicationId", "from", "to", "text", "priority"}


async def test_unknown_fields_are_tolerated(client):
    assert (await send(client, {**SMS, "channel": "SMS", "callbackUrl": "https://example.com", "x": {"y": 1}})).status == 202
