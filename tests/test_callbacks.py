"""Callback delivery under the manual clock: every attempt, in the journal and at a real receiver."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from support import HANG, Receiver, advance, closed_port_url, pin_era, send

from emulator.scenarios.format import DEFAULT_RETRY_SCHEDULE

DAY = 24 * 3600
SMS = {"applicationId": "app", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}
MMS = {**SMS, "media": ["https://example.com/a.jpg"]}


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def offsets(callback: dict[str, Any]) -> list[float]:
    """Each attempt's time relative to the callback's planned time, in seconds."""
    planned = epoch(callback["plannedAt"])
    return [round(epoch(a["time"]) - planned, 3) for a in callback["attempts"]]


def app(receiver_url: str, **settings: Any) -> dict[str, Any]:
    return {"applications": [{"id": "app", "statusCallbackUrl": receiver_url, "inboundCallbackUrl": receiver_url, **settings}]}


async def journal(client: TestClient, **filters: str) -> list[dict[str, Any]]:
    resp = await client.get("/_emulator/callbacks", params=filters)
    assert resp.status == 200
    return (await resp.json())["callbacks"]


async def send_ok(client: TestClient, body: dict[str, Any] = SMS) -> str:
    resp = await send(client, body)
    assert resp.status == 202, await resp.text()
    return (await resp.json())["id"]


async def only_callback(client: TestClient, message_id: str) -> dict[str, Any]:
    callbacks = await journal(client, messageId=message_id)
    assert len(callbacks) == 1
    return callbacks[0]


async def test_fails_n_times_then_delivered(make_client, receiver: Receiver):
    receiver.fail(2, 500)
    client = await make_client()
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "delivered"
    assert callback["nextAttemptAt"] is None
    assert offsets(callback) == [0, 60, 300]
    assert [a["statusCode"] for a in callback["attempts"]] == [500, 500, 200]
    assert [a["number"] for a in callback["attempts"]] == [1, 2, 3]
    assert all(a["error"] is None and a["durationMs"] >= 0 for a in callback["attempts"])
    assert [r["status"] for r in receiver.requests] == [500, 500, 200]
    assert all(r["body"][0]["message"]["id"] == message_id for r in receiver.requests)


@pytest.mark.parametrize("status", [500, 503, 404, 301])
async def test_always_failing_answer_is_retried_until_exhausted(make_client, receiver: Receiver, status: int):
    receiver.fail(100, status)
    client = await make_client()
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "exhausted"
    assert callback["nextAttemptAt"] is None
    assert offsets(callback) == list(DEFAULT_RETRY_SCHEDULE)
    assert [a["statusCode"] for a in callback["attempts"]] == [status] * len(DEFAULT_RETRY_SCHEDULE)
    assert len(receiver.requests) == len(DEFAULT_RETRY_SCHEDULE)
    # A 3xx is not followed: nothing arrived at the Location.
    assert {r["path"] for r in receiver.requests} == {"/callbacks"}


async def test_pending_state_and_next_attempt_between_retries(make_client, receiver: Receiver):
    receiver.fail(100, 503)
    client = await make_client()
    message_id = await send_ok(client)
    await advance(client, 1)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "pending"
    assert len(callback["attempts"]) == 1
    assert round(epoch(callback["nextAttemptAt"]) - epoch(callback["plannedAt"]), 3) == 60
    await advance(client, 59.999)
    assert len((await only_callback(client, message_id))["attempts"]) == 1
    await advance(client, 0.001)
    callback = await only_callback(client, message_id)
    assert offsets(callback) == [0, 60]
    assert round(epoch(callback["nextAttemptAt"]) - epoch(callback["plannedAt"]), 3) == 300


async def test_exhausted_after_the_last_scheduled_attempt(make_client, receiver: Receiver):
    receiver.fail(100, 500)
    client = await make_client(app(receiver.url, retrySchedule=["0s", "1m", "1h"]))
    message_id = await send_ok(client)
    await advance(client, 1 + 3599)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "pending" and offsets(callback) == [0, 60]
    await advance(client, 1)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "exhausted" and offsets(callback) == [0, 60, 3600]
    await advance(client, 2 * DAY)
    assert len(receiver.requests) == 3


async def test_retry_window_cuts_the_schedule(make_client, receiver: Receiver):
    receiver.fail(100, 500)
    client = await make_client(app(receiver.url, retryWindow="1h"))
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "exhausted"
    assert offsets(callback) == [0, 60, 300, 900, 3600]


async def test_connection_refused(make_client):
    client = await make_client(callback_url=closed_port_url())
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "exhausted"
    assert offsets(callback) == list(DEFAULT_RETRY_SCHEDULE)
    assert {(a["statusCode"], a["error"]) for a in callback["attempts"]} == {(None, "connection refused")}


async def test_timeout(make_client, receiver: Receiver):
    # The one test that waits on the wall clock: two timeouts of 0.2 s, then an answer.
    receiver.fail(2, HANG)
    client = await make_client(app(receiver.url, callbackTimeout="200ms", retrySchedule=[0, 60, 120]))
    message_id = await send_ok(client)
    await advance(client, 90)  # the attempts at 0 and 60 s: both hang, both time out
    assert len((await only_callback(client, message_id))["attempts"]) == 2
    # The answered one gets a limit a busy machine cannot reach: 0.2 s is for hangs only.
    resp = await client.patch("/_emulator/scenario", json={"applications": [{"id": "app", "callbackTimeout": "30s"}]})
    assert resp.status == 200, await resp.text()
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "delivered"
    assert offsets(callback) == [0, 60, 120]
    attempts = callback["attempts"]
    assert [(a["statusCode"], a["error"]) for a in attempts] == [(None, "timeout"), (None, "timeout"), (200, None)]
    assert all(a["durationMs"] >= 200 for a in attempts[:2])
    assert len(receiver.requests) == 3


# -- 3xx ---------------------------------------------------------------------------------


async def test_redirect_counts_as_failure_by_default(make_client, receiver: Receiver):
    receiver.fail(1, 301)
    client = await make_client()
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert [a["statusCode"] for a in callback["attempts"]] == [301, 200]
    assert callback["state"] == "delivered"
    assert offsets(callback) == [0, 60]


async def test_redirect_counts_as_delivered_when_configured(make_client, receiver: Receiver):
    receiver.fail(1, 302)
    client = await make_client(app(receiver.url, redirects="success"))
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert [a["statusCode"] for a in callback["attempts"]] == [302]
    assert callback["state"] == "delivered"
    assert len(receiver.requests) == 1  # the Location was not followed


# -- credentials -------------------------------------------------------------------------

BASIC_U_P = "Basic dTpw"  # u:p


async def test_basic_credentials_on_every_attempt(make_client, receiver: Receiver):
    receiver.fail(1, 500)
    client = await make_client(app(receiver.url, callbackCredentials={"username": "u", "password": "p"}))
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert [a["authorization"] for a in callback["attempts"]] == [True, True]
    assert [r["headers"].get("Authorization") for r in receiver.requests] == [BASIC_U_P, BASIC_U_P]


async def test_no_credentials_no_authorization_header(make_client, receiver: Receiver):
    client = await make_client()
    message_id = await send_ok(client)
    await advance(client, 10)
    callback = await only_callback(client, message_id)
    assert callback["attempts"][0]["authorization"] is False
    assert "Authorization" not in receiver.requests[0]["headers"]


async def test_challenge_flow(make_client, receiver: Receiver):
    receiver.challenge = ("u", "p")
    client = await make_client(
        app(receiver.url, callbackCredentials={"username": "u", "password": "p"}, callbackAuth="challenge")
    )
    message_id = await send_ok(client)
    await advance(client, 10)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "delivered"
    attempts = callback["attempts"]
    assert [(a["statusCode"], a["authorization"], a["number"]) for a in attempts] == [(401, False, 1), (200, True, 1)]
    assert offsets(callback) == [0, 0]
    assert [r["headers"].get("Authorization") for r in receiver.requests] == [None, BASIC_U_P]
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]


async def test_challenge_retried_flow_repeats_on_each_attempt(make_client, receiver: Receiver):
    receiver.challenge = ("u", "p")
    receiver.fail(1, 503)  # the first authenticated POST fails
    client = await make_client(
        app(receiver.url, callbackCredentials={"username": "u", "password": "p"}, callbackAuth="challenge")
    )
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "delivered"
    assert [(a["statusCode"], a["authorization"], a["number"]) for a in callback["attempts"]] == [
        (401, False, 1), (503, True, 1), (401, False, 2), (200, True, 2)
    ]
    assert offsets(callback) == [0, 0, 60, 60]


async def test_challenge_without_www_authenticate_is_a_failed_attempt(make_client, receiver: Receiver):
    receiver.challenge = ("u", "p")
    receiver.challenge_header = False
    client = await make_client(
        app(receiver.url, callbackCredentials={"username": "u", "password": "p"}, callbackAuth="challenge",
            retrySchedule=[0, 60])
    )
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "exhausted"
    assert [(a["statusCode"], a["authorization"]) for a in callback["attempts"]] == [(401, False), (401, False)]
    assert all("Authorization" not in r["headers"] for r in receiver.requests)


async def test_challenge_mode_when_the_webhook_does_not_challenge(make_client, receiver: Receiver):
    client = await make_client(
        app(receiver.url, callbackCredentials={"username": "u", "password": "p"}, callbackAuth="challenge")
    )
    message_id = await send_ok(client)
    await advance(client, 10)
    callback = await only_callback(client, message_id)
    assert [(a["statusCode"], a["authorization"]) for a in callback["attempts"]] == [(200, False)]


async def test_inbound_callback_credentials(make_client, receiver: Receiver):
    client = await make_client(
        {"applications": [{
            "id": "app", "inboundCallbackUrl": receiver.url, "numbers": ["+15554443333"],
            "callbackCredentials": {"username": "u", "password": "p"},
            "inboundCallbackCredentials": {"username": "in", "password": "secret"},
        }]}
    )
    resp = await client.post("/_emulator/inbound", json={"from": "+15552221111", "to": "+15554443333", "text": "yo"})
    assert resp.status == 201
    await advance(client, 1)
    assert receiver.requests[0]["headers"]["Authorization"] == "Basic aW46c2VjcmV0"  # in:secret
    assert receiver.events[0]["type"] == "message-received"


# -- ordering and duplicates ------------------------------------------------------------


async def test_independent_ordering_lets_delivered_overtake_a_retried_sending(make_client, receiver: Receiver):
    receiver.fail(1, 500)  # the first message-sending attempt
    client = await make_client()
    await send_ok(client, MMS)
    await advance(client, 25 * 3600)
    assert [e["type"] for e in receiver.events] == ["message-sending", "message-delivered", "message-sending"]


async def test_hold_keeps_later_events_until_earlier_ones_are_delivered(make_client, receiver: Receiver):
    receiver.fail(2, 500)  # message-sending fails at 0.5 s and 60.5 s, gets through at 300.5 s
    client = await make_client(app(receiver.url, ordering="hold"))
    message_id = await send_ok(client, MMS)
    await advance(client, 10)
    sending, delivered = await journal(client, messageId=message_id)
    assert (sending["type"], delivered["type"]) == ("message-sending", "message-delivered")
    assert delivered["state"] == "pending" and delivered["attempts"] == []
    assert delivered["heldBy"] == sending["id"] and delivered["nextAttemptAt"] is None
    # The event has happened: the message's status moved on, only the callback waits.
    message = await (await client.get(f"/_emulator/messages/{message_id}")).json()
    assert message["recipients"][0]["status"] == "DELIVERED"

    await advance(client, 25 * 3600)
    sending, delivered = await journal(client, messageId=message_id)
    assert [e["type"] for e in receiver.events] == ["message-sending"] * 3 + ["message-delivered"]
    assert sending["state"] == delivered["state"] == "delivered"
    assert delivered["heldBy"] is None
    # Released when message-sending got through (0.5 s + 300 s); its event time stays the planned one.
    assert epoch(delivered["attempts"][0]["time"]) == pytest.approx(epoch(sending["attempts"][-1]["time"]), abs=0.001)
    assert round(epoch(delivered["attempts"][0]["time"]) - epoch(sending["plannedAt"]), 3) == 300
    assert receiver.events[-1]["time"] == delivered["event"]["time"] == delivered["plannedAt"]


async def test_hold_releases_after_an_earlier_event_is_exhausted(make_client, receiver: Receiver):
    receiver.fail(2, 500)
    client = await make_client(app(receiver.url, ordering="hold", retrySchedule=[0, 60]))
    message_id = await send_ok(client, MMS)
    await advance(client, 25 * 3600)
    sending, delivered = await journal(client, messageId=message_id)
    assert sending["state"] == "exhausted"
    assert delivered["state"] == "delivered"
    assert round(epoch(delivered["attempts"][0]["time"]) - epoch(sending["plannedAt"]), 3) == 60
    # Its own schedule starts at its release: nothing else was needed.
    assert [e["type"] for e in receiver.events] == ["message-sending", "message-sending", "message-delivered"]


async def test_hold_is_per_recipient(make_client, receiver: Receiver):
    receiver.fail(1, 500)  # the first recipient's message-sending
    client = await make_client(app(receiver.url, ordering="hold"))
    group = {**SMS, "to": ["+15552221111", "+15552222222"]}
    message_id = await send_ok(client, group)
    await advance(client, 10)
    callbacks = await journal(client, messageId=message_id)
    held = [c for c in callbacks if c["heldBy"]]
    assert [(c["type"], c["recipient"]) for c in held] == [("message-delivered", "+15552221111")]
    second = [c for c in callbacks if c["recipient"] == "+15552222222"]
    assert {c["state"] for c in second} == {"delivered"}


async def test_duplicates(make_client, receiver: Receiver):
    client = await make_client(app(receiver.url, duplicates=2))
    message_id = await send_ok(client)
    await advance(client, 10)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "delivered"
    assert [(a["statusCode"], a["number"], a["duplicate"]) for a in callback["attempts"]] == [
        (200, 1, False), (200, 1, True), (200, 1, True)
    ]
    assert offsets(callback) == [0, 0, 0]
    assert len(receiver.requests) == 3
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"] == receiver.requests[2]["body"]


async def test_duplicates_follow_the_successful_attempt_and_are_not_retried(make_client, receiver: Receiver):
    receiver.statuses = [500, 200, 500]  # the duplicate fails: journaled, not retried
    client = await make_client(app(receiver.url, duplicates=1))
    message_id = await send_ok(client)
    await advance(client, 25 * 3600)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "delivered"
    assert [(a["statusCode"], a["number"], a["duplicate"]) for a in callback["attempts"]] == [
        (500, 1, False), (200, 2, False), (500, 2, True)
    ]
    assert offsets(callback) == [0, 60, 60]
    assert len(receiver.requests) == 3


# -- the journal and the clock ----------------------------------------------------------


async def test_25_hour_advance_fires_everything_in_order_at_virtual_due_times(make_client, receiver: Receiver):
    receiver.fail(1000, 500)
    client = await make_client()
    first = await send_ok(client)
    await advance(client, 30)
    second = await send_ok(client, {**SMS, "to": ["+15552223333"]})
    await advance(client, 25 * 3600)
    callbacks = {c["messageId"]: c for c in await journal(client)}
    assert offsets(callbacks[first]) == offsets(callbacks[second]) == list(DEFAULT_RETRY_SCHEDULE)
    assert epoch(callbacks[second]["plannedAt"]) - epoch(callbacks[first]["plannedAt"]) == pytest.approx(30, abs=0.001)
    # The receiver saw them in virtual-time order.
    times = {cid: [epoch(a["time"]) for a in c["attempts"]] for cid, c in callbacks.items()}
    arrivals = []
    seen: dict[str, int] = {first: 0, second: 0}
    for request in receiver.requests:
        mid = request["body"][0]["message"]["id"]
        arrivals.append(times[mid][seen[mid]])
        seen[mid] += 1
    assert arrivals == sorted(arrivals)
    assert len(arrivals) == 2 * len(DEFAULT_RETRY_SCHEDULE)


async def test_journal_filters(make_client, receiver: Receiver):
    client = await make_client({"applications": [
        {"id": "app", "statusCallbackUrl": receiver.url},
        {"id": "down", "statusCallbackUrl": closed_port_url(), "retrySchedule": [0]},
    ]})
    ok = await send_ok(client)
    down = await send_ok(client, {**SMS, "applicationId": "down"})
    await advance(client, 10)
    assert [c["messageId"] for c in await journal(client, state="exhausted")] == [down]
    assert [c["messageId"] for c in await journal(client, state="delivered")] == [ok]
    assert [c["messageId"] for c in await journal(client, type="message-delivered", messageId=ok)] == [ok]
    message = await (await client.get(f"/_emulator/messages/{down}")).json()
    assert message["callbacks"][0]["attempts"][0]["error"] == "connection refused"


async def test_reset_cancels_pending_callbacks(make_client, receiver: Receiver):
    receiver.fail(100, 500)
    client = await make_client()
    await send_ok(client)
    await advance(client, 1)
    health = await (await client.get("/_emulator/health")).json()
    assert health["pendingCallbacks"] == 1
    assert (await client.post("/_emulator/reset")).status == 200
    health = await (await client.get("/_emulator/health")).json()
    assert health["pendingCallbacks"] == 0
    clock = await (await client.get("/_emulator/clock")).json()
    assert clock["pending"] == 0 and clock["nextDue"] is None
    await advance(client, 25 * 3600)
    assert len(receiver.requests) == 1


async def test_no_callback_url_is_skipped(make_client):
    client = await make_client(callback_url=None)
    message_id = await send_ok(client)
    await advance(client, 10)
    callback = await only_callback(client, message_id)
    assert callback["state"] == "skipped" and callback["attempts"] == []


async def test_realtime_clock_with_time_scale_runs_the_schedule(make_client, receiver: Receiver):
    # 36,000 virtual seconds per real second: the schedule's two minutes pass in about 3 ms.
    receiver.fail(2, 500)
    client = await make_client(app(receiver.url, retrySchedule=[0, 60, 120]), clock="realtime", time_scale=36000)
    await send_ok(client)
    await receiver.wait_for(3, timeout=10)
    assert [r["status"] for r in receiver.requests] == [500, 500, 200]


async def test_held_and_retrying_callbacks_resume_after_a_restart_with_db(tmp_path, receiver: Receiver):
    from aiohttp.test_utils import TestServer

    from emulator.app import create_app
    from emulator.config import Settings

    scenario = app(receiver.url, ordering="hold")

    async def start() -> TestClient:
        settings = Settings(db=str(tmp_path / "state.db"), clock="manual")
        client = TestClient(TestServer(create_app(settings, scenario=pin_era(scenario))))
        await client.start_server()
        return client

    receiver.fail(1, 500)
    client = await start()
    message_id = await send_ok(client, MMS)
    await advance(client, 10)  # message-sending failed once; message-delivered is held
    sending, delivered = await journal(client, messageId=message_id)
    assert delivered["heldBy"] == sending["id"]
    await client.close()

    client = await start()
    try:
        await advance(client, 25 * 3600)
        sending, delivered = await journal(client, messageId=message_id)
        assert sending["state"] == delivered["state"] == "delivered"
        assert offsets(sending) == [0, 60]
        assert delivered["heldBy"] is None
        assert [e["type"] for e in receiver.events] == ["message-sending", "message-sending", "message-delivered"]
    finally:
        await client.close()
