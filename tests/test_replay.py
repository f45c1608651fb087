"""POST /_emulator/callbacks/{id}/replay: deliver a callback again now, journaled as a replay,
the retry schedule untouched (docs/callbacks.md, 'Replay')."""

from __future__ import annotations

from typing import Any

from support import Receiver, advance, send

BODY = {"from": "+19195550100", "to": ["+15551230001"], "text": "hi", "applicationId": "app-1"}


async def journal(client, message_id: str) -> list[dict[str, Any]]:
    return (await (await client.get("/_emulator/callbacks", params={"messageId": message_id})).json())["callbacks"]


async def test_replay_of_a_delivered_callback(make_client, receiver: Receiver):
    client = await make_client()
    message_id = (await (await send(client, BODY)).json())["id"]
    await advance(client, 5)
    (callback,) = await journal(client, message_id)
    assert callback["state"] == "delivered" and len(receiver.requests) == 1

    resp = await client.post(f"/_emulator/callbacks/{callback['id']}/replay")
    assert resp.status == 200, await resp.text()
    replayed = await resp.json()
    assert replayed["state"] == "delivered" and replayed["nextAttemptAt"] is None
    assert [(a["statusCode"], a["number"], a["replay"]) for a in replayed["attempts"]] == [(200, 1, False), (200, 1, True)]
    assert len(receiver.requests) == 2
    assert receiver.requests[1]["body"] == receiver.requests[0]["body"]  # the same event
    assert replayed["attempts"][1]["time"] == (await (await client.get("/_emulator/clock")).json())["now"]


async def test_replay_does_not_disturb_a_pending_schedule(make_client, receiver: Receiver):
    receiver.fail(2, 500)
    client = await make_client()
    message_id = (await (await send(client, BODY)).json())["id"]
    await advance(client, 5)  # attempt 1: 500, next at +60 s
    (before,) = await journal(client, message_id)
    assert before["state"] == "pending"

    replayed = await (await client.post(f"/_emulator/callbacks/{before['id']}/replay")).json()
    assert [(a["statusCode"], a["number"], a["replay"]) for a in replayed["attempts"]] == [(500, 1, False), (500, 1, True)]
    assert replayed["state"] == "pending" and replayed["nextAttemptAt"] == before["nextAttemptAt"]

    await advance(client, 3600)  # the schedule goes on as planned: +60 s answers 200
    (after,) = await journal(client, message_id)
    assert after["state"] == "delivered"
    assert [(a["statusCode"], a["number"], a["replay"]) for a in after["attempts"]] == [
        (500, 1, False), (500, 1, True), (200, 2, False),
    ]
    assert after["attempts"][2]["time"] == before["nextAttemptAt"]


async def test_replay_of_an_exhausted_callback_keeps_it_exhausted(make_client, receiver: Receiver):
    receiver.fail(2, 503)
    client = await make_client({"applications": [{"id": "app-1", "retrySchedule": [0, 60]}]})
    message_id = (await (await send(client, BODY)).json())["id"]
    await advance(client, 3600)
    (callback,) = await journal(client, message_id)
    assert callback["state"] == "exhausted"
    replayed = await (await client.post(f"/_emulator/callbacks/{callback['id']}/replay")).json()
    assert replayed["state"] == "exhausted"
    assert [a["statusCode"] for a in replayed["attempts"]] == [503, 503, 200]
    assert replayed["attempts"][-1]["replay"] is True


async def test_replay_with_challenge_credentials(make_client, receiver: Receiver):
    receiver.challenge = ("hook", "secret")
    client = await make_client({"applications": [{
        "id": "app-1", "callbackAuth": "challenge", "callbackCredentials": {"username": "hook", "password": "secret"},
    }]})
    message_id = (await (await send(client, BODY)).json())["id"]
    await advance(client, 5)
    (callback,) = await journal(client, message_id)
    replayed = await (await client.post(f"/_emulator/callbacks/{callback['id']}/replay")).json()
    assert [(a["statusCode"], a["authorization"], a["replay"]) for a in replayed["attempts"]] == [
        (401, False, False), (200, True, False), (401, False, True), (200, True, True),
    ]


async def test_replay_refusals(make_client, receiver: Receiver):
    client = await make_client()
    resp = await client.post("/_emulator/callbacks/cb-nope-0/replay")
    assert resp.status == 404 and (await resp.json())["type"] == "not-found"

    message_id = (await (await send(client, BODY)).json())["id"]
    (callback,) = await journal(client, message_id)
    resp = await client.post(f"/_emulator/callbacks/{callback['id']}/replay")  # not due yet
    assert resp.status == 409
    assert "not been attempted yet" in (await resp.json())["description"]
    assert len(receiver.requests) == 0

    no_url = await make_client(callback_url=None)
    message_id = (await (await send(no_url, BODY)).json())["id"]
    await advance(no_url, 5)
    (skipped,) = await journal(no_url, message_id)
    resp = await no_url.post(f"/_emulator/callbacks/{skipped['id']}/replay")
    assert resp.status == 409 and "no URL" in (await resp.json())["description"]


async def test_replay_survives_a_restart_with_db(make_client, receiver: Receiver, tmp_path):
    db = str(tmp_path / "state.db")
    client = await make_client(db=db)
    message_id = (await (await send(client, BODY)).json())["id"]
    await advance(client, 5)
    (callback,) = await journal(client, message_id)
    await client.post(f"/_emulator/callbacks/{callback['id']}/replay")
    await client.close()
    again = await make_client(db=db)
    (reloaded,) = await journal(again, message_id)
    assert [a["replay"] for a in reloaded["attempts"]] == [False, True]
