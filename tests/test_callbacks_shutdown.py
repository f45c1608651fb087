"""On SIGTERM the server stops accepting and logs the callbacks it has not delivered."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys

import aiohttp
from support import AUTH, closed_port_url

from emulator.keys import SERVICE


async def test_sigterm_reports_pending_callbacks():
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator", "--port", "0", "--clock", "manual", "--callback-url", closed_port_url(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
        base = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as session:
            body = {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "x"}
            async with session.post(f"{base}/api/v2/users/9900000/messages", json=body, headers=AUTH) as resp:
                assert resp.status == 202
                message_id = (await resp.json())["id"]
            async with session.post(f"{base}/_emulator/clock/advance", json={"seconds": 5}) as resp:
                assert resp.status == 200
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = err.decode()
    assert process.returncode == 0, log
    assert "stopping with 1 callbacks pending" in log
    assert re.search(rf"pending callback \S+: message-delivered for message {message_id} to \+15552221111 .* 1 attempts so far", log), log


async def test_stopping_answers_open_long_polls_at_once(make_client):
    # An open long-poll must not hold up a shutdown (Ctrl-C) for the rest of its wait.
    client = await make_client()
    changes = client.app[SERVICE].changes
    poll = asyncio.create_task(client.get("/_emulator/callbacks", params={"wait": "60", "count": "1"}))
    for _ in range(1000):  # until the handler is waiting (bounded)
        if changes._waiting:
            break
        await asyncio.sleep(0.005)
    assert changes._waiting == 1
    closing = asyncio.create_task(client.server.close())
    resp = await asyncio.wait_for(poll, 10)
    assert resp.status == 200
    assert await resp.json() == {"callbacks": [], "conditionMet": False}
    await asyncio.wait_for(closing, 10)
