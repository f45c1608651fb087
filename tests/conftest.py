from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from support import Receiver, pin_era

from emulator.app import create_app
from emulator.config import Settings
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
