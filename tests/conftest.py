from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from processes import EmulatorProcess, become_subreaper, no_process_outlives_the_tests  # noqa: F401 (autouse)
from support import Receiver, pin_era

from emulator.app import create_app
from emulator.config import Settings
from emulator.delivery.dispatcher import Dispatcher
from emulator.keys import QUERIES
from emulator.scenarios.format import Scenario


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
def make_client(aiohttp_client: Any, receiver: Receiver):
    async def make(scenario: Scenario | dict | None = None, **settings: Any) -> TestClient:
        settings.setdefault("clock", "manual")
        settings.setdefault("callback_url", receiver.url)
        if scenario is not None or "scenario" not in settings:
            scenario = pin_era(scenario)
        return await aiohttp_client(create_app(Settings(**settings), scenario=scenario))

    return make


@pytest.fixture
async def client(make_client: Any) -> TestClient:
    return await make_client()


@pytest.fixture
def start_cli() -> Iterator[Callable[..., EmulatorProcess]]:
    """``start_cli("--clock", "manual", ...)`` runs ``bandwidth-emulator --port 0 ...`` and returns
    once it printed its URL (bounded wait); every process it started is stopped and waited for
    after the test, whatever happened. In async tests: ``await asyncio.to_thread(start_cli, ...)``."""
    with contextlib.ExitStack() as stack:

        def start(*args: str, env: dict[str, str] | None = None) -> EmulatorProcess:
            emulator = EmulatorProcess.start(*args, env=env)
            stack.callback(emulator.close)
            return emulator

        yield start


@pytest.fixture
def long_poll_waiting() -> Iterator[Callable[[TestClient], asyncio.Event]]:
    """An event set as soon as a long-poll of this in-process emulator waits for a change,
    so a test can make the change only once the poll is waiting for it."""
    stops: list[Callable[[], None]] = []

    def watch(client: TestClient) -> asyncio.Event:
        waiting = asyncio.Event()

        def counted(open_waits: int) -> None:
            if open_waits:
                waiting.set()

        stops.append(client.app[QUERIES].waits.observe(counted))
        return waiting

    yield watch
    for stop in stops:
        stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every hypothesis test is in the property tier, which `make test-fast` leaves out.
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.property)


def pytest_configure(config: pytest.Config) -> None:
    become_subreaper()  # so that an orphaned grandchild is still seen by that check


@pytest.fixture
async def dispatcher() -> AsyncIterator[Dispatcher]:
    """The callback dispatcher on its own, closed after the test."""
    d = Dispatcher()
    yield d
    await d.close()
