"""Load without loss, and webhook faults: every callback ends delivered or exhausted."""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from support import ACCOUNT, ANY_TIME, AUTH, Receiver, advance, send

from emulator.scenarios.format import DEFAULT_RETRY_SCHEDULE

TERMINAL = {"message-delivered", "message-failed"}


async def journal(client: TestClient, **query: str) -> list[dict[str, Any]]:
    resp = await client.get("/_emulator/callbacks", params=query)
    assert resp.status == 200
    return (await resp.json())["callbacks"]


# -- load without loss ------------------------------------------------------------------------


def _body(i: int) -> tuple[dict[str, Any], dict[str, str]]:
    """A mix of SMS, group and failing sends; returns the body and each recipient's terminal event."""
    n = f"{i:06d}"
    if i % 10 == 0:  # group of three, one of them a magic failure number
        to = [f"+1777{n}1", f"+1777{n}2", "+15550104720"]
        expected = {to[0]: "message-delivered", to[1]: "message-delivered", to[2]: "message-failed"}
    elif i % 10 == 1:
        to = [f"+1777{n}1"]
        expected = {to[0]: "message-delivered"}
        return {"applicationId": "app-load", "from": "+15554443333", "to": to, "media": ["https://example.com/a.png"]}, expected
    else:
        to = [f"+1777{n}1"]
        expected = {to[0]: "message-delivered"}
    return {"applicationId": "app-load", "from": "+15554443333", "to": to, "text": f"load {i}"}, expected


@pytest.mark.soak
async def test_5000_concurrent_sends_each_recipient_gets_exactly_one_terminal_callback(
    make_client: Any, receiver: Receiver
) -> None:
    client = await make_client()
    # `make soak` runs this at 50,000.
    count = int(os.environ.get("BWE_SOAK_MESSAGES", "5000"))
    bodies = [_body(i) for i in range(count)]
    limit = asyncio.Semaphore(200)

    async def one(body: dict[str, Any]) -> str:
        async with limit:
            resp = await send(client, body)
            assert resp.status == 202, await resp.text()
            return (await resp.json())["id"]

    ids = await asyncio.gather(*(one(body) for body, _ in bodies))
    assert len(set(ids)) == count
    expected = {(mid, to): event for mid, (_, terminal) in zip(ids, bodies, strict=False) for to, event in terminal.items()}

    await advance(client, 10)
    planned = await journal(client, accountId=ACCOUNT)
    await receiver.wait_for(len(planned), timeout=60 * max(1, count // 5000))
    assert len(receiver.requests) == len(planned)  # nothing duplicated on the wire either

    terminal_seen = collections.Counter()
    for event in receiver.events:
        if event["type"] in TERMINAL:
            terminal_seen[(event["message"]["id"], event["to"], event["type"])] += 1
        if len(event["message"]["to"]) > 1:
            # Correct group mode: one status callback per recipient, message.to lists everyone.
            assert event["to"] in event["message"]["to"]
    assert terminal_seen == collections.Counter({(mid, to, ev): 1 for (mid, to), ev in expected.items()})

    # The journal agrees with what the receiver saw: every callback delivered on its first attempt.
    assert {c["state"] for c in planned} == {"delivered"}
    assert all(len(c["attempts"]) == 1 and c["attempts"][0]["statusCode"] == 200 for c in planned)
    journal_events = sorted((c["messageId"], c["recipient"], c["type"]) for c in planned)
    received = sorted((e["message"]["id"], e["to"], e["type"]) for e in receiver.events)
    assert journal_events == received


# -- faults ----------------------------------------------------------------------------------


class FaultyWebhook:
    """A webhook on 127.0.0.1 that misbehaves in a chosen way, then (optionally) recovers.

    Works at the TCP level so it can also reset connections and answer garbage, which no
    well-behaved HTTP server would do.
    """

    def __init__(self, fault: str, failures: int) -> None:
        self.fault = fault
        self.failures = failures  # how many attempts misbehave before answering 200
        self.attempts = 0
        self.delivered: list[bytes] = []
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callbacks"

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return await reader.readexactly(length)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                body = await self._read_request(reader)
                self.attempts += 1
                self.arrived.set()
                if self.attempts <= self.failures:
                    if self.fault == "reset":
                        writer.transport.abort()  # RST, no answer
                        return
                    if self.fault == "garbage":
                        writer.write(b"\x00\xffthis is not HTTP at all\r\n\r\n")
                        await writer.drain()
                        writer.close()
                        return
                    if self.fault == "slow":
                        # Answer only after the emulator has given up (its timeout is short).
                        await self.release.wait()
                        writer.close()
                        return
                    if self.fault == "error":
                        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                        await writer.drain()
                        continue
                self.delivered.append(body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def webhooks() -> AsyncIterator[Callable[[str, int], Awaitable[FaultyWebhook]]]:
    started: list[FaultyWebhook] = []

    async def make(fault: str, failures: int) -> FaultyWebhook:
        hook = FaultyWebhook(fault, failures)
        await hook.start()
        started.append(hook)
        return hook

    yield make
    for hook in started:
        hook.release.set()
        await hook.stop()


# An attempt's time limit that only a webhook holding its answer reaches: one that answers does
# so well within it however busy the machine is (a short limit failed a 200 as a timeout there).
GENEROUS = 30
# The limit while a "slow" webhook holds its answers: the attempt ends only when it is reached.
SHORT = 0.3


def _scenario(url: str, timeout: float = GENEROUS) -> dict[str, Any]:
    return {"applications": [{"id": "app-1", "statusCallbackUrl": url, "callbackTimeout": timeout}]}


async def _set_timeout(client: TestClient, timeout: float) -> None:
    resp = await client.patch("/_emulator/scenario", json={"applications": [{"id": "app-1", "callbackTimeout": timeout}]})
    assert resp.status == 200, await resp.text()


SMS = {"applicationId": "app-1", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}


def _offsets(callback: dict[str, Any]) -> list[float]:
    from datetime import datetime

    def t(s: str) -> float:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

    first = t(callback["attempts"][0]["time"])
    return [round(t(a["time"]) - first, 3) for a in callback["attempts"]]


@pytest.mark.parametrize("fault", ["reset", "garbage", "slow", "error"])
async def test_misbehaving_webhook_is_retried_on_schedule_until_it_answers(
    make_client: Any, webhooks: Any, fault: str
) -> None:
    hook = await webhooks(fault, 3)
    client = await make_client(_scenario(hook.url, SHORT if fault == "slow" else GENEROUS))
    assert (await send(client, SMS)).status == 202
    await advance(client, 600)  # the attempts at 0, 1 and 5 minutes: all three fail
    [callback] = await journal(client)
    assert len(callback["attempts"]) == 3 and callback["state"] == "pending"
    await _set_timeout(client, GENEROUS)  # the one that is answered is not raced against SHORT
    await advance(client, 3000)
    [callback] = await journal(client)
    assert callback["state"] == "delivered"
    assert len(callback["attempts"]) == 4
    assert _offsets(callback) == list(DEFAULT_RETRY_SCHEDULE[:4])
    failed = callback["attempts"][:3]
    assert all(a["statusCode"] in (None, 500) for a in failed)
    if fault != "error":
        assert all(a["error"] for a in failed), failed
    if fault == "slow":
        assert {a["error"] for a in failed} == {"timeout"}
    assert callback["attempts"][3]["statusCode"] == 200
    assert len(hook.delivered) == 1


async def test_webhook_that_never_recovers_ends_exhausted_after_24_hours(make_client: Any, webhooks: Any) -> None:
    hook = await webhooks("reset", 10**6)
    client = await make_client(_scenario(hook.url))
    assert (await send(client, SMS)).status == 202
    await advance(client, 2 * 86400)
    [callback] = await journal(client)
    assert callback["state"] == "exhausted"
    assert callback["nextAttemptAt"] is None
    assert _offsets(callback) == list(DEFAULT_RETRY_SCHEDULE)
    assert hook.attempts == len(DEFAULT_RETRY_SCHEDULE)


async def test_webhook_down_for_a_while_then_back(make_client: Any, webhooks: Any) -> None:
    hook = await webhooks("none", 0)
    port = hook.port
    await hook.stop()  # nothing listens: connection refused
    client = await make_client(_scenario(hook.url))
    assert (await send(client, SMS)).status == 202
    await advance(client, 400)  # attempts at 0, 1 min, 5 min after the first: all refused
    [callback] = await journal(client)
    assert [a["error"] for a in callback["attempts"]] == ["connection refused"] * 3
    assert callback["state"] == "pending"

    await hook.start(port)  # back on the same address
    await advance(client, 3600)
    [callback] = await journal(client)
    assert callback["state"] == "delivered"
    assert _offsets(callback) == list(DEFAULT_RETRY_SCHEDULE[:4])
    assert len(hook.delivered) == 1


async def test_api_keeps_answering_while_a_webhook_hangs(make_client: Any, webhooks: Any) -> None:
    hook = await webhooks("slow", 1)
    client = await make_client(
        {"applications": [{"id": "app-1", "statusCallbackUrl": hook.url, "callbackTimeout": 30}]}
    )
    assert (await send(client, SMS)).status == 202
    advancing = asyncio.create_task(advance(client, 2))
    await asyncio.wait_for(hook.arrived.wait(), 10)
    # The advance is stuck on the hanging webhook; everything else still answers.
    health = await client.get("/_emulator/health")
    assert health.status == 200
    resp = await send(client, {**SMS, "to": ["+15552221112"]})
    assert resp.status == 202
    listed = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params=ANY_TIME, headers=AUTH)
    assert listed.status < 500
    assert not advancing.done()
    hook.release.set()
    await asyncio.wait_for(advancing, 10)
    [first, *_] = await journal(client)
    assert first["attempts"][0]["error"] is not None or first["attempts"][0]["statusCode"] is None


async def test_faults_with_a_realtime_clock_end_delivered(make_client: Any, webhooks: Any) -> None:
    hook = await webhooks("garbage", 2)
    client = await make_client(
        {
            "applications": [
                {"id": "app-1", "statusCallbackUrl": hook.url, "callbackTimeout": GENEROUS, "retrySchedule": [0, 0.05, 0.1]}
            ],
            "defaults": {"sms": [{"event": "message-delivered", "after": 0}]},
        },
        clock="realtime",
    )
    assert (await send(client, SMS)).status == 202
    await journal(client, state="delivered", wait="30")  # long-poll the journal
    [callback] = await journal(client)
    assert callback["state"] == "delivered"
    assert len(callback["attempts"]) == 3


def test_the_cli_takes_survivors_of_a_full_collection_out_of_later_ones() -> None:
    """Stored records must not make every full collection walk them all (long callback stalls)."""
    import gc

    from emulator.cli import _freeze_survivors

    gc.unfreeze()
    enabled = gc.isenabled()
    gc.disable()  # only the collections below: an automatic full one (set off by whatever ran before) would freeze too
    gc.callbacks.append(_freeze_survivors)
    try:
        kept = [{"record": i} for i in range(10_000)]
        gc.collect(1)
        assert gc.get_freeze_count() == 0  # younger collections leave everything alone
        gc.collect(2)
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.callbacks.remove(_freeze_survivors)
        gc.unfreeze()
        if enabled:
            gc.enable()
