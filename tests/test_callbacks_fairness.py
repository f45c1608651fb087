"""One hanging receiver must not hold up another receiver's callbacks (docs/callbacks.md,
'Time, scale and shutdown'): POSTs take a per-receiver slot before a global one, and the
jobs due at one instant are taken round-robin across receivers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from support import ACCOUNT, AUTH, advance

from emulator.delivery.dispatcher import DEFAULT_CONCURRENCY

# More than the dispatcher's global bound and the scheduler's workers (256).
HANGING = 300


class Slow:
    """``/slow`` hangs until ``/quick`` has been called; ``/quick`` answers at once."""

    def __init__(self) -> None:
        self.quick_arrived = asyncio.Event()
        self.order: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def slow(self, request: web.Request) -> web.Response:
        await request.read()
        self.order.append("slow")
        await self.quick_arrived.wait()
        return web.Response(status=204)

    async def quick(self, request: web.Request) -> web.Response:
        await request.read()
        self.order.append("quick")
        self.quick_arrived.set()
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/slow", self.slow)
        app.router.add_post("/quick", self.quick)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.quick_arrived.set()
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def slow() -> AsyncIterator[Slow]:
    server = Slow()
    await server.start()
    yield server
    await server.stop()


async def test_a_hanging_receiver_does_not_hold_up_another_applications_callback(make_client, slow: Slow):
    assert HANGING > DEFAULT_CONCURRENCY
    client = await make_client({"applications": [
        # If the quick receiver's callback waited behind the hanging ones, they would all
        # time out (2 s) before it went out; with fair turns it goes out while they hang,
        # which releases them, so each of them is answered.
        {"id": "a", "statusCallbackUrl": slow.url + "/slow", "callbackTimeout": "2s", "retrySchedule": [0]},
        {"id": "b", "statusCallbackUrl": slow.url + "/quick", "callbackTimeout": "2s", "retrySchedule": [0]},
    ]})
    sms = {"from": "+15554443333", "to": ["+15552221111"], "text": "hi"}
    for _ in range(HANGING):
        resp = await client.post(f"/api/v2/users/{ACCOUNT}/messages", json={**sms, "applicationId": "a"}, headers=AUTH)
        assert resp.status == 202
    resp = await client.post(f"/api/v2/users/{ACCOUNT}/messages", json={**sms, "applicationId": "b"}, headers=AUTH)
    assert resp.status == 202
    await advance(client, 10)
    journal = await (await client.get("/_emulator/callbacks", params={"accountId": ACCOUNT})).json()
    callbacks = journal["callbacks"]
    assert len(callbacks) == HANGING + 1
    assert {c["state"] for c in callbacks} == {"delivered"}
    assert {a["statusCode"] for c in callbacks for a in c["attempts"]} == {204}
    # The quick receiver was called while the first of the hanging ones were still open.
    assert "quick" in slow.order[: DEFAULT_CONCURRENCY]


def test_jobs_due_together_are_taken_in_turns_across_receivers():
    from emulator.delivery.scheduler import _interleaved

    class Job:
        cancelled = False

        def __init__(self, lane: str, n: int) -> None:
            self.lane, self.n = lane, n

    batch = [Job("a", n) for n in range(3)] + [Job("b", 0)] + [Job("c", n) for n in range(2)]
    assert [(j.lane, j.n) for j in _interleaved(batch)] == [
        ("a", 0), ("b", 0), ("c", 0), ("a", 1), ("c", 1), ("a", 2),
    ]
