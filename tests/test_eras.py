"""Bandwidth's timeline: the 2026-07-06 and 2027-01-06 delivery changes, by each message's virtual send date."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support import ACCOUNT, AUTH, advance
from support import send as post

from emulator.scenarios.eras import ERAS, describe, era_for, era_on
from emulator.scenarios.format import Application, parse_scenario
from emulator.scenarios.planner import plan
from emulator.state.models import Message, RecipientStatus

HOUR = 3600.0
PICTURE = "https://example.com/cat.png"


def at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def message(t: float, *, media: bool = False, to: tuple[str, ...] = ("+15551230001",)) -> Message:
    return Message(
        id="m1",
        account_id=ACCOUNT,
        application_id="app",
        direction="out",
        from_="+15554443333",
        to=to,
        owner="+15554443333",
        time=t,
        segment_count=1,
        media=(PICTURE,) if media else (),
        recipients={n: RecipientStatus(to=n) for n in to},
    )


async def send(client, body: dict) -> dict:
    resp = await post(client, body)
    assert resp.status == 202, await resp.text()
    return await resp.json()


def types(events) -> list[str]:
    return [e.type for e in events]


# -- unit: which era a date is in ------------------------------------------------------------


@pytest.mark.parametrize(
    "when, era, window, sending",
    [
        ("1970-01-01T00:00:00", "2020-07-31", 2 * HOUR, True),
        ("2024-05-01T12:00:00", "2020-07-31", 2 * HOUR, True),
        ("2026-07-05T23:59:59", "2020-07-31", 2 * HOUR, True),
        ("2026-07-06T00:00:00", "2026-07-06", 73 * HOUR, True),
        ("2027-01-05T23:59:59", "2026-07-06", 73 * HOUR, True),
        ("2027-01-06T00:00:00", "2027-01-06", 73 * HOUR, False),
        ("2031-01-01T00:00:00", "2027-01-06", 73 * HOUR, False),
    ],
)
def test_era_by_date(when, era, window, sending):
    found = era_on(at(when))
    assert (found.name, found.receipt_window, found.message_sending) == (era, window, sending)


def test_a_pinned_era_and_window_override_the_calendar():
    pinned = parse_scenario({"era": "2026-07-06"})
    assert era_for(pinned, at("2030-01-01")).name == "2026-07-06"
    assert era_for(pinned, at("2020-01-01")).message_sending is True
    window = parse_scenario({"deliveryReceiptWindow": "30m"})
    assert era_for(window, at("2026-08-01")).receipt_window == 1800
    assert era_for(window, at("2026-08-01")).name == "2026-07-06"


def test_describe_names_the_next_change_unless_pinned():
    shown = describe(parse_scenario({}), at("2026-11-30"))
    assert shown == {
        "era": "2026-07-06",
        "pinned": False,
        "deliveryReceiptWindow": 73 * HOUR,
        "messageSending": True,
        "next": {"era": "2027-01-06", "at": "2027-01-06T00:00:00Z"},
    }
    assert describe(parse_scenario({}), at("2027-02-01"))["next"] is None
    pinned = describe(parse_scenario({"era": "2020-07-31"}), at("2026-11-30"))
    assert (pinned["era"], pinned["pinned"], pinned["next"]) == ("2020-07-31", True, None)
    assert [e.name for e in ERAS] == ["2020-07-31", "2026-07-06", "2027-01-06"]


# -- unit: the planner in each era ------------------------------------------------------------


def test_mms_loses_message_sending_from_2027_01_06():
    app = Application(id="app")
    scenario = parse_scenario({})
    assert types(plan(message(at("2027-01-05T23:59:59"), media=True), app, scenario)) == ["message-sending", "message-delivered"]
    assert types(plan(message(at("2027-01-06"), media=True), app, scenario)) == ["message-delivered"]
    group = message(at("2027-01-07"), to=("+15551230001", "+15551230002"))
    assert types(plan(group, app, scenario)) == ["message-delivered", "message-delivered"]
    # Also from a rule's own sequence: Bandwidth no longer sends it at all.
    scripted = parse_scenario(
        {"rules": [{"events": [{"event": "message-sending", "after": 1}, {"event": "message-delivered", "after": 5}]}]}
    )
    assert types(plan(message(at("2027-01-07"), media=True), app, scripted)) == ["message-delivered"]
    # Pinned to the era before, it keeps coming.
    pinned = parse_scenario({"era": "2026-07-06"})
    assert types(plan(message(at("2027-01-07"), media=True), app, pinned)) == ["message-sending", "message-delivered"]


@pytest.mark.parametrize(
    "sent, expires_after",
    [("2026-07-05T23:00:00", 2 * HOUR), ("2026-07-06T00:00:00", 73 * HOUR), ("2027-03-01T00:00:00", 73 * HOUR)],
)
def test_a_missing_receipt_fails_9902_when_the_send_dates_window_closes(sent, expires_after):
    scenario = parse_scenario({"rules": [{"noReceipt": True}]})
    [failed] = plan(message(at(sent)), Application(id="app"), scenario)
    assert (failed.type, failed.error_code, failed.after) == ("message-failed", 9902, expires_after)
    assert failed.description == "delivery-receipt-expired"


def test_message_sent_is_per_application_in_every_era():
    scenario = parse_scenario({})
    for day in ("2025-01-01", "2026-08-01", "2027-02-01"):
        assert types(plan(message(at(day)), Application(id="app", message_sent=True), scenario)) == [
            "message-sent",
            "message-delivered",
        ]
        assert types(plan(message(at(day)), Application(id="app"), scenario)) == ["message-delivered"]


# -- HTTP, on the manual clock ----------------------------------------------------------------


async def journal(client, message_id: str) -> list[tuple[str, str]]:
    body = await (await client.get("/_emulator/callbacks", params={"messageId": message_id})).json()
    return [(c["type"], c["state"]) for c in body["callbacks"]]


async def test_a_scenario_starting_2027_01_07_sends_mms_without_message_sending(make_client, receiver):
    client = await make_client({"startTime": "2027-01-07T09:00:00Z"})
    mms = await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "media": [PICTURE]})
    group = await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111", "+15552221112"], "text": "hi"})
    await advance(client, 60)
    assert await journal(client, mms["id"]) == [("message-delivered", "delivered")]
    assert await journal(client, group["id"]) == [("message-delivered", "delivered"), ("message-delivered", "delivered")]
    assert {e["type"] for e in receiver.events} == {"message-delivered"}


async def test_a_never_receipted_sms_fails_9902_at_73_hours(make_client, receiver):
    client = await make_client({"startTime": "2026-08-01T00:00:00Z", "rules": [{"noReceipt": True}]})
    sent = await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"})
    await advance(client, 73 * HOUR - 1)
    assert await journal(client, sent["id"]) == [("message-failed", "pending")]  # planned, not yet due
    assert receiver.events == []
    await advance(client, 1)
    [event] = await receiver.wait_for(1)
    assert (event["type"], event["errorCode"], event["description"]) == ("message-failed", 9902, "delivery-receipt-expired")
    assert event["time"].startswith("2026-08-04T01:00:00")


async def test_before_2026_07_06_the_window_is_2_hours(make_client, receiver):
    client = await make_client({"startTime": "2026-01-01T00:00:00Z", "rules": [{"noReceipt": True}]})
    await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"})
    await advance(client, 2 * HOUR - 1)
    assert receiver.events == []
    await advance(client, 1)
    [event] = await receiver.wait_for(1)
    assert (event["type"], event["errorCode"]) == ("message-failed", 9902)


async def test_each_message_gets_the_era_of_its_own_send_date(make_client, receiver):
    # A message sent an hour before the change keeps the 2 h window; one sent after it gets 73 h.
    client = await make_client({"startTime": "2026-07-05T23:00:00Z", "rules": [{"noReceipt": True}]})
    before = await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "1"})
    await advance(client, HOUR)
    after = await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221112"], "text": "2"})
    await advance(client, HOUR)
    events = await receiver.wait_for(1)
    assert [(e["message"]["id"], e["errorCode"]) for e in events] == [(before["id"], 9902)]
    await advance(client, 71 * HOUR)
    assert len(receiver.events) == 1
    await advance(client, HOUR)
    events = await receiver.wait_for(2)
    assert (events[1]["message"]["id"], events[1]["errorCode"]) == (after["id"], 9902)


async def test_a_scenario_may_set_the_window(make_client, receiver):
    client = await make_client({"startTime": "2026-08-01T00:00:00Z", "deliveryReceiptWindow": "10m", "rules": [{"noReceipt": True}]})
    await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"})
    await advance(client, 600)
    [event] = await receiver.wait_for(1)
    assert event["errorCode"] == 9902


async def test_health_and_clock_show_the_era_in_force(make_client):
    client = await make_client({"startTime": "2027-01-05T23:00:00Z"})
    health = await (await client.get("/_emulator/health")).json()
    assert health["era"]["era"] == "2026-07-06" and health["era"]["messageSending"] is True
    assert health["era"]["next"] == {"era": "2027-01-06", "at": "2027-01-06T00:00:00Z"}
    await advance(client, HOUR)
    clock = await (await client.get("/_emulator/clock")).json()
    assert clock["era"]["era"] == "2027-01-06" and clock["era"]["messageSending"] is False
    pinned = await make_client({"startTime": "2027-01-05T23:00:00Z", "era": "2020-07-31"})
    era = (await (await pinned.get("/_emulator/health")).json())["era"]
    assert (era["era"], era["pinned"], era["deliveryReceiptWindow"], era["next"]) == ("2020-07-31", True, 7200, None)


async def test_a_pinned_era_is_a_validated_choice(make_client):
    client = await make_client()
    resp = await client.put("/_emulator/scenario", json={"era": "2025-01-01"})
    assert resp.status == 400
    assert "era" in await resp.text()
    resp = await client.put("/_emulator/scenario", json={"deliveryReceiptWindow": 0})
    assert resp.status == 400


async def test_list_status_of_an_expired_receipt(make_client):
    client = await make_client({"startTime": "2026-08-01T00:00:00Z", "rules": [{"noReceipt": True}]})
    sent = await send(client, {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"})
    await advance(client, 73 * HOUR)
    resp = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params={"messageId": sent["id"]}, headers=AUTH)
    [row] = (await resp.json())["messages"]
    assert (row["messageStatus"], row["errorCode"]) == ("FAILED", 9902)
