"""HTTP tests of POST /api/v2/users/{accountId}/messages and its errors."""

from __future__ import annotations

import re

import pytest
from support import ACCOUNT, AUTH, advance, send

from emulator.app import DATABASE
from emulator.keys import SERVICE

SMS = {"applicationId": "app-1", "to": ["+15552221111"], "from": "+15554443333", "text": "Hello World", "tag": "t1"}


async def test_send_returns_202_with_bandwidth_message(client):
    resp = await send(client, SMS)
    assert resp.status == 202
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert re.fullmatch(r"\d{13}[a-z0-9]{16}", body["id"])
    assert body["owner"] == "+15554443333"
    assert body["from"] == "+15554443333"
    assert body["to"] == ["+15552221111"]
    assert body["applicationId"] == "app-1"
    assert body["direction"] == "out"
    assert body["segmentCount"] == 1
    assert body["text"] == "Hello World"
    assert body["tag"] == "t1"
    assert body["priority"] == "default"
    assert "expiration" not in body and "media" not in body
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["time"])


async def test_send_echoes_expiration_media_and_priority(client):
    body = dict(SMS, media=["https://example.com/cat.png"], priority="high", expiration="2999-01-02T03:04:05+00:00")
    resp = await send(client, body)
    assert resp.status == 202
    data = await resp.json()
    assert data["media"] == ["https://example.com/cat.png"]
    assert data["priority"] == "high"
    assert data["expiration"] == "2999-01-02T03:04:05+00:00"
    assert data["segmentCount"] == 1  # MMS is always one segment


async def test_long_unicode_text_counts_segments(client):
    resp = await send(client, dict(SMS, text="ж" * 71))
    assert (await resp.json())["segmentCount"] == 2


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer abc"}, {"Authorization": "Basic !!!"}, {"Authorization": "Basic dXNlcg=="}],
    ids=["missing", "bearer", "garbage", "no-colon"],
)
async def test_missing_or_invalid_auth_is_401(client, headers):
    resp = await client.post(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers=headers)
    assert resp.status == 401
    assert await resp.json() == {"type": "unauthorized", "description": "Authentication Failed"}


async def test_non_json_content_type_is_415(client):
    resp = await client.post(
        f"/api/v2/users/{ACCOUNT}/messages", data="hi", headers={**AUTH, "Content-Type": "text/plain;charset=UTF-8"}
    )
    assert resp.status == 415
    assert await resp.json() == {
        "type": "unsupported-content-type",
        "description": "Content type 'text/plain;charset=UTF-8' not supported. Please use 'application/json'",
    }


async def test_missing_fields_are_each_named(client):
    resp = await send(client, {"text": "hi"})
    assert resp.status == 400
    body = await resp.json()
    assert body["type"] == "request-validation"
    assert body["description"] == "Your request could not be accepted"
    assert {e["fieldName"] for e in body["fieldErrors"]} == {"applicationId", "from", "to"}


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"from": "+invalid"}, "from"),
        ({"to": ["5551234"]}, "to"),
        ({"to": ["+15552221111", "+15552221111"]}, "to"),
        ({"to": [f"+1555222{i:04d}" for i in range(11)]}, "to"),
        ({"text": "x" * 2049}, "text"),
        ({"tag": "x" * 1025}, "tag"),
        ({"priority": "urgent"}, "priority"),
        ({"expiration": "2001-01-01T00:00:00Z"}, "expiration"),
        ({"expiration": "tomorrow"}, "expiration"),
        ({"media": "https://example.com/a.png"}, "media"),
    ],
)
async def test_invalid_field_gives_field_error(client, patch, field):
    resp = await send(client, {**SMS, **patch})
    assert resp.status == 400
    body = await resp.json()
    assert [e["fieldName"] for e in body["fieldErrors"]] == [field]


async def test_e164_error_wording(client):
    resp = await send(client, {**SMS, "from": "+invalid"})
    body = await resp.json()
    assert body["fieldErrors"][0]["description"] == "'+invalid' must be replaced with a valid E164 formatted telephone number"


async def test_alphanumeric_sender_and_unknown_fields_are_accepted(client):
    resp = await send(client, {**SMS, "from": "MyShop", "somethingNew": 1})
    assert resp.status == 202


async def test_invalid_json_is_400_not_500(client):
    resp = await client.post(
        f"/api/v2/users/{ACCOUNT}/messages", data=b"{nope", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["type"] == "request-validation"


async def test_unknown_path_is_spring_404(client):
    resp = await client.get(f"/api/v2/users/{ACCOUNT}/messages/happy", headers=AUTH)
    assert resp.status == 404
    body = await resp.json()
    assert body["status"] == 404 and body["error"] == "Not Found" and body["message"] == "Not Found"
    assert body["path"] == f"/api/v2/users/{ACCOUNT}/messages/happy"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", body["timestamp"])


async def test_wrong_method_is_405_in_bandwidth_shape(client):
    resp = await client.patch(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers=AUTH)
    assert resp.status == 405
    body = await resp.json()
    assert body["type"] == "method-not-allowed"


async def test_wrong_method_lists_the_allowed_ones(client):
    resp = await client.delete(f"/api/v2/users/{ACCOUNT}/media", headers=AUTH)
    assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"
    assert (await resp.json())["description"] == "Method 'DELETE' not supported for this resource."


async def test_a_bug_of_ours_is_a_500_in_bandwidth_shape(client, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(client.app[SERVICE], "send", broken)
    resp = await send(client, SMS)
    assert resp.status == 500
    assert await resp.json() == {"type": "internal-server-error", "description": "Something went wrong. Please try again."}
    assert "a bug" in caplog.text


async def test_a_failed_commit_is_a_500_not_a_202(make_client, tmp_path, monkeypatch):
    client = await make_client(db=str(tmp_path / "state.db"))

    def broken() -> None:
        raise OSError("disk full")

    monkeypatch.setattr(client.app[DATABASE], "commit", broken)
    resp = await send(client, SMS)
    assert resp.status == 500 and (await resp.json())["type"] == "internal-server-error"


async def test_sms_gets_one_delivered_callback(client, receiver):
    resp = await send(client, SMS)
    message_id = (await resp.json())["id"]
    await advance(client, 0.5)
    assert receiver.requests == []  # not due yet
    await advance(client, 1)
    [request] = receiver.requests
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["headers"]["User-Agent"] == "BandwidthAPI/v2"
    [event] = request["body"]
    assert event["type"] == "message-delivered"
    assert event["description"] == "ok"
    assert event["to"] == "+15552221111"
    assert event["message"]["id"] == message_id
    assert event["message"]["text"] == ""
    assert event["message"]["tag"] == "t1"
    assert event["message"]["to"] == ["+15552221111"]


async def test_group_message_gets_one_callback_per_recipient(client, receiver):
    group = {**SMS, "to": ["+15552221111", "+15552221112", "+15552221113"]}
    await send(client, group)
    await advance(client, 60)
    delivered = [e for e in receiver.events if e["type"] == "message-delivered"]
    assert sorted(e["to"] for e in delivered) == group["to"]
    assert all(e["message"]["to"] == group["to"] for e in delivered)
    sending = [e for e in receiver.events if e["type"] == "message-sending"]
    assert len(sending) == 3


async def test_mms_gets_sending_then_delivered(client, receiver):
    await send(client, {**SMS, "media": ["https://example.com/cat.png"]})
    await advance(client, 60)
    assert [e["type"] for e in receiver.events] == ["message-sending", "message-delivered"]
    assert receiver.events[0]["message"]["media"] == ["https://example.com/cat.png"]
    assert all(e["message"]["segmentCount"] == 1 for e in receiver.events)


@pytest.mark.parametrize("code, description", [(4720, "invalid-destination-address"), (9902, "delivery-receipt-expired")])
async def test_magic_number_fails_with_its_code(client, receiver, code, description):
    await send(client, {**SMS, "to": [f"+1555010{code}"]})
    await advance(client, 60)
    [event] = receiver.events
    assert event["type"] == "message-failed"
    assert event["errorCode"] == code
    assert event["description"] == description


async def test_magic_number_with_unknown_code_is_delivered(client, receiver):
    await send(client, {**SMS, "to": ["+15550100000"]})
    await advance(client, 60)
    assert [e["type"] for e in receiver.events] == ["message-delivered"]
