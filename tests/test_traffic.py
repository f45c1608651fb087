"""Scheduled inbound traffic and auto-replies, all on the virtual clock."""

from __future__ import annotations

import gc
import re

from support import advance, pin_era, send

from emulator.delivery.clock import ManualClock
from emulator.service import MessagingService

OURS = "+15554443333"
E164 = re.compile(r"^\+1[2-9]\d{2}[2-9]\d{6}$")


def received(receiver) -> list[dict]:
    return [e for e in receiver.events if e["type"] == "message-received"]


async def test_messages_arrive_at_given_virtual_times(make_client, receiver):
    client = await make_client(
        {"inbound": [{"at": ["10s", "1m"], "from": "+15557770000", "to": OURS, "text": "knock knock", "media": ["https://example.com/a.jpg"]}]}
    )
    await advance(client, 9.9)
    assert received(receiver) == []
    await advance(client, 0.1)
    events = received(receiver)
    assert len(events) == 1
    assert events[0]["to"] == OURS
    assert events[0]["message"]["from"] == "+15557770000"
    assert events[0]["message"]["text"] == "knock knock"
    assert events[0]["message"]["media"] == ["https://example.com/a.jpg"]
    assert events[0]["message"]["direction"] == "in"
    await advance(client, 60)
    assert len(received(receiver)) == 2
    await advance(client, 3600)
    assert len(received(receiver)) == 2


async def test_every_n_seconds_with_count_and_generated_content(make_client, receiver):
    client = await make_client({"seed": 1, "inbound": [{"every": "30s", "count": 3, "to": OURS}]})
    await advance(client, 29)
    assert received(receiver) == []
    await advance(client, 300)
    events = received(receiver)
    assert len(events) == 3
    times = [e["time"] for e in events]
    assert times == sorted(times) and len(set(times)) == 3
    for event in events:
        assert E164.match(event["message"]["from"]), event["message"]["from"]
        assert event["message"]["text"].endswith(".")
    assert len({e["message"]["text"] for e in events}) == 3


async def test_start_offsets_the_first_message(make_client, receiver):
    client = await make_client({"inbound": [{"every": "1h", "start": 0, "count": 2, "from": "+15557770000", "to": OURS, "text": "x"}]})
    await advance(client, 0)
    assert len(received(receiver)) == 1
    await advance(client, 3600)
    assert len(received(receiver)) == 2


async def run_generated(make_client, receiver, seed: int) -> list[tuple[str, str, str]]:
    receiver.requests.clear()
    client = await make_client({"seed": seed, "inbound": [{"every": 10, "count": 4, "to": OURS}]})
    await advance(client, 40)
    return [(e["message"]["id"], e["message"]["from"], e["message"]["text"]) for e in received(receiver)]


async def test_seed_makes_generated_traffic_and_ids_repeatable(make_client, receiver):
    first = await run_generated(make_client, receiver, 42)
    again = await run_generated(make_client, receiver, 42)
    other = await run_generated(make_client, receiver, 43)
    assert len(first) == 4
    # Ids start with the (clock-dependent) epoch milliseconds; the random part repeats.
    assert [(i[13:], f, t) for i, f, t in first] == [(i[13:], f, t) for i, f, t in again]
    assert [(f, t) for _, f, t in first] != [(f, t) for _, f, t in other]


async def test_inbound_group_gives_one_event_per_owned_number(make_client, receiver):
    ours = ["+15554440001", "+15554440002"]
    client = await make_client(
        {
            "applications": [{"id": "app", "inboundCallbackUrl": receiver.url, "numbers": ours}],
            "inbound": [{"at": 1, "from": "+15557770000", "to": [*ours, "+15559990000"], "text": "hi all"}],
        }
    )
    await advance(client, 1)
    events = received(receiver)
    assert sorted(e["to"] for e in events) == ours
    assert len({e["message"]["id"] for e in events}) == 2
    assert all(e["message"]["to"] == [*ours, "+15559990000"] for e in events)
    assert all(e["message"]["applicationId"] == "app" for e in events)


async def test_auto_reply_holds_a_conversation(make_client, receiver):
    client = await make_client(
        {
            "autoReplies": [
                {"match": {"to": "+1555777*", "text": {"regex": "(?i)^hello"}}, "reply": "You said: {text}", "after": "5s"},
                {"match": {"to": "+1555777*"}, "after": "1m"},  # anything else: a random sentence, later
            ]
        }
    )
    resp = await send(client, {"applicationId": "app", "from": OURS, "to": ["+15557770001"], "text": "Hello there", "tag": "t"})
    assert resp.status == 202
    await advance(client, 4.9)
    assert received(receiver) == []
    await advance(client, 0.1)
    (reply,) = received(receiver)
    assert reply["to"] == OURS
    assert reply["message"]["from"] == "+15557770001"
    assert reply["message"]["text"] == "You said: Hello there"
    assert reply["message"]["applicationId"] == "app"
    # The second entry answers what the first does not match; a number matching none stays silent.
    await send(client, {"applicationId": "app", "from": OURS, "to": ["+15557770002"], "text": "ping"})
    await send(client, {"applicationId": "app", "from": OURS, "to": ["+15550001111"], "text": "Hello"})
    await advance(client, 59)
    assert len(received(receiver)) == 1
    await advance(client, 1)
    later = received(receiver)[1]
    assert later["message"]["from"] == "+15557770002" and later["message"]["text"]
    await advance(client, 3600)
    assert len(received(receiver)) == 2
    resp = await client.get("/_emulator/messages", params={"direction": "in"})
    assert len((await resp.json())["messages"]) == 2


async def test_group_send_gets_a_reply_from_each_matching_recipient(make_client, receiver):
    client = await make_client({"autoReplies": [{"match": {"to": "+1555777*"}, "reply": "ok", "after": 1}]})
    await send(client, {"applicationId": "app", "from": OURS, "to": ["+15557770001", "+15557770002", "+15550000000"], "text": "hi"})
    await advance(client, 1)
    assert sorted(e["message"]["from"] for e in received(receiver)) == ["+15557770001", "+15557770002"]


async def test_replacing_the_scenario_replaces_its_traffic(make_client, receiver):
    client = await make_client({"inbound": [{"at": 10, "from": "+15557770000", "to": OURS, "text": "old"}]})
    await advance(client, 5)
    resp = await client.put("/_emulator/scenario", data=f"inbound:\n  - {{at: 10, from: '+15557770000', to: '{OURS}', text: new}}\n")
    assert resp.status == 200, await resp.text()
    await advance(client, 5)
    assert received(receiver) == []  # the old plan is gone
    await advance(client, 5)
    assert [e["message"]["text"] for e in received(receiver)] == ["new"]


async def test_invalid_scenario_keeps_the_running_traffic(make_client, receiver):
    client = await make_client({"inbound": [{"at": 10, "from": "+15557770000", "to": OURS, "text": "kept"}]})
    resp = await client.put("/_emulator/scenario", data="inbound:\n  - {at: 10, to: nobody}\n")
    assert resp.status == 400
    body = await resp.json()
    assert body["details"] == [{"path": "inbound[0].to", "message": "'nobody' is not an E.164 number such as +15554443333"}]
    await advance(client, 10)
    assert [e["message"]["text"] for e in received(receiver)] == ["kept"]


async def test_reset_cancels_pending_replies(make_client, receiver):
    client = await make_client({"autoReplies": [{"reply": "late", "after": "10s"}]})
    await send(client, {"applicationId": "app", "from": OURS, "to": ["+15557770001"], "text": "hi"})
    resp = await client.post("/_emulator/reset")
    assert resp.status == 200
    await advance(client, 60)
    assert received(receiver) == []


def test_generated_numbers_are_valid_us_numbers():
    from emulator.delivery.clock import ManualClock
    from emulator.scenarios.format import Scenario
    from emulator.service import MessagingService

    service = MessagingService(clock=ManualClock(), scenario=Scenario(seed=3))
    numbers = [service.traffic.phone_number() for _ in range(500)]
    assert all(E164.match(n) for n in numbers), [n for n in numbers if not E164.match(n)][:5]
    assert len(set(numbers)) > 490


async def test_a_traffic_job_that_ran_is_freed_without_the_garbage_collector():
    # A job's closure refers to the job: held past its run, the pair waits for a full
    # collection, which a long run with scheduled traffic makes rare (bench/RESULTS.md, 'Retention').
    svc = MessagingService(
        clock=ManualClock(),
        scenario=pin_era({"inbound": [{"every": "1s", "count": 3, "from": "+15557770000", "to": OURS, "text": "x"}]}),
    )
    [job] = svc.traffic._schedule_jobs
    await svc.scheduler.advance(1)
    assert job not in svc.traffic._schedule_jobs and len(svc.traffic._schedule_jobs) == 1
    assert not [r for r in gc.get_referrers(job) if type(r).__name__ == "cell"]
