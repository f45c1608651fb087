"""The multi-channel API over HTTP: validation, envelopes, fallback, scenarios, handset replies.

The official SDK's view of the same endpoint is in test_multichannel_sdk.py.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from support import ACCOUNT, AUTH, Receiver, advance

from emulator.scenarios.format import ScenarioError, parse_scenario

URL = f"/api/v2/users/{ACCOUNT}/messages/multiChannel"
HANDSET = "+15552223333"
AGENT = "BandwidthRBM"
OUR_NUMBER = "+15554443333"
APP = "rbm-app"

REPLY = {"type": "REPLY", "text": "Confirm", "postbackData": "Y29uZmlybQ=="}
RBM_TEXT = {"from": AGENT, "applicationId": APP, "channel": "RBM", "content": {"text": "Ready?", "suggestions": [REPLY]}}
SMS = {"from": OUR_NUMBER, "applicationId": APP, "channel": "SMS", "content": {"text": "Ready? Reply Y"}}
MMS = {
    "from": OUR_NUMBER,
    "applicationId": APP,
    "channel": "MMS",
    "content": {"text": "Ready?", "media": [{"fileUrl": "https://example.com/menu.png"}]},
}


def body(*channels: dict[str, Any], to: str = HANDSET, **extra: Any) -> dict[str, Any]:
    return {"to": to, "channelList": [copy.deepcopy(c) for c in channels or (RBM_TEXT,)], **extra}


async def post(client: TestClient, payload: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post(URL, data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"})
    return resp.status, await resp.json()


async def control(client: TestClient, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    resp = await client.request(method, f"/_emulator{path}", **kwargs)
    return resp.status, await resp.json()


def fields(answer: dict[str, Any]) -> list[str]:
    assert answer["links"] == [] and answer["data"] is None
    return [e["source"].get("field") for e in answer["errors"]]


# -- validation --------------------------------------------------------------------------------


def card(**extra: Any) -> dict[str, Any]:
    return {"title": "Pasta", "media": {"fileUrl": "https://example.com/p.png", "height": "TALL"}, **extra}


def rbm(content: dict[str, Any]) -> dict[str, Any]:
    return {**RBM_TEXT, "content": content}


def action(**fields: Any) -> dict[str, Any]:
    return rbm({"text": "x", "suggestions": [{"text": "Go", "postbackData": "Z28=", **fields}]})


BAD = [
    ({"channelList": [RBM_TEXT]}, "to"),
    (body(to="5552223333"), "to"),
    ({"to": HANDSET}, "channelList"),
    ({"to": HANDSET, "channelList": []}, "channelList"),
    ({"to": HANDSET, "channelList": [SMS] * 5}, "channelList"),
    (body({**SMS, "from": "+invalid"}), "channelList[0].from"),
    (body({**SMS, "applicationId": ""}), "channelList[0].applicationId"),
    (body({**SMS, "applicationId": "a" * 257}), "channelList[0].applicationId"),
    (body({**SMS, "channel": "WHATSAPP"}), "channelList[0].channel"),
    (body({k: v for k, v in SMS.items() if k != "content"}), "channelList[0].content"),
    (body({**SMS, "content": {"text": "x" * 2049}}), "channelList[0].content.text"),
    (body({**MMS, "content": {}}), "channelList[0].content"),
    (body({**MMS, "content": {"media": [{"fileUrl": "ftp://example.com/x"}]}}), "channelList[0].content.media[0].fileUrl"),
    (body(rbm({"text": "x" * 3271})), "channelList[0].content.text"),
    (body(rbm({"text": "x", "media": [{"fileUrl": "https://e.com/a.png"}]})), "channelList[0].content"),
    (body(rbm({"text": "x", "suggestions": [REPLY] * 12})), "channelList[0].content.suggestions"),
    (body(rbm({"media": []})), "channelList[0].content.media"),
    (body(rbm({"orientation": "HORIZONTAL", "cardContent": card()})), "channelList[0].content.thumbnailImageAlignment"),
    (body(rbm({"orientation": "VERTICAL", "cardContent": {}})), "channelList[0].content.cardContent"),
    (body(rbm({"orientation": "VERTICAL", "cardContent": card(title="t" * 201)})), "channelList[0].content.cardContent.title"),
    (
        body(rbm({"orientation": "VERTICAL", "cardContent": card(media={"fileUrl": "https://e.com/a.png"})})),
        "channelList[0].content.cardContent.media.height",
    ),
    (
        body(rbm({"orientation": "VERTICAL", "cardContent": card(suggestions=[REPLY] * 5)})),
        "channelList[0].content.cardContent.suggestions",
    ),
    (body(rbm({"cardWidth": "SMALL", "cardContents": [card()]})), "channelList[0].content.cardContents"),
    (body(rbm({"cardWidth": "SMALL", "cardContents": [card()] * 11})), "channelList[0].content.cardContents"),
    (body(rbm({"cardWidth": "LARGE", "cardContents": [card(), card()]})), "channelList[0].content.cardWidth"),
    (body(action(type="REPLY", text="t" * 26)), "channelList[0].content.suggestions[0].text"),
    (body(action(type="REPLY", postbackData="not base64!")), "channelList[0].content.suggestions[0].postbackData"),
    (body(action(type="REPLY", postbackData="QQ==" * 513)), "channelList[0].content.suggestions[0].postbackData"),
    (body(action(type="JUMP")), "channelList[0].content.suggestions[0].type"),
    (body(action(type="DIAL_PHONE", phoneNumber="555")), "channelList[0].content.suggestions[0].phoneNumber"),
    (body(action(type="SHOW_LOCATION", latitude="91", longitude="0")), "channelList[0].content.suggestions[0].latitude"),
    (body(action(type="SHOW_LOCATION", latitude="0", longitude="-180.5")), "channelList[0].content.suggestions[0].longitude"),
    (body(action(type="SHOW_LOCATION", latitude="NaN", longitude="0")), "channelList[0].content.suggestions[0].latitude"),
    (
        body(action(type="CREATE_CALENDAR_EVENT", title="Dinner", startTime="tomorrow", endTime="2030-01-01T20:00:00Z")),
        "channelList[0].content.suggestions[0].startTime",
    ),
    (
        body(action(type="CREATE_CALENDAR_EVENT", title="Dinner", startTime="2030-01-01T20:00:00", endTime="2030-01-01T21:00:00Z")),
        "channelList[0].content.suggestions[0].startTime",
    ),
    (
        body(action(type="CREATE_CALENDAR_EVENT", startTime="2030-01-01T20:00:00Z", endTime="2030-01-01T21:00:00Z")),
        "channelList[0].content.suggestions[0].title",
    ),
    (body(action(type="OPEN_URL", url="javascript:alert(1)")), "channelList[0].content.suggestions[0].url"),
    (body(action(type="OPEN_URL", url="https://e.com", application="WEBVIEW")), "channelList[0].content.suggestions[0].webviewViewMode"),
    (
        body(action(type="OPEN_URL", url="https://e.com", application="BROWSER", webviewViewMode="FULL")),
        "channelList[0].content.suggestions[0].webviewViewMode",
    ),
    (body(RBM_TEXT, tag="t" * 1025), "tag"),
    (body(RBM_TEXT, priority="urgent"), "priority"),
    (body(RBM_TEXT, expiration="2000-01-01T00:00:00Z"), "expiration"),
    (body(RBM_TEXT, expiration="next week"), "expiration"),
]


@pytest.mark.parametrize(("payload", "field"), BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
async def test_every_rule_answers_400_naming_the_field(client: TestClient, payload: dict[str, Any], field: str):
    status, answer = await post(client, payload)
    assert status == 400, answer
    assert field in fields(answer)
    assert all(e["type"] == "request-validation" and e["description"] for e in answer["errors"])


@pytest.mark.parametrize("payload", [[], "x", None, 3], ids=["array", "string", "null", "number"])
async def test_a_body_that_is_not_an_object_is_a_400(client: TestClient, payload: Any):
    status, answer = await post(client, payload)
    assert status == 400 and answer["errors"][0]["type"] == "request-validation"


async def test_every_error_comes_in_the_multichannel_envelope(client: TestClient):
    checks = [
        (await client.post(URL, json=body()), 401, "unauthorized"),
        (await client.post(URL, data="<x/>", headers={**AUTH, "Content-Type": "application/xml"}), 415, "unsupported-content-type"),
        (await client.post(URL, data="{", headers={**AUTH, "Content-Type": "application/json"}), 400, "request-validation"),
        (await client.put(URL, json=body(), headers=AUTH), 405, "method-not-allowed"),
        (await client.post(URL, json=body(), headers={**AUTH, "Accept": "text/csv"}), 406, "not-acceptable"),
    ]
    for resp, status, kind in checks:
        answer = await resp.json()
        assert resp.status == status, answer
        assert answer["links"] == [] and answer["data"] is None and answer["errors"][0]["type"] == kind
        assert isinstance(answer["errors"][0]["source"], dict)
    assert (await checks[1][0].json())["errors"][0]["source"] == {"header": "Content-Type"}


async def test_a_valid_send_of_every_kind_is_accepted(client: TestClient):
    allowed = [
        rbm({"media": [{"fileUrl": "https://e.com/v.mp4", "thumbnailUrl": "https://e.com/v.png"}], "suggestions": [REPLY]}),
        rbm({"orientation": "HORIZONTAL", "thumbnailImageAlignment": "RIGHT", "cardContent": card(suggestions=[REPLY])}),
        rbm({"cardWidth": "MEDIUM", "cardContents": [card(), {"description": "only words"}]}),
        action(type="DIAL_PHONE", phoneNumber="+15554443333"),
        action(type="SHOW_LOCATION", latitude="-90.000000", longitude="180", label="Pole"),
        action(type="CREATE_CALENDAR_EVENT", title="Dinner", startTime="2030-01-01T20:00:00-05:00", endTime="2030-01-02T01:30:00Z"),
        action(type="OPEN_URL", url="https://e.com/menu", application="WEBVIEW", webviewViewMode="HALF"),
        action(type="REQUEST_LOCATION"),
        MMS,
    ]
    for channel in allowed:
        status, answer = await post(client, body(channel, SMS, tag="", priority="high", expiration="2999-01-01T00:00:00Z"))
        assert status == 202, answer
        assert answer["errors"] == [] and answer["links"] == []
        echoed = answer["data"]["channelList"]
        assert echoed[0]["content"] == channel["content"] and echoed[0]["owner"] == channel["from"]
        assert answer["data"]["expiration"] == "2999-01-01T00:00:00Z" and answer["data"]["priority"] == "high"


# -- fallback and callbacks --------------------------------------------------------------------


def scenario(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {
        "applications": [{"id": APP, "statusCallbackUrl": receiver.url, "inboundCallbackUrl": receiver.url + "/in"}],
        **extra,
    }


async def sent(client: TestClient, *channels: dict[str, Any], to: str = HANDSET, **extra: Any) -> str:
    status, answer = await post(client, body(*channels, to=to, **extra))
    assert status == 202, answer
    return str(answer["data"]["id"])


async def message(client: TestClient, message_id: str) -> dict[str, Any]:
    status, shown = await control(client, "GET", f"/messages/{message_id}")
    assert status == 200
    return dict(shown)


def journey(shown: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(a["channel"], a["outcome"], a.get("errorCode")) for a in shown["multichannel"]["attempts"]]


async def test_rbm_delivered_with_its_channel_and_listed_as_rcs(make_client, receiver: Receiver):
    client = await make_client(scenario(receiver))
    message_id = await sent(client, RBM_TEXT, SMS)
    await advance(client, 5)
    [event] = receiver.events
    assert event["type"] == "message-delivered" and event["description"] == "Message delivered to handset."
    assert event["message"]["channel"] == "RBM" and event["message"]["from"] == AGENT and event["to"] == HANDSET
    shown = await message(client, message_id)
    assert shown["messageType"] == "rcs" and journey(shown) == [("RBM", "delivered", None)]
    resp = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params={"messageType": "rcs"}, headers=AUTH)
    listed = await resp.json()
    assert [(m["messageId"], m["messageType"], m["messageStatus"]) for m in listed["messages"]] == [
        (message_id, "rcs", "DELIVERED")
    ]


@pytest.mark.parametrize(
    ("rcs", "to", "expected"),
    [
        ({}, "+15550201111", [("RBM", "not-capable", None), ("MMS", "delivered", None)]),
        ({"notCapable": ["+1555222*"]}, HANDSET, [("RBM", "not-capable", None), ("MMS", "delivered", None)]),
        ({"capable": False, "numbers": ["+15552223333"]}, HANDSET, [("RBM", "delivered", None)]),
        ({"capable": False}, HANDSET, [("RBM", "not-capable", None), ("MMS", "delivered", None)]),
        ({}, "+15550214720", [("RBM", "failed", 4720), ("MMS", "delivered", None)]),
    ],
    ids=["magic-never-rcs", "not-capable-pattern", "capable-number", "nobody-capable", "magic-rbm-fails"],
)
async def test_rcs_capability_decides_the_fallback(make_client, receiver: Receiver, rcs, to, expected):
    client = await make_client(scenario(receiver, rcs=rcs))
    message_id = await sent(client, RBM_TEXT, MMS, to=to)
    await advance(client, 10)
    shown = await message(client, message_id)
    assert journey(shown) == expected
    channel = expected[-1][0]
    assert [e["message"]["channel"] for e in receiver.events] == [channel] * len(receiver.events)
    assert receiver.events[-1]["type"] == "message-delivered"
    if channel == "MMS":
        assert [e["type"] for e in receiver.events] == ["message-sending", "message-delivered"]
        assert receiver.events[0]["message"]["media"] == ["https://example.com/menu.png"]
        assert shown["messageType"] == "mms" and shown["from"] == OUR_NUMBER


async def test_rbm_without_receipt_expires_then_falls_back(make_client, receiver: Receiver):
    rules = [{"match": {"channel": "RBM"}, "noReceipt": True}]
    client = await make_client(scenario(receiver, rules=rules, rcs={"receiptTimeout": "2m"}))
    message_id = await sent(client, RBM_TEXT, SMS)
    await advance(client, 119)
    assert receiver.events == []
    await advance(client, 2)
    assert [(e["type"], e["message"]["channel"]) for e in receiver.events] == [("message-delivered", "SMS")]
    assert journey(await message(client, message_id)) == [("RBM", "expired", None), ("SMS", "delivered", None)]


async def test_last_channel_failing_is_message_failed_with_its_code(make_client, receiver: Receiver):
    rules = [{"match": {"channel": "SMS"}, "errorCode": 4770}, {"match": {"channel": "RBM"}, "errorCode": 4750}]
    client = await make_client(scenario(receiver, rules=rules))
    await sent(client, RBM_TEXT, SMS)
    await advance(client, 10)
    [failed] = receiver.events
    assert (failed["type"], failed["errorCode"], failed["message"]["channel"]) == ("message-failed", 4770, "SMS")


async def test_only_rbm_to_a_handset_without_rcs_fails_4700(make_client, receiver: Receiver):
    client = await make_client(scenario(receiver))
    await sent(client, RBM_TEXT, to="+15550209999")
    await advance(client, 1)
    [failed] = receiver.events
    assert failed["type"] == "message-failed" and failed["errorCode"] == 4700 and failed["message"]["channel"] == "RBM"


async def test_read_receipts_from_rules_and_the_rcs_default(make_client, receiver: Receiver):
    delivered = [{"event": "message-delivered", "after": 2}]
    rules = [{"match": {"channel": "RBM", "to": "+15551110000"}, "events": delivered, "readAfter": "10s"}]
    client = await make_client(scenario(receiver, rules=rules, rcs={"readAfter": 5}))
    await sent(client, RBM_TEXT, to="+15551110000")
    await sent(client, RBM_TEXT)
    await advance(client, 60)
    reads = sorted((e["message"]["to"][0], e["eventTime"]) for e in receiver.events if e["type"] == "message-read")
    delivered = {e["message"]["to"][0]: e["time"] for e in receiver.events if e["type"] == "message-delivered"}
    assert [to for to, _ in reads] == ["+15551110000", HANDSET]
    assert all(event_time > delivered[to] for to, event_time in reads)


async def test_status_callbacks_are_retried_by_the_engine(make_client, receiver: Receiver):
    client = await make_client(scenario(receiver))
    receiver.fail(2)
    message_id = await sent(client, RBM_TEXT)
    await advance(client, 3600)
    _, journal = await control(client, "GET", "/callbacks", params={"messageId": message_id})
    [callback] = journal["callbacks"]
    assert callback["state"] == "delivered" and callback["channel"] == "RBM"
    assert [a["statusCode"] for a in callback["attempts"]] == [500, 500, 200]


async def test_expired_before_sending_fails_4360(make_client, receiver: Receiver):
    client = await make_client(scenario(receiver, defaults={"sms": [{"event": "message-delivered", "after": 30}]}))
    _, clock = await control(client, "GET", "/clock")

    soon = datetime.fromtimestamp(clock["epoch"] + 10, UTC).isoformat()
    await sent(client, SMS, expiration=soon)
    await advance(client, 60)
    [failed] = receiver.events
    assert failed["errorCode"] == 4360 and failed["message"]["channel"] == "SMS"


async def test_scripted_fault_answers_in_the_multichannel_envelope(make_client, receiver: Receiver):
    client = await make_client(scenario(receiver, faults=[{"match": {"channel": "RBM"}, "status": 429}]))
    status, answer = await post(client, body(RBM_TEXT))
    assert status == 429 and answer["errors"][0]["type"] == "rate-limit-exceeded"
    status, answer = await post(client, body(SMS))
    assert status == 202


# -- the handset's side ------------------------------------------------------------------------


async def test_tap_location_and_text_go_to_the_inbound_webhook(make_client, receiver: Receiver):
    client = await make_client(scenario(receiver))
    content = {"text": "Where?", "suggestions": [REPLY, {"type": "REQUEST_LOCATION", "text": "Share", "postbackData": "bG9j"}]}
    message_id = await sent(client, rbm(content))
    await advance(client, 2)
    for answer in ({"postbackData": "Y29uZmlybQ=="}, {"suggestion": "Share"}, {"location": {"latitude": 1.5, "longitude": 2}}):
        status, created = await control(client, "POST", f"/messages/{message_id}/reply", json=answer)
        assert status == 201, created
        assert created["messages"][0]["channel"] == "RBM" and created["messages"][0]["direction"] == "in"
    await advance(client, 1)
    inbound = [r for r in receiver.requests if r["path"].endswith("/in")]
    events = [r["body"][0] for r in inbound]
    assert [e["type"] for e in events] == ["suggestion-response", "requested-location-response", "requested-location-response"]
    assert events[0]["message"]["suggestionResponse"] == {"text": "Confirm", "postbackData": "Y29uZmlybQ==", "pairedMessageId": message_id}
    assert events[1]["message"]["locationResponse"] == {"latitude": "37.7749", "longitude": "-122.4194"}
    assert events[2]["message"]["locationResponse"] == {"latitude": "1.5", "longitude": "2"}
    assert all(e["to"] == AGENT and e["message"]["owner"] == AGENT for e in events)


async def test_handset_actions_refuse_what_a_handset_cannot_do(make_client, receiver: Receiver):
    client = await make_client(scenario(receiver))
    rbm_id = await sent(client, RBM_TEXT)
    sms_id = await sent(client, RBM_TEXT, SMS, to="+15550201234")
    plain = await client.post(
        f"/api/v2/users/{ACCOUNT}/messages",
        json={"applicationId": APP, "to": [HANDSET], "from": OUR_NUMBER, "text": "plain"},
        headers=AUTH,
    )
    plain_id = (await plain.json())["id"]
    await advance(client, 5)
    undelivered_id = await sent(client, RBM_TEXT)
    cases = [
        (undelivered_id, {"suggestion": "Confirm"}, 409, "has not reached the handset"),
        (rbm_id, {"suggestion": "Cancel"}, 400, "'Confirm'"),
        (rbm_id, {"suggestion": "Confirm", "text": "also"}, 400, "one answer"),
        (rbm_id, {"location": {"latitude": 91, "longitude": 0}}, 400, "invalid"),
        (rbm_id, {}, 400, "say what"),
        (sms_id, {"suggestion": "Confirm"}, 409, "went out as SMS"),
        (plain_id, {"text": "hi"}, 409, "not an outbound multi-channel"),
        ("nope", {"text": "hi"}, 404, "no message"),
    ]
    for message_id, answer, status, words in cases:
        got, error = await control(client, "POST", f"/messages/{message_id}/reply", json=answer)
        assert got == status, error
        assert words in error["description"] + str(error.get("details", ""))
    assert (await control(client, "POST", f"/messages/{rbm_id}/read"))[0] == 201
    got, error = await control(client, "POST", f"/messages/{rbm_id}/read")
    assert got == 409 and "already read" in error["description"]


async def test_scripted_conversation_reads_then_taps(make_client, receiver: Receiver):
    client = await make_client(
        scenario(
            receiver,
            rules=[{"match": {"channel": "RBM"}, "events": [{"event": "message-delivered", "after": 1}], "readAfter": "5s"}],
            autoReplies=[
                {"match": {"channel": "RBM", "text": "Ready"}, "tap": "Confirm", "after": "30s"},
                {"match": {"channel": "SMS"}, "reply": "Y", "after": "10s"},
            ],
        )
    )
    message_id = await sent(client, RBM_TEXT, SMS)
    fallback_id = await sent(client, RBM_TEXT, SMS, to="+15550201234")
    await advance(client, 60)
    types = [(e["type"], e["message"]["id"]) for e in receiver.events]
    tapped = [e for e in receiver.events if e["type"] == "suggestion-response"]
    assert ("message-read", message_id) in types and len(tapped) == 1
    assert tapped[0]["message"]["suggestionResponse"]["pairedMessageId"] == message_id
    texted = [e for e in receiver.events if e["type"] == "message-received"]
    assert [(e["message"]["text"], e["message"]["from"], e["message"].get("channel")) for e in texted] == [
        ("Y", "+15550201234", None)
    ]
    assert fallback_id != message_id


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"rules": [{"match": {"to": "+1"}, "errorCode": 4720, "readAfter": 5}]}, "RBM only"),
        ({"rules": [{"events": [{"event": "message-read"}]}]}, "RBM only"),
        ({"defaults": {"sms": [{"event": "message-read"}]}}, "RBM event"),
        ({"autoReplies": [{"tap": "Yes"}]}, "match.channel: RBM"),
        ({"autoReplies": [{"match": {"channel": "RBM"}, "tap": "Yes", "reply": "no"}]}, "tap goes alone"),
        ({"autoReplies": [{"match": {"channel": "RBM"}, "media": ["https://e.com/a.png"]}]}, "not emulated over RBM"),
        ({"autoReplies": [{"match": {"channel": "RBM"}, "location": {"latitude": 99, "longitude": 0}}]}, "less than or equal to 90"),
        ({"rules": [{"match": {"channel": "WHATSAPP"}, "errorCode": 4720}]}, "'RBM', 'SMS' or 'MMS'"),
        ({"rcs": {"receiptTimeout": 0}}, "greater than 0"),
        ({"rcs": {"capabel": True}}, "Extra inputs"),
    ],
)
def test_scenario_rbm_keys_are_validated(data: dict[str, Any], words: str):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert words in str(info.value)


# -- shared machinery: OAuth2, --db --------------------------------------------------------------


async def test_oauth2_bearer_tokens_work_and_wrong_ones_are_401_in_the_envelope(make_client, receiver: Receiver):
    oauth_only = {"accounts": [{"id": ACCOUNT, "accessTokens": ["ci-token"]}], **scenario(receiver)}
    client = await make_client(oauth_only)
    ok = await client.post(URL, json=body(), headers={"Authorization": "Bearer ci-token"})
    assert ok.status == 202, await ok.text()
    for headers in ({"Authorization": "Bearer wrong"}, AUTH):
        refused = await client.post(URL, json=body(), headers=headers)
        answer = await refused.json()
        assert refused.status == 401 and answer["errors"][0]["type"] == "unauthorized" and answer["data"] is None


async def test_multichannel_messages_and_callbacks_survive_a_restart(tmp_path, receiver: Receiver):
    from aiohttp.test_utils import TestServer

    from emulator.app import create_app
    from emulator.config import Settings

    async def start() -> TestClient:
        app = create_app(Settings(db=str(tmp_path / "state.db"), clock="manual", callback_url=receiver.url))
        client = TestClient(TestServer(app))
        await client.start_server()
        return client

    client = await start()
    rbm_id = await sent(client, RBM_TEXT, SMS)
    fallback_id = await sent(client, RBM_TEXT, SMS, to="+15550201234")
    before = {m: await message(client, m) for m in (rbm_id, fallback_id)}
    await client.close()

    client = await start()
    try:
        assert {m: await message(client, m) for m in (rbm_id, fallback_id)} == before
        await advance(client, 5)
        channels = {e["message"]["id"]: e["message"]["channel"] for e in receiver.events}
        assert channels == {rbm_id: "RBM", fallback_id: "SMS"}
        status, _ = await control(client, "POST", f"/messages/{rbm_id}/reply", json={"suggestion": "Confirm"})
        assert status == 201
        await advance(client, 1)
        assert receiver.events[-1]["message"]["suggestionResponse"]["pairedMessageId"] == rbm_id
    finally:
        await client.close()
