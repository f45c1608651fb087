"""The official Python SDK's MultiChannelApi (bandwidth-sdk 23.3.1) against a running emulator.

Text, rich card, carousel and fallback sends go through the SDK unchanged, its typed
answers are checked, and every callback the webhook receives is parsed with the SDK's
``Callback`` model (docs/multichannel.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from bandwidth import ApiClient, ApiException, Configuration, MultiChannelApi
from bandwidth.models import (
    Callback,
    CreateMultiChannelMessageResponse,
    InboundCallback,
    MmsMessageContent,
    MmsMessageContentFile,
    MultiChannelAction,
    MultiChannelChannelListMMSObject,
    MultiChannelChannelListRBMObject,
    MultiChannelChannelListRBMObjectAllOfContent,
    MultiChannelChannelListRequestObject,
    MultiChannelChannelListSMSObject,
    MultiChannelError,
    MultiChannelMessageChannelEnum,
    MultiChannelMessageRequest,
    RbmActionBase,
    RbmActionOpenUrl,
    RbmActionTypeEnum,
    RbmCardContent,
    RbmCardContentMedia,
    RbmMessageCarouselCard,
    RbmMessageContentRichCard,
    RbmMessageContentText,
    RbmStandaloneCard,
    SmsMessageContent,
    StatusCallback,
)
from support import SUITE_ERA, Receiver

from emulator.app import create_app
from emulator.config import Settings
from emulator.scenarios.format import parse_scenario

ACCOUNT = "9900000"
APP_ID = "93de2206-9669-4e07-948d-329f4b722ee2"
AGENT = "BandwidthRBM"
OUR_NUMBER = "+15554443333"
HANDSET = "+15552223333"


@dataclass
class Emulator:
    base_url: str
    api: MultiChannelApi
    receiver: Receiver

    async def control(self, method: str, path: str, **kwargs: Any) -> Any:
        async with aiohttp.ClientSession() as session:
            async with session.request(method, f"{self.base_url}/_emulator{path}", **kwargs) as resp:
                assert resp.status < 300, await resp.text()
                return await resp.json()

    async def advance(self, seconds: float) -> None:
        await self.control("POST", "/clock/advance", json={"seconds": seconds})

    def send(self, request: MultiChannelMessageRequest) -> Any:
        # The SDK is blocking: run it off the event loop that serves the emulator.
        return asyncio.to_thread(self.api.create_multi_channel_message, ACCOUNT, request)

    def parsed(self) -> list[StatusCallback | InboundCallback]:
        """Every event received so far, each through the SDK's webhook model."""
        return [Callback.from_dict(event).actual_instance for event in self.receiver.events]


@pytest.fixture
async def emulator(receiver: Receiver) -> AsyncIterator[Emulator]:
    scenario = parse_scenario(
        {
            # The suite's era: the MMS fallback's message-sending ends on 2027-01-06 (support.SUITE_ERA).
            "era": SUITE_ERA,
            "applications": [
                {"id": "*", "messageSent": True, "statusCallbackUrl": receiver.url, "inboundCallbackUrl": receiver.url}
            ],
        }
    )
    app = create_app(Settings(clock="manual", callback_url=receiver.url), scenario=scenario)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base_url = f"http://127.0.0.1:{port}"
    cfg = Configuration(host=f"{base_url}/api/v2", ignore_operation_servers=True, username="user", password="pass")
    yield Emulator(base_url, MultiChannelApi(ApiClient(cfg)), receiver)
    await runner.cleanup()


def reply(text: str, postback: str) -> MultiChannelAction:
    return MultiChannelAction(RbmActionBase(type=RbmActionTypeEnum.REPLY, text=text, postback_data=postback))


def rbm(content: Any) -> MultiChannelChannelListRequestObject:
    return MultiChannelChannelListRequestObject(
        MultiChannelChannelListRBMObject(
            var_from=AGENT,
            application_id=APP_ID,
            channel=MultiChannelMessageChannelEnum.RBM,
            content=MultiChannelChannelListRBMObjectAllOfContent(content),
        )
    )


def sms(text: str) -> MultiChannelChannelListRequestObject:
    return MultiChannelChannelListRequestObject(
        MultiChannelChannelListSMSObject(
            var_from=OUR_NUMBER,
            application_id=APP_ID,
            channel=MultiChannelMessageChannelEnum.SMS,
            content=SmsMessageContent(text=text),
        )
    )


def card(title: str, *suggestions: MultiChannelAction) -> RbmCardContent:
    return RbmCardContent(
        title=title,
        description=f"About {title}",
        media=RbmCardContentMedia(file_url=f"https://example.com/{title}.png", height="MEDIUM"),
        suggestions=list(suggestions) or None,
    )


async def test_text_with_suggestions_is_delivered_and_read_over_rbm(emulator: Emulator):
    request = MultiChannelMessageRequest(
        to=HANDSET,
        channel_list=[
            rbm(RbmMessageContentText(text="Your table is ready", suggestions=[reply("Confirm", "Y29uZmlybQ==")])),
            sms("Your table is ready"),
        ],
        tag="table-42",
    )
    answer = await emulator.send(request)
    assert isinstance(answer, CreateMultiChannelMessageResponse), "the status code was not 202"
    assert answer.data.to == [HANDSET] and answer.data.direction.value == "out" and answer.data.tag == "table-42"
    [first, second] = answer.data.channel_list
    assert first.actual_instance.owner == AGENT and second.actual_instance.owner == OUR_NUMBER
    assert answer.links == [] and answer.errors == []

    await emulator.advance(5)
    await emulator.control("POST", f"/messages/{answer.data.id}/read")
    await emulator.advance(1)
    events = emulator.parsed()
    assert [e.type.value for e in events] == ["message-sent", "message-delivered", "message-read"]
    assert all(isinstance(e, StatusCallback) and e.message.channel.value == "RBM" for e in events)
    assert all(e.message.id == answer.data.id and e.message.var_from == AGENT and e.message.tag == "table-42" for e in events)
    assert events[2].event_time is not None


async def test_standalone_card_and_carousel(emulator: Emulator):
    open_site = MultiChannelAction(
        RbmActionOpenUrl(type=RbmActionTypeEnum.OPEN_URL, text="Menu", postback_data="bWVudQ==", url="https://example.com/menu")
    )
    standalone = RbmMessageContentRichCard(
        RbmStandaloneCard(orientation="HORIZONTAL", thumbnail_image_alignment="LEFT", card_content=card("Pasta", open_site))
    )
    carousel = RbmMessageContentRichCard(
        RbmMessageCarouselCard(card_width="MEDIUM", card_contents=[card("Pizza", reply("Pick", "cGl6emE=")), card("Salad")])
    )
    for content in (standalone, carousel):
        answer = await emulator.send(MultiChannelMessageRequest(to=HANDSET, channel_list=[rbm(content)]))
        assert isinstance(answer, CreateMultiChannelMessageResponse)
        echoed = answer.data.channel_list[0].actual_instance.content.actual_instance
        assert echoed.actual_instance.to_dict() == content.actual_instance.to_dict()
    await emulator.advance(5)
    delivered = [e for e in emulator.parsed() if e.type.value == "message-delivered"]
    assert len(delivered) == 2 and {e.message.channel.value for e in delivered} == {"RBM"}


@pytest.mark.parametrize(
    ("handset", "rbm_outcome"),
    [("+15550201234", "not-capable"), ("+15550214720", "failed")],
    ids=["never-rcs-capable", "rbm-attempt-fails"],
)
async def test_fallback_to_sms(emulator: Emulator, handset: str, rbm_outcome: str):
    request = MultiChannelMessageRequest(
        to=handset, channel_list=[rbm(RbmMessageContentText(text="Rich hello")), sms("Plain hello")]
    )
    answer = await emulator.send(request)
    await emulator.advance(10)
    events = emulator.parsed()
    assert [e.type.value for e in events] == ["message-sent", "message-delivered"]
    assert all(e.message.channel.value == "SMS" and e.message.var_from == OUR_NUMBER for e in events)
    shown = await emulator.control("GET", f"/messages/{answer.data.id}")
    assert shown["channel"] == "SMS" and shown["messageType"] == "sms"
    assert [(a["channel"], a["outcome"]) for a in shown["multichannel"]["attempts"]] == [("RBM", rbm_outcome), ("SMS", "delivered")]


async def test_failed_and_mms_sending_callbacks_parse(emulator: Emulator):
    mms = MultiChannelChannelListRequestObject(
        MultiChannelChannelListMMSObject(
            var_from=OUR_NUMBER,
            application_id=APP_ID,
            channel=MultiChannelMessageChannelEnum.MMS,
            content=MmsMessageContent(text="Menu", media=[MmsMessageContentFile(file_url="https://example.com/menu.png")]),
        )
    )
    text = rbm(RbmMessageContentText(text="x"))
    fails = await emulator.send(MultiChannelMessageRequest(to="+15550104720", channel_list=[text, sms("x")]))
    falls = await emulator.send(MultiChannelMessageRequest(to="+15550201234", channel_list=[text, mms]))
    await emulator.advance(10)
    by_message: dict[str, list[tuple[str, str, Any]]] = {}
    for event in emulator.parsed():
        by_message.setdefault(event.message.id, []).append((event.type.value, event.message.channel.value, event.error_code))
    assert by_message[fails.data.id] == [("message-sent", "SMS", None), ("message-failed", "SMS", 4720)]
    assert by_message[falls.data.id] == [
        ("message-sending", "MMS", None),
        ("message-sent", "MMS", None),
        ("message-delivered", "MMS", None),
    ]


async def test_handset_answers_parse_as_sdk_inbound_callbacks(emulator: Emulator):
    content = RbmMessageContentText(
        text="Share where you are?",
        suggestions=[
            reply("Confirm", "Y29uZmlybQ=="),
            MultiChannelAction(RbmActionBase(type=RbmActionTypeEnum.REQUEST_LOCATION, text="Share", postback_data="bG9j")),
        ],
    )
    answer = await emulator.send(MultiChannelMessageRequest(to=HANDSET, channel_list=[rbm(content)]))
    await emulator.advance(2)
    message_id = answer.data.id
    await emulator.control("POST", f"/messages/{message_id}/reply", json={"suggestion": "Confirm"})
    shared = {"suggestion": "Share", "location": {"latitude": "51.5", "longitude": "-0.12"}}
    await emulator.control("POST", f"/messages/{message_id}/reply", json=shared)
    await emulator.control("POST", f"/messages/{message_id}/reply", json={"text": "See you soon"})
    await emulator.advance(1)
    inbound = [e for e in emulator.parsed() if isinstance(e, InboundCallback)]
    assert [e.type.value for e in inbound] == ["suggestion-response", "requested-location-response", "message-received"]
    tapped, located, typed = inbound
    assert tapped.message.suggestion_response.text == "Confirm"
    assert tapped.message.suggestion_response.paired_message_id == message_id
    assert tapped.message.suggestion_response.postback_data in (b"confirm", "Y29uZmlybQ==")
    assert (located.message.location_response.latitude, located.message.location_response.longitude) == ("51.5", "-0.12")
    assert typed.message.text == "See you soon" and typed.message.content.text == "See you soon"
    assert all(e.to == AGENT and e.message.var_from == HANDSET and e.message.channel.value == "RBM" for e in inbound)


async def test_validation_error_is_a_typed_multichannel_error(emulator: Emulator):
    request = MultiChannelMessageRequest(to=HANDSET, channel_list=[sms("x")])
    request.channel_list[0].actual_instance.var_from = "+invalid"
    with pytest.raises(ApiException) as info:
        await emulator.send(request)
    assert info.value.status == 400
    error = info.value.data
    assert isinstance(error, MultiChannelError) and error.data is None
    assert [(e.type, e.source.var_field) for e in error.errors] == [("request-validation", "channelList[0].from")]
