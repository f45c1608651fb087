"""The official Python SDK (bandwidth-sdk 23.3.1) against a running emulator.

Every MessagesApi and MediaApi operation, asserting on typed results: the SDK maps only
the documented status code of each operation, so a wrong one shows up as ``None`` rather
than as an exception. Every callback type the emulator emits is parsed with
``Callback.from_dict``, the SDK's webhook model.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from bandwidth import ApiClient, ApiException, Configuration, MediaApi, MessagesApi
from bandwidth.models import (
    Callback,
    InboundCallback,
    ListMessageDirectionEnum,
    Media,
    Message,
    MessageRequest,
    MessagesList,
    MessageStatusEnum,
    MessageTypeEnum,
    StatusCallback,
)
from support import ANY_TIME, AUTH, SUITE_ERA, Receiver

from emulator.app import create_app
from emulator.config import Settings
from emulator.scenarios.format import parse_scenario

ACCOUNT = "9900000"
APP_ID = "93de2206-9669-4e07-948d-329f4b722ee2"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))


@dataclass
class Emulator:
    base_url: str
    messages: MessagesApi
    media: MediaApi

    async def control(self, method: str, path: str, **kwargs) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.request(method, f"{self.base_url}/_emulator{path}", **kwargs) as resp:
                assert resp.status < 300, await resp.text()
                return await resp.json()

    async def advance(self, seconds: float) -> None:
        await self.control("POST", "/clock/advance", json={"seconds": seconds})


@pytest.fixture
async def emulator(receiver: Receiver) -> AsyncIterator[Emulator]:
    # message-sent is opt-in; switching it on makes the emulator emit every status type.
    scenario = parse_scenario(
        {
            "era": SUITE_ERA,
            "applications": [{"id": "*", "messageSent": True, "statusCallbackUrl": receiver.url, "inboundCallbackUrl": receiver.url}],
        }
    )
    app = create_app(Settings(clock="manual", callback_url=receiver.url), scenario=scenario)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base_url = f"http://127.0.0.1:{port}"
    # docs/bandwidth-behaviour.md, 'The official SDKs': the operations hard-code Bandwidth's host unless told to ignore it.
    cfg = Configuration(host=f"{base_url}/api/v2", ignore_operation_servers=True, username="user", password="pass")
    client = ApiClient(cfg)
    yield Emulator(base_url, MessagesApi(client), MediaApi(client))
    await runner.cleanup()


def call(fn, *args, **kwargs):
    """The SDK is blocking: run it off the event loop that serves the emulator."""
    return asyncio.to_thread(fn, *args, **kwargs)


async def test_create_and_list_messages(emulator: Emulator):
    expiration = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    request = MessageRequest(
        application_id=APP_ID,
        to=["+15552221111"],
        var_from="+15554443333",
        text="hello",
        media=["https://example.com/cat.png"],
        tag="sdk",
        priority="high",
        expiration=expiration,
    )
    message = await call(emulator.messages.create_message, ACCOUNT, request)
    assert isinstance(message, Message), "create_message gave None: the status code was not 202"
    assert message.direction.value == "out" and message.priority.value == "high"
    assert message.media == ["https://example.com/cat.png"] and message.tag == "sdk"
    assert message.expiration is not None and abs((message.expiration - expiration).total_seconds()) < 1

    sms = await call(
        emulator.messages.create_message,
        ACCOUNT,
        MessageRequest(application_id=APP_ID, to=["+15552221112"], var_from="+15554443333", text="sms"),
    )
    await emulator.advance(60)

    listed = await call(emulator.messages.list_messages, ACCOUNT, from_date_time=ANY_TIME["fromDateTime"])
    assert isinstance(listed, MessagesList), "list_messages gave None: the status code was not 200"
    assert listed.total_count == 2
    assert {m.message_id for m in listed.messages} == {message.id, sms.id}
    assert all(m.message_status == MessageStatusEnum.DELIVERED for m in listed.messages)

    filtered = await call(
        emulator.messages.list_messages,
        ACCOUNT,
        source_tn="+15554443333",
        destination_tn="+15552221112",
        message_status=MessageStatusEnum.DELIVERED,
        message_direction=ListMessageDirectionEnum.OUTBOUND,
        message_type=MessageTypeEnum.SMS,
        error_code=0,
        from_date_time="2000-01-01T00:00:00.000Z",
        to_date_time="2999-01-01T00:00:00.000Z",
        sort="sourceTn:desc",
        limit=50,
        limit_total_count=True,
    )
    assert [m.message_id for m in filtered.messages] == [sms.id]
    [row] = filtered.messages
    assert row.message_type == MessageTypeEnum.SMS and row.message_direction == ListMessageDirectionEnum.OUTBOUND
    assert row.segment_count == 1 and row.error_code == 0 and row.receive_time is not None

    first = await call(emulator.messages.list_messages, ACCOUNT, limit=1)
    assert len(first.messages) == 1 and first.page_info.next_page_token and first.page_info.prev_page is None
    second = await call(emulator.messages.list_messages, ACCOUNT, limit=1, page_token=first.page_info.next_page_token)
    assert second.messages[0].message_id != first.messages[0].message_id
    assert second.page_info.prev_page_token and second.page_info.next_page_token is None


async def test_errors_arrive_as_typed_sdk_exceptions(emulator: Emulator):
    bad = MessageRequest(application_id=APP_ID, to=["+15552221111"], var_from="+invalid", text="x")
    with pytest.raises(ApiException) as info:
        await call(emulator.messages.create_message, ACCOUNT, bad)
    assert info.value.status == 400
    assert info.value.data.type == "request-validation"
    assert info.value.data.field_errors[0].field_name == "from"

    with pytest.raises(ApiException) as info:
        await call(emulator.messages.list_messages, ACCOUNT, limit=0)
    assert info.value.status == 400 and info.value.data.type == "request-validation"

    with pytest.raises(ApiException) as info:
        await call(emulator.media.get_media, ACCOUNT, "nothing.png")
    assert info.value.status == 404 and info.value.data.description


async def test_media_operations(emulator: Emulator):
    # docs/bandwidth-behaviour.md, 'The official SDKs': content_type= is overwritten by the SDK; _content_type= works.
    uploaded = await call(
        emulator.media.upload_media_with_http_info, ACCOUNT, "probe.png", PNG, cache_control="no-cache", _content_type="image/png"
    )
    assert uploaded.status_code == 204 and uploaded.data is None
    nested = "14762070468292kw2fuqty55yp2b2/0/bw.png"  # sent as ...%2F0%2Fbw.png
    await call(emulator.media.upload_media, ACCOUNT, nested, b"second", _content_type="image/png")

    got = await call(emulator.media.get_media, ACCOUNT, "probe.png")  # Accept: application/json by default
    assert bytes(got) == PNG
    got = await call(emulator.media.get_media, ACCOUNT, nested, _headers={"Accept": "application/octet-stream"})
    assert bytes(got) == b"second"

    listed = await call(emulator.media.list_media_with_http_info, ACCOUNT)
    assert listed.status_code == 200
    assert all(isinstance(m, Media) for m in listed.data)
    by_name = {m.media_name: m for m in listed.data}
    assert set(by_name) == {"probe.png", nested}
    assert by_name["probe.png"].content_length == len(PNG)
    assert by_name[nested].content == f"{emulator.base_url}/api/v2/users/{ACCOUNT}/media/{nested}"
    assert "Continuation-Token" not in (listed.headers or {})
    assert await call(emulator.media.list_media, ACCOUNT, continuation_token=None) is not None

    deleted = await call(emulator.media.delete_media_with_http_info, ACCOUNT, "probe.png")
    assert deleted.status_code == 204
    remaining = await call(emulator.media.list_media, ACCOUNT)
    assert [m.media_name for m in remaining] == [nested]


async def test_media_list_pages_with_continuation_token(emulator: Emulator):
    async with aiohttp.ClientSession() as session:
        for i in range(1001):
            url = f"{emulator.base_url}/api/v2/users/{ACCOUNT}/media/m{i:04d}"
            async with session.put(url, data=b"x", headers={**AUTH, "Content-Type": "text/plain"}) as resp:
                assert resp.status == 204
    first = await call(emulator.media.list_media_with_http_info, ACCOUNT)
    assert len(first.data) == 1000
    token = first.headers["Continuation-Token"]
    rest = await call(emulator.media.list_media, ACCOUNT, continuation_token=token)
    assert [m.media_name for m in rest] == ["m1000"]


async def test_every_callback_type_parses_with_the_sdk(emulator: Emulator, receiver: Receiver):
    sms = MessageRequest(application_id=APP_ID, to=["+15552221111"], var_from="+15554443333", text="a", tag="t")
    group = MessageRequest(
        application_id=APP_ID, to=["+15552221112", "+15550104720"], var_from="+15554443333", text="group"
    )
    await call(emulator.messages.create_message, ACCOUNT, sms)
    await call(emulator.messages.create_message, ACCOUNT, group)
    await emulator.control(
        "POST",
        "/inbound",
        json={"from": "+15557770000", "to": "+15554443333", "text": "reply",
              "media": [{"content": "aGVsbG8=", "contentType": "text/plain", "filename": "note.txt"}]},
    )
    await emulator.advance(60)

    parsed = []
    for request in receiver.requests:
        assert isinstance(request["body"], list)
        for element in request["body"]:
            parsed.append(Callback.from_dict(element).actual_instance)
    types = {e.type.value for e in parsed}
    assert types == {"message-sending", "message-sent", "message-delivered", "message-failed", "message-received"}
    failed = next(e for e in parsed if e.type.value == "message-failed")
    assert isinstance(failed, StatusCallback) and failed.error_code == 4720
    received = next(e for e in parsed if e.type.value == "message-received")
    assert isinstance(received, InboundCallback) and received.message.text == "reply"
    [media_url] = received.message.media
    assert media_url.startswith(f"{emulator.base_url}/api/v2/users/{ACCOUNT}/media/{received.message.id}/0/")
    media_id = media_url.split("/media/", 1)[1]
    assert bytes(await call(emulator.media.get_media, ACCOUNT, media_id)) == b"hello"
