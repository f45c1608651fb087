"""On SIGTERM the server stops accepting and logs the callbacks it has not delivered."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3

import aiohttp
from support import AUTH, HANG, closed_port_url

# Far longer than a shutdown takes on a busy machine; a shutdown that hangs never ends.
EXIT_BOUND = 60.0


async def test_sigterm_reports_pending_callbacks(start_cli):
    emulator = await asyncio.to_thread(start_cli, "--clock", "manual", "--callback-url", closed_port_url())
    base = emulator.base_url
    async with aiohttp.ClientSession() as session:
        body = {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "x"}
        async with session.post(f"{base}/api/v2/users/9900000/messages", json=body, headers=AUTH) as resp:
            assert resp.status == 202
            message_id = (await resp.json())["id"]
        async with session.post(f"{base}/_emulator/clock/advance", json={"seconds": 5}) as resp:
            assert resp.status == 200
    returncode = await asyncio.to_thread(emulator.stop, signal.SIGTERM)
    log = emulator.stderr()
    assert returncode == 0, log
    assert "stopping with 1 callbacks pending" in log
    assert re.search(rf"pending callback \S+: message-delivered for message {message_id} to \+15552221111 .* 1 attempts so far", log), log


async def test_stopping_answers_open_long_polls_at_once(make_client, long_poll_waiting):
    # An open long-poll must not hold up a shutdown (Ctrl-C) for the rest of its wait.
    client = await make_client()
    waiting = long_poll_waiting(client)
    poll = asyncio.create_task(client.get("/_emulator/callbacks", params={"wait": "60", "count": "1"}))
    await asyncio.wait_for(waiting.wait(), 10)
    closing = asyncio.create_task(client.server.close())
    resp = await asyncio.wait_for(poll, 10)
    assert resp.status == 200
    assert await resp.json() == {"callbacks": [], "conditionMet": False}
    await asyncio.wait_for(closing, 10)


async def test_sigterm_under_callback_load_with_a_scaled_clock_stops_at_once(tmp_path, receiver, start_cli):
    # A webhook failing every attempt, a clock running 3600 times as fast: retries fall due all
    # the time. SIGTERM must stop dispatching at once and exit promptly, keeping what is pending.
    from emulator.delivery.dispatcher import PER_RECEIVER

    receiver.fail(100_000, 500)
    db = tmp_path / "state.db"
    emulator = await asyncio.to_thread(
        start_cli, "--time-scale", "3600", "--db", str(db), "--callback-url", receiver.url
    )
    sends = 300
    async with aiohttp.ClientSession() as session:

        async def send(i: int) -> None:
            body = {"applicationId": "a", "from": "+15554443333", "to": [f"+1555{i:07d}"], "text": "x"}
            async with session.post(f"{emulator.base_url}/api/v2/users/9900000/messages", json=body, headers=AUTH) as resp:
                assert resp.status == 202

        await asyncio.gather(*(send(i) for i in range(sends)))
    await receiver.wait_for(2 * sends, timeout=EXIT_BOUND)  # retries are under way
    # The signal is sent and the POSTs counted with the receiver held (this loop runs neither
    # in between): POSTs keep going out until the signal, and none may go out once it is in.
    # When it is in, this test cannot see: a busy machine may run the emulator on for a while
    # first. So from the signal on the webhook answers nothing: no POST ends and frees its
    # slot for another, and at most one receiver's slots' worth can still arrive.
    receiver.statuses = [HANG] * 100_000
    emulator.process.send_signal(signal.SIGTERM)
    at_sigterm = len(receiver.requests)
    # It exits by itself: the bound only turns a hang (the bug: the dispatch loop went on
    # forever) into a failure, not a measure of how fast a loaded machine shuts down.
    returncode = await asyncio.to_thread(emulator.wait, EXIT_BOUND)
    assert returncode == 0, emulator.stderr()[-2000:]
    # Only the POSTs already in flight at SIGTERM may still arrive; no new one starts.
    assert len(receiver.requests) - at_sigterm <= PER_RECEIVER
    # Every callback is still pending (the webhook never accepted one), kept in the file.
    with sqlite3.connect(db) as conn:
        states = conn.execute("SELECT json_extract(data, '$.state'), count(*) FROM callbacks GROUP BY 1").fetchall()
        journaled = conn.execute("SELECT sum(json_array_length(data, '$.attempts')) FROM callbacks").fetchone()[0]
    assert states == [("pending", sends)]
    # Each POST the webhook got is journaled, but for those cut short (at most the ones in
    # flight); and nothing is journaled that the webhook did not get (an attempt cancelled by
    # the shutdown is not a failed attempt).
    assert 0 <= len(receiver.requests) - journaled <= PER_RECEIVER
