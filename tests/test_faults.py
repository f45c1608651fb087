"""Faults on our own API (429/500/503) and the per-account queue counted in segments."""

from __future__ import annotations

from typing import Any

from support import ACCOUNT, advance, send

from emulator.scenarios.faults import queue_full_description

QUEUE_FULL = (
    "The SMS queue for your account is full and cannot accept more messages right now. Your allowed rate is 60 "
    "messages per minute. The capacity of this queue is 900 messages (15 minutes). Reduce your message sending "
    "rate, or contact support to increase your allowed rate."
)


def sms(to: str = "+15551230001", text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"applicationId": "app", "from": "+15554443333", "to": [to], "text": text, **extra}


async def statuses(client, n: int, body: dict | None = None, account: str = ACCOUNT) -> list[int]:
    out = []
    for _ in range(n):
        resp = await send(client, body or sms(), account)
        out.append(resp.status)
    return out


async def stored(client) -> int:
    resp = await client.get("/_emulator/messages")
    return len((await resp.json())["messages"])


async def test_429_carries_bandwidths_queue_full_body(make_client):
    client = await make_client({"faults": [{"status": 429}]})
    resp = await send(client, sms())
    assert resp.status == 429
    assert resp.headers["Content-Type"].startswith("application/json")
    assert await resp.json() == {"type": "max-message-queue-size-exceeded", "description": QUEUE_FULL}
    assert await stored(client) == 0  # nothing accepted, nothing planned


async def test_500_and_503_bodies_and_description_override(make_client):
    client = await make_client(
        {
            "faults": [
                {"match": {"tag": "a"}, "status": 500},
                {"match": {"tag": "b"}, "status": 503},
                {"match": {"tag": "c"}, "status": 503, "description": "maintenance"},
            ]
        }
    )
    for tag, status, body in [
        ("a", 500, {"type": "internal-server-error", "description": "Something went wrong. Please try again."}),
        ("b", 503, {"type": "service-unavailable", "description": "The service is temporarily unavailable. Please try again later."}),
        ("c", 503, {"type": "service-unavailable", "description": "maintenance"}),
    ]:
        resp = await send(client, sms(tag=tag))
        assert (resp.status, await resp.json()) == (status, body)
    assert (await send(client, sms(tag="d"))).status == 202


async def test_first_n_then_every_kth(make_client):
    client = await make_client({"faults": [{"match": {"to": "+1555000*"}, "status": 503, "first": 2}, {"status": 500, "every": 3}]})
    assert await statuses(client, 4, sms("+15550001111")) == [503, 503, 202, 202]
    # Faults are tried in order and the every-3 one counts only the sends that reach it:
    # the two that got through above were its 1st and 2nd.
    assert await statuses(client, 6) == [500, 202, 202, 500, 202, 202]


async def test_faults_apply_only_to_matching_sends(make_client):
    client = await make_client({"faults": [{"match": {"kind": "group", "accountId": "9900001"}, "status": 500}]})
    group = {"applicationId": "app", "from": "+15554443333", "to": ["+15551230001", "+15551230002"], "text": "hi"}
    assert (await send(client, group, "9900000")).status == 202
    assert (await send(client, sms(), "9900001")).status == 202
    assert (await send(client, group, "9900001")).status == 500


async def test_probability_is_repeatable_with_a_seed(make_client):
    scenario = {"seed": 7, "faults": [{"status": 503, "probability": 0.5}]}
    first = await statuses(await make_client(scenario), 30)
    second = await statuses(await make_client(scenario), 30)
    assert first == second
    assert 5 < first.count(503) < 25  # really random, not all or nothing
    other = await statuses(await make_client({**scenario, "seed": 8}), 30)
    assert other != first


async def test_validation_errors_come_before_faults(make_client):
    client = await make_client({"faults": [{"status": 500, "first": 1}]})
    resp = await send(client, {"applicationId": "app", "from": "+15554443333", "to": ["bad"], "text": "hi"})
    assert resp.status == 400
    assert (await send(client, sms())).status == 500  # the first valid send is the first counted


async def test_rate_limit_counts_segments_and_drains_at_the_allowed_rate(make_client):
    # 60 segments per minute with 5 seconds of queue: 5 segments fit.
    client = await make_client({"accounts": [{"id": ACCOUNT, "rateLimit": {"segmentsPerMinute": 60, "queue": "5s"}}]})
    assert await statuses(client, 5) == [202] * 5
    resp = await send(client, sms())
    assert resp.status == 429
    assert await resp.json() == {
        "type": "max-message-queue-size-exceeded",
        "description": queue_full_description(60, 5, 5 / 60),
    }
    await advance(client, 2)  # two segments drained
    two_segments = sms(text="x" * 200)
    assert (await send(client, two_segments)).status == 202
    assert (await send(client, sms())).status == 429
    # Other accounts have their own queue (or none).
    assert await statuses(client, 3, account="9900001") == [202] * 3


async def test_queued_messages_are_delivered_at_the_allowed_rate(make_client, receiver):
    client = await make_client({"accounts": [{"id": "*", "rateLimit": {"segmentsPerMinute": 6, "queue": "1m"}}]})
    for n in range(3):
        assert (await send(client, sms(f"+1555123000{n}"))).status == 202
    # 6 segments per minute: one every 10 s. Default SMS delivery is 1 s after sending.
    await advance(client, 1)
    assert len(receiver.events) == 1
    await advance(client, 10)
    assert len(receiver.events) == 2
    await advance(client, 10)
    assert [e["to"] for e in receiver.events] == ["+15551230000", "+15551230001", "+15551230002"]


async def test_scenario_replacement_restarts_fault_counters(make_client):
    client = await make_client({"faults": [{"status": 500, "first": 1}]})
    assert await statuses(client, 2) == [500, 202]
    resp = await client.put("/_emulator/scenario", data="faults: [{status: 500, first: 1}]\n")
    assert resp.status == 200
    assert await statuses(client, 2) == [500, 202]
