"""The two callback transports journal the same outcomes for the same webhook behaviour.

Plain-http webhooks are POSTed by the emulator's own HTTP/1.1 client unless
``--callback-client aiohttp`` (``Settings.callback_client``) asks for aiohttp's; both go
through one outcome path (emulator.delivery.dispatcher.Dispatcher.post). Each behaviour is
played against both, and the journals must match attempt for attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from support import ACCOUNT, AUTH, HANG, Receiver, closed_port_url

from emulator.app import create_app
from emulator.config import Settings
from emulator.scenarios.format import parse_scenario

CLIENTS = ("builtin", "aiohttp")
# Two scheduled attempts, one virtual minute apart. An attempt that is answered is given far
# more time than it takes on a busy machine; only a webhook that hangs reaches a limit, and the
# limit is short then (the retry after it gets the long one again: _journal).
GENEROUS = 30
HANG_LIMIT = 0.5
APPLICATION = {"id": "app", "retrySchedule": [0, 60], "callbackTimeout": GENEROUS}
BODY = {"applicationId": "app", "from": "+15554443333", "to": ["+15551230001"], "text": "hi"}


async def _raw_server(answer: bytes | None) -> tuple[asyncio.Server, str]:
    """A webhook that reads the request head, then writes ``answer`` (None: nothing) and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/callbacks"


Setup = Callable[[Receiver], Awaitable[tuple[str, dict[str, Any]]]]


async def answers_200(r: Receiver) -> tuple[str, dict[str, Any]]:
    return r.url, {}


async def answers_500_then_200(r: Receiver) -> tuple[str, dict[str, Any]]:
    r.fail(1, 500)
    return r.url, {}


async def answers_302(r: Receiver) -> tuple[str, dict[str, Any]]:
    r.fail(2, 302)
    return r.url, {}


async def answers_302_counted_as_success(r: Receiver) -> tuple[str, dict[str, Any]]:
    r.fail(1, 302)
    return r.url, {"redirects": "success"}


async def hangs(r: Receiver) -> tuple[str, dict[str, Any]]:
    r.fail(1, HANG)
    return r.url, {"callbackTimeout": HANG_LIMIT}


async def refuses(r: Receiver) -> tuple[str, dict[str, Any]]:
    return closed_port_url(), {}


async def challenges_with_401(r: Receiver) -> tuple[str, dict[str, Any]]:
    r.challenge = ("hook", "secret")
    return r.url, {"callbackAuth": "challenge", "callbackCredentials": {"username": "hook", "password": "secret"}}


async def answers_401_without_a_challenge(r: Receiver) -> tuple[str, dict[str, Any]]:
    r.challenge = ("hook", "secret")
    r.challenge_header = False
    return r.url, {"callbackAuth": "challenge", "callbackCredentials": {"username": "hook", "password": "secret"}}


async def sends_basic_credentials(r: Receiver) -> tuple[str, dict[str, Any]]:
    r.challenge = ("hook", "secret")
    return r.url, {"callbackCredentials": {"username": "hook", "password": "secret"}}


BEHAVIOURS: list[Setup] = [
    answers_200,
    answers_500_then_200,
    answers_302,
    answers_302_counted_as_success,
    hangs,
    refuses,
    challenges_with_401,
    answers_401_without_a_challenge,
    sends_basic_credentials,
]
RAW = {
    "hangs_up_without_answering": None,
    "answers_with_a_204_and_closes": b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
}


async def _journal(aiohttp_client: Any, callback_client: str, url: str, settings: dict[str, Any]) -> list[Any]:
    scenario = parse_scenario({"applications": [{**APPLICATION, "statusCallbackUrl": url, **settings}]})
    app = create_app(Settings(clock="manual", callback_client=callback_client), scenario=scenario)  # type: ignore[arg-type]
    client: TestClient = await aiohttp_client(app)
    resp = await client.post(f"/api/v2/users/{ACCOUNT}/messages", json=BODY, headers=AUTH)
    assert resp.status == 202, await resp.text()
    message_id = (await resp.json())["id"]
    resp = await client.post("/_emulator/clock/advance", json={"seconds": 30})  # the first attempt
    assert resp.status == 200
    resp = await client.patch("/_emulator/scenario", json={"applications": [{"id": "app", "callbackTimeout": GENEROUS}]})
    assert resp.status == 200, await resp.text()
    resp = await client.post("/_emulator/clock/advance", json={"seconds": 90})  # the retry, a minute later
    assert resp.status == 200
    resp = await client.get("/_emulator/callbacks", params={"messageId": message_id})
    callbacks = (await resp.json())["callbacks"]
    await client.close()
    return [
        (
            c["type"],
            c["state"],
            [(a["statusCode"], a["error"], a["authorization"], a["number"], a["duplicate"]) for a in c["attempts"]],
        )
        for c in callbacks
    ]


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda b: b.__name__)
async def test_both_clients_journal_the_same(aiohttp_client: Any, receiver: Receiver, behaviour: Setup) -> None:
    journals = {}
    for callback_client in CLIENTS:
        receiver.requests.clear()
        receiver.statuses = []
        url, settings = await behaviour(receiver)
        journals[callback_client] = await _journal(aiohttp_client, callback_client, url, settings)
        if behaviour is not refuses:
            # Every POST reached the receiver, as the journal says.
            assert len(receiver.requests) == sum(len(c[2]) for c in journals[callback_client])
    assert journals["builtin"] == journals["aiohttp"]
    assert journals["builtin"], "no callback was journaled"


@pytest.mark.parametrize("name", list(RAW))
async def test_both_clients_journal_the_same_odd_answers(aiohttp_client: Any, name: str) -> None:
    journals = {}
    for callback_client in CLIENTS:
        server, url = await _raw_server(RAW[name])
        try:
            journals[callback_client] = await _journal(aiohttp_client, callback_client, url, {})
        finally:
            server.close()
            await server.wait_closed()
    assert journals["builtin"] == journals["aiohttp"]


async def test_the_expected_outcomes(aiohttp_client: Any, receiver: Receiver) -> None:
    """What the shared journal says, so that two equally wrong transports cannot pass."""
    receiver.fail(1, HANG)
    [(kind, state, attempts)] = await _journal(aiohttp_client, "aiohttp", receiver.url, {"callbackTimeout": HANG_LIMIT})
    assert (kind, state) == ("message-delivered", "delivered")
    assert attempts == [(None, "timeout", False, 1, False), (200, None, False, 2, False)]
    [(_, state, attempts)] = await _journal(aiohttp_client, "builtin", closed_port_url(), {})
    assert state == "exhausted"
    assert [a[:2] for a in attempts] == [(None, "connection refused")] * 2


async def test_the_switch_picks_the_client(aiohttp_client: Any, receiver: Receiver) -> None:
    # aiohttp's client offers compressed answers; the built-in one asks for nothing it cannot read.
    for callback_client, offers_gzip in (("builtin", False), ("aiohttp", True)):
        receiver.requests.clear()
        await _journal(aiohttp_client, callback_client, receiver.url, {})
        assert receiver.requests
        assert all(("gzip" in r["headers"].get("Accept-Encoding", "")) is offers_gzip for r in receiver.requests)


def test_the_cli_option_and_its_environment_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    from emulator.cli import build_parser, settings_from_args

    assert settings_from_args(build_parser().parse_args([])).callback_client == "builtin"
    assert settings_from_args(build_parser().parse_args(["--callback-client", "aiohttp"])).callback_client == "aiohttp"
    monkeypatch.setenv("BWE_CALLBACK_CLIENT", "aiohttp")
    assert settings_from_args(build_parser().parse_args([])).callback_client == "aiohttp"
