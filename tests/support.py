"""Helpers shared by the tests: a real webhook receiver and small request shortcuts."""
from __future__ import annotations

import asyncio
import base64
import json
import socket
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.scenarios.format import Scenario, parse_scenario

AUTH = {"Authorization": "Basic dXNlcjpwYXNz"}  # user:pass
ACCOUNT = "9900000"

# The manual clock starts at the wall clock's now, and what Bandwidth sends depends on the
# virtual date (docs/scenarios.md, "Bandwidth's timeline"): message-sending ends on 2027-01-06.
# So that the suite's outcome does not change with the date it runs on, a test whose scenario
# pins neither its start time nor its era runs in the era of 2026-07-06 (conftest.make_client).
SUITE_ERA = "2026-07-06"


def pin_era(scenario: Scenario | dict | None) -> Scenario:
    """The scenario, in the suite's era unless it pins its start time or its era (support.SUITE_ERA)."""
    if scenario is None:
        scenario = {}
    if isinstance(scenario, dict):
        if "startTime" not in scenario and "era" not in scenario:
            scenario = {**scenario, "era": SUITE_ERA}
        return parse_scenario(scenario)
    if scenario.start_time is None and "era" not in scenario.model_fields_set:
        return scenario.model_copy(update={"era": SUITE_ERA})
    return scenario


HANG = "hang"  # a Receiver answer: never answer (until the receiver stops)


class Receiver:
    """A real webhook receiver on 127.0.0.1 that records every callback POST.

    ``statuses`` are the answers to give, in order, then 200: a status code, or ``HANG`` to
    keep the request open past the emulator's timeout. A 3xx answer carries a Location.
    With ``challenge = (user, password)``, a request without those Basic credentials gets
    401 (with ``WWW-Authenticate`` unless ``challenge_header`` is False) before ``statuses``
    are consulted, like a webhook protected by Bandwidth's challenge flow.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int | str] = []  # answers to give, in order; then 200
        self.challenge: tuple[str, str] | None = None
        self.challenge_header = True
        self._arrived = asyncio.Condition()
        self._release = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    def fail(self, times: int, status: int | str = 500) -> None:
        """Answer the next ``times`` requests with ``status`` (or hang), then 200."""
        self.statuses = [status] * times

    def _answer(self, request: web.Request) -> int | str:
        if self.challenge is not None:
            expected = "Basic " + base64.b64encode(":".join(self.challenge).encode()).decode()
            if request.headers.get("Authorization") != expected:
                return 401
        return self.statuses.pop(0) if self.statuses else 200

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self._answer(request)
        async with self._arrived:
            self.requests.append(
                {"path": request.path, "headers": dict(request.headers), "body": json.loads(body), "status": status}
            )
            self._arrived.notify_all()
        if status == HANG:
            await self._release.wait()
            return web.Response(status=200)
        headers = {}
        if status == 401 and self.challenge is not None and self.challenge_header:
            headers["WWW-Authenticate"] = 'Basic realm="callbacks"'
        if 300 <= int(status) < 400:
            headers["Location"] = self.url + "/moved"
        return web.Response(status=int(status), headers=headers)

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
        self._release.set()
        if self._runner:
            await self._runner.cleanup()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for r in self.requests for event in r["body"]]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.requests) >= count), timeout)
        return self.events


def closed_port_url() -> str:
    """A webhook URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/callbacks"


async def send(client: TestClient, body: dict[str, Any], account: str = ACCOUNT) -> Any:
    resp = await client.post(f"/api/v2/users/{account}/messages", json=body, headers=AUTH)
    return resp


async def advance(client: TestClient, seconds: float) -> dict[str, Any]:
    resp = await client.post("/_emulator/clock/advance", json={"seconds": seconds})
    assert resp.status == 200, await resp.text()
    return await resp.json()
