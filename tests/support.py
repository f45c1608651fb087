"""Helpers shared by the tests: a real webhook receiver and small request shortcuts."""
from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.scenarios.format import Scenario, parse_scenario
from emulator.testing.receiver import CallbackReceiver, ReceivedRequest

AUTH = {"Authorization": "Basic dXNlcjpwYXNz"}  # user:pass
ACCOUNT = "9900000"
# GET /messages needs at least one query parameter (the spec); this one lists everything.
ANY_TIME = {"fromDateTime": "1970-01-01T00:00:00.000Z"}

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


class Receiver(CallbackReceiver):
    """The plugin's webhook receiver (emulator.testing.receiver), with the shortcuts these
    tests use: ``requests`` as dicts in a list a test may clear, ``statuses`` (the answers
    to give, in order, then 200: a status code, or ``HANG`` to keep the request open past
    the emulator's timeout), ``challenge = (user, password)`` (401, with
    ``WWW-Authenticate`` unless ``challenge_header`` is False, to requests without those
    Basic credentials) and an async ``wait_for``. A 3xx answer carries a Location.
    """

    def __init__(self) -> None:
        super().__init__()
        self._log: list[dict[str, Any]] = []
        self._arrival = asyncio.Event()
        self.challenge: tuple[str, str] | None = None
        self.challenge_header = True

    @property
    def requests(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self._log

    @property
    def statuses(self) -> list[int | str]:
        with self._lock:
            return [HANG if answer is None else answer for answer in self._plan]

    @statuses.setter
    def statuses(self, answers: list[int | str]) -> None:
        with self._lock:
            self._plan[:] = [None if answer == HANG else int(answer) for answer in answers]

    def fail(self, times: int = 1, status: int | str = 500) -> Receiver:  # type: ignore[override]
        """Answer the next ``times`` requests with ``status`` (or hang), then 200."""
        self.statuses = [status] * times
        return self

    def _record(self, request: ReceivedRequest) -> None:
        super()._record(request)
        status = HANG if request.status is None else request.status
        self._log.append({"path": request.path, "headers": request.headers, "body": request.body, "status": status})
        self._arrival.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.challenge is not None:
            self.require_credentials(*self.challenge, challenge=self.challenge_header)
        else:
            with self._lock:
                self._expected_authorization = None
        return await super()._handle(request)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for r in self._log for event in r["body"]]

    async def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:  # type: ignore[override]
        async with asyncio.timeout(timeout):
            while len(self._log) < count:
                self._arrival.clear()
                await self._arrival.wait()
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
