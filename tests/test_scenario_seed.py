"""The seed: ids, generated content and random choices repeat from run to run."""

from __future__ import annotations

from support import advance, send

SCENARIO = {
    "seed": 2024,
    "startTime": "2024-01-01T00:00:00Z",
    "faults": [{"status": 503, "probability": 0.5}],
    "inbound": [{"every": "1m", "count": 3, "to": "+15554443333"}],
}


async def run(make_client, receiver) -> tuple[list, list]:
    receiver.requests.clear()
    client = await make_client(SCENARIO)
    answers = []
    for n in range(10):
        resp = await send(client, {"applicationId": "app", "from": "+15554443333", "to": [f"+1555123000{n}"], "text": "hi"})
        answers.append((resp.status, (await resp.json()).get("id")))
    await advance(client, 180)
    events = sorted((e["time"], e["type"], e["message"]["id"], e["message"]["from"], e["message"]["text"]) for e in receiver.events)
    return answers, events


async def test_same_seed_same_run(make_client, receiver):
    first = await run(make_client, receiver)
    second = await run(make_client, receiver)
    assert first == second
    answers, events = first
    assert {status for status, _ in answers} == {202, 503}
    # With startTime, message ids begin with that time's epoch milliseconds.
    assert all(i.startswith("1704067200000") for status, i in answers if status == 202)
    assert events[0][0].startswith("2024-01-01T00:00")
    assert len([e for e in events if e[1] == "message-received"]) == 3


async def test_start_time_needs_a_zone(make_client):
    import pytest

    from emulator.scenarios.format import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError) as info:
        parse_scenario({"startTime": "2024-01-01T00:00:00"})
    assert info.value.problems == [("startTime", "give a time zone, e.g. 2024-01-01T00:00:00Z")]


async def test_reloading_a_seeded_scenario_never_reuses_an_id(make_client):
    # Reloading restarts the random source; at the same virtual millisecond the same ids
    # would come out again and overwrite what was already accepted.
    client = await make_client({"seed": 9})
    body = {"applicationId": "app", "from": "+15554443333", "to": ["+15551230001"], "text": "hi"}
    first = await (await send(client, body)).json()
    assert (await client.put("/_emulator/scenario", json={"seed": 9})).status == 200
    second = await (await send(client, body)).json()
    assert first["id"] != second["id"]
    listed = await (await client.get("/_emulator/messages")).json()
    assert len(listed["messages"]) == 2
    callbacks = await (await client.get("/_emulator/callbacks")).json()
    assert len({c["id"] for c in callbacks["callbacks"]}) == 2
