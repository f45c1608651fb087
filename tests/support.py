"""Helpers shared by the tests: a real webhook receiver and small request shortcuts."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient


AUTH = {"Authorization": "Basic dXNlcjpwYXNz"}  # user:pass
ACCOUNT = "9900000"


class Receiver:
    """A real webhook receiver on 127.0.0.1 that records every callback POST."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self._arrived = asyncio.Condition()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.statuses.pop(0) if self.statuses else 200
        async with self._arrived:
            self.requests.append(
                {"path": request.path, "headers": dict(request.headers), "body": json.loads(body), "status": status}
            )
            self._arrived.notify_all()
        return web.Response(status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/callbacks"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for r in self.requests for event in r["body"]]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.requests) >= count), timeout)
        return self.events


async def send(client: TestClient, body: dict[str, Any], account: str = ACCOUNT) -> Any:
    resp = await client.post(f"/api/v2/users/{account}/messages", json=body, headers=AUTH)
    return resp


async def advance(client: TestClient, seconds: float) -> dict[str, Any]:
    resp = await client.post("/_emulator/clock/advance", json={"seconds": seconds})
    assert resp.status == 200, await resp.text()
    return await resp.json()
