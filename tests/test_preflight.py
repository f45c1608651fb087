"""What stops an accepted message when it would go out: an expiration that has passed (4360).

Media checks (4410, 4411) are in tests/test_media.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from support import advance, send

SMS = {"applicationId": "app-1", "to": ["+15552221111"], "from": "+15554443333", "text": "soon"}


async def now(client) -> float:
    return (await (await client.get("/_emulator/clock")).json())["epoch"]


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


async def test_expiration_passing_before_sending_fails_4360(client, receiver):
    start = await now(client)
    # The default SMS is delivered 1 s after acceptance; it expires at 0.2 s.
    resp = await send(client, dict(SMS, expiration=rfc3339(start + 0.2), to=["+15552221111", "+15552221112"]))
    assert resp.status == 202
    await advance(client, 10)
    assert sorted((e["type"], e["to"], e["errorCode"]) for e in receiver.events) == [
        ("message-failed", "+15552221111", 4360),
        ("message-failed", "+15552221112", 4360),
    ]
    assert {e["time"][:19] for e in receiver.events} == {rfc3339(start + 0.2)[:19]}
    journal = (await (await client.get("/_emulator/callbacks")).json())["callbacks"]
    assert {c["type"] for c in journal} == {"message-failed"}  # nothing else was planned


async def test_expiration_after_sending_is_delivered(client, receiver):
    await send(client, dict(SMS, expiration=rfc3339(await now(client) + 3600)))
    await advance(client, 10)
    assert [e["type"] for e in receiver.events] == ["message-delivered"]


async def test_expiration_passing_while_waiting_in_the_queue(make_client, receiver):
    # One segment per minute: the second send waits 60 s in the account's queue.
    client = await make_client({"accounts": [{"id": "*", "rateLimit": {"segmentsPerMinute": 1}}]})
    start = await now(client)
    await send(client, SMS)
    resp = await send(client, dict(SMS, expiration=rfc3339(start + 30), to=["+15552221112"]))
    assert resp.status == 202
    await advance(client, 120)
    by_to = {e["to"]: e for e in receiver.events}
    assert by_to["+15552221111"]["type"] == "message-delivered"
    assert by_to["+15552221112"]["type"] == "message-failed" and by_to["+15552221112"]["errorCode"] == 4360
    assert by_to["+15552221112"]["time"][:19] == rfc3339(start + 30)[:19]
