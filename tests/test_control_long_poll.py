"""Long-polls of the control API (docs/control-api.md, 'Long-polling: waiting without
sleeping'): a change answers the polls it satisfies and no other; a reset does not answer
early; a poll whose client hangs up stops waiting at once, with the emulator's own server
(real sockets on 127.0.0.1) and, within a second, with plain aiohttp."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from support import ACCOUNT, AUTH, Receiver, advance, send

from emulator.app import create_app
from emulator.config import Settings
from emulator.keys import QUERIES
from emulator.web import server
from emulator.web.server import EmulatorRunner

SMS = {"applicationId": "app-1", "to": ["+15552221111"], "from": "+15554443333", "text": "Hello"}
BOUND = 10.0  # the test fails by this bound, not by hanging


def open_waits(app: web.Application, n: int) -> asyncio.Event:
    """An event set once exactly ``n`` long-polls wait (now or later)."""
    reached = asyncio.Event()

    def counted(open_now: int) -> None:
        if open_now == n:
            reached.set()

    app[QUERIES].waits.observe(counted)
    counted(app[QUERIES].waits.open)
    return reached


async def test_a_change_answers_only_the_polls_it_satisfies(client: Any) -> None:
    app = client.app
    others = [
        asyncio.create_task(client.get("/_emulator/messages", params={"to": f"+1555000{i:04d}", "wait": "30"}))
        for i in range(20)
    ]
    others += [
        asyncio.create_task(client.get("/_emulator/callbacks", params={"messageId": f"other-{i}", "wait": "30"}))
        for i in range(20)
    ]
    mine = asyncio.create_task(client.get("/_emulator/messages", params={"to": "+15559990000", "wait": "30"}))
    group = asyncio.create_task(client.get("/_emulator/messages", params={"to": "+15559990001", "wait": "30"}))
    await asyncio.wait_for(open_waits(app, 42).wait(), BOUND)
    # A group message: each of its recipients' polls is answered.
    resp = await send(client, {**SMS, "to": ["+15559990000", "+15559990001"]})
    assert resp.status == 202
    for poll in (mine, group):
        body = await (await asyncio.wait_for(poll, BOUND)).json()
        assert body["conditionMet"] is True
        assert [m["to"] for m in body["messages"]] == [["+15559990000", "+15559990001"]]
    health = await (await client.get("/_emulator/health")).json()
    assert health["openWaits"] == 40
    assert not any(poll.done() for poll in others)
    for poll in others:
        poll.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    await asyncio.wait_for(open_waits(app, 0).wait(), BOUND)


async def test_callback_polls_count_callbacks_in_the_state_asked(client: Any) -> None:
    message_id = (await (await send(client, SMS)).json())["id"]
    query = {"messageId": message_id, "state": "delivered", "count": "1", "wait": "30"}
    poll = asyncio.create_task(client.get("/_emulator/callbacks", params=query))
    pending = {"messageId": message_id, "state": "pending", "count": "2", "wait": "30"}
    never = asyncio.create_task(client.get("/_emulator/callbacks", params=pending))
    await asyncio.wait_for(open_waits(client.app, 2).wait(), BOUND)
    await advance(client, 60)
    body = await (await asyncio.wait_for(poll, BOUND)).json()
    assert body["conditionMet"] is True
    assert [c["type"] for c in body["callbacks"]] == ["message-delivered"]
    assert not never.done()  # the callback is no longer pending: it does not count
    never.cancel()
    await asyncio.gather(never, return_exceptions=True)


async def test_a_reset_does_not_answer_a_poll_early(client: Any) -> None:
    await send(client, SMS)
    query = {"accountId": ACCOUNT, "count": "2", "wait": "30"}
    poll = asyncio.create_task(client.get("/_emulator/messages", params=query))
    await asyncio.wait_for(open_waits(client.app, 1).wait(), BOUND)
    assert (await client.post("/_emulator/reset", json={"accountId": ACCOUNT})).status == 200
    await send(client, {**SMS, "text": "after the reset"})
    health = await (await client.get("/_emulator/health")).json()
    assert health["openWaits"] == 1 and not poll.done()  # one message since the reset, not two
    await send(client, {**SMS, "text": "and another"})
    body = await (await asyncio.wait_for(poll, BOUND)).json()
    assert [m["text"] for m in body["messages"]] == ["after the reset", "and another"]


# -- clients that hang up ------------------------------------------------------------------------


@pytest.fixture
async def serve(receiver: Receiver) -> AsyncIterator[Callable[[type[web.AppRunner]], Any]]:
    runners: list[web.AppRunner] = []

    async def start(runner_class: type[web.AppRunner]) -> tuple[web.Application, int]:
        app = create_app(Settings(clock="manual", callback_url=receiver.url))
        runner = runner_class(app, access_log=None)
        runners.append(runner)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return app, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    yield start
    for runner in runners:
        await runner.cleanup()


async def hang_up_while_polling(app: web.Application, port: int, polls: int) -> None:
    """Open ``polls`` long-polls on their own connections, then close every connection."""
    connections = []
    for i in range(polls):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        path = f"/_emulator/callbacks?messageId=never-{i}&wait=60" if i % 2 else f"/_emulator/messages?tag=t{i}&wait=60"
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        connections.append(writer)
    await asyncio.wait_for(open_waits(app, polls).wait(), BOUND)
    dropped = open_waits(app, 0)
    for writer in connections:
        writer.close()
    # Well before the polls' 60 s run out.
    await asyncio.wait_for(dropped.wait(), BOUND)
    assert app[QUERIES].waits.watches("messages") == app[QUERIES].waits.watches("callbacks") == 0


async def test_a_poll_whose_client_hangs_up_is_dropped_at_once(serve: Any) -> None:
    app, port = await serve(EmulatorRunner)
    await hang_up_while_polling(app, port, 10)
    # And the server still answers.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH['Authorization']}\r\n"
                 "Connection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), BOUND)
    assert answer.startswith(b"HTTP/1.1 200") and b'"openWaits": 0' in answer
    writer.close()


async def test_with_plain_aiohttp_a_gone_client_is_noticed_too(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # An application served by a runner of the user's own: the client is looked for every
    # GONE_CHECK_EVERY seconds (1 s; shortened here) instead of being told at once.
    monkeypatch.setattr(server, "GONE_CHECK_EVERY", 0.05)
    app, port = await serve(web.AppRunner)
    await hang_up_while_polling(app, port, 4)
