"""The official Python SDK (bandwidth-sdk 23.3.1) authenticating with OAuth2 against the emulator.

The account lists only an OAuth2 client and a fixed token, so a call that does not carry the
emulator's Bearer token is refused: every success here went through the token path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from bandwidth import ApiClient, ApiException, Configuration, MediaApi, MessagesApi
from bandwidth.models import ListMessageDirectionEnum, Message, MessageRequest, MessagesList
from support import Receiver

from emulator.app import create_app
from emulator.config import Settings
from emulator.scenarios.format import parse_scenario
from emulator.web.tokens import TOKENS, TokenStore

ACCOUNT = "9900000"
APP_ID = "93de2206-9669-4e07-948d-329f4b722ee2"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))


@dataclass
class Emulator:
    base_url: str
    tokens: TokenStore
    app: web.Application

    def config(self, **auth: str) -> Configuration:
        # The SDK's operations hard-code Bandwidth's host unless told to ignore it.
        return Configuration(host=f"{self.base_url}/api/v2", ignore_operation_servers=True, **auth)

    async def advance(self, seconds: float) -> None:
        url = f"{self.base_url}/_emulator/clock/advance"
        async with aiohttp.ClientSession() as session, session.post(url, json={"seconds": seconds}) as resp:
            assert resp.status == 200, await resp.text()


async def start(scenario: dict, receiver: Receiver) -> tuple[web.AppRunner, Emulator]:
    app = create_app(Settings(clock="manual", callback_url=receiver.url), scenario=parse_scenario(scenario))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, Emulator(f"http://127.0.0.1:{port}", app[TOKENS], app)


SCENARIO = {
    "accounts": [
        {
            "id": ACCOUNT,
            "oauthClients": [{"clientId": "nightly-client", "clientSecret": "nightly-secret"}],
            "accessTokens": ["fixed-ci-token"],
        }
    ]
}


@pytest.fixture
async def emulator(receiver: Receiver) -> AsyncIterator[Emulator]:
    runner, emu = await start(SCENARIO, receiver)
    yield emu
    await runner.cleanup()


def call(fn, *args, **kwargs):
    """The SDK is blocking: run it off the event loop that serves the emulator."""
    return asyncio.to_thread(fn, *args, **kwargs)


async def whole_flow(emulator: Emulator, cfg: Configuration) -> None:
    """Send, list, and upload / download / list / delete media, as Bandwidth's nightly smoke tests do."""
    client = ApiClient(cfg)
    messages, media = MessagesApi(client), MediaApi(client)

    request = MessageRequest(application_id=APP_ID, to=["+15552221111"], var_from="+15554443333", text="hello")
    sent = await call(messages.create_message, ACCOUNT, request)
    assert isinstance(sent, Message), "create_message gave None: the status code was not 202"

    listed = await call(messages.list_messages, ACCOUNT, message_direction=ListMessageDirectionEnum.OUTBOUND)
    assert isinstance(listed, MessagesList)
    assert [m.message_id for m in listed.messages] == [sent.id]

    uploaded = await call(media.upload_media_with_http_info, ACCOUNT, "oauth.png", PNG, _content_type="image/png")
    assert uploaded.status_code == 204
    assert bytes(await call(media.get_media, ACCOUNT, "oauth.png")) == PNG
    assert [m.media_name for m in await call(media.list_media, ACCOUNT)] == ["oauth.png"]
    deleted = await call(media.delete_media_with_http_info, ACCOUNT, "oauth.png")
    assert deleted.status_code == 204
    assert await call(media.list_media, ACCOUNT) == []


async def test_sdk_with_client_credentials_runs_the_whole_flow(emulator: Emulator):
    cfg = emulator.config(
        client_id="nightly-client",
        client_secret="nightly-secret",
        access_token_url=f"{emulator.base_url}/api/v1/oauth2/token",
    )
    await whole_flow(emulator, cfg)
    # One token, fetched once and reused on every call: the SDK caches it for expires_in - 60 s.
    assert len(emulator.tokens) == 1
    assert cfg.temp_access_token is not None


async def test_sdk_with_a_fixed_access_token_runs_the_whole_flow(emulator: Emulator):
    await whole_flow(emulator, emulator.config(access_token="fixed-ci-token"))
    assert len(emulator.tokens) == 0


async def test_sdk_with_a_token_the_emulator_issued_earlier(emulator: Emulator):
    fetcher = emulator.config(
        client_id="nightly-client", client_secret="nightly-secret", access_token_url=f"{emulator.base_url}/api/v1/oauth2/token"
    )
    token = await call(fetcher.get_access_token)
    await whole_flow(emulator, emulator.config(access_token=token))


async def test_sdk_with_a_wrong_secret_or_token_gets_401(emulator: Emulator):
    request = MessageRequest(application_id=APP_ID, to=["+15552221111"], var_from="+15554443333", text="hello")
    cfg = emulator.config(access_token="not-a-token")
    with pytest.raises(ApiException) as info:
        await call(MessagesApi(ApiClient(cfg)).create_message, ACCOUNT, request)
    assert info.value.status == 401 and info.value.data.type == "unauthorized"
    # The SDK reads access_token from the token answer without looking at its status: an
    # invalid_client answer ends in a KeyError inside the SDK, before any API call is made.
    cfg = emulator.config(
        client_id="nightly-client", client_secret="wrong", access_token_url=f"{emulator.base_url}/api/v1/oauth2/token"
    )
    with pytest.raises(KeyError):
        await call(MessagesApi(ApiClient(cfg)).create_message, ACCOUNT, request)


async def test_a_token_the_sdk_holds_survives_days_of_virtual_time(emulator: Emulator):
    cfg = emulator.config(
        client_id="nightly-client", client_secret="nightly-secret", access_token_url=f"{emulator.base_url}/api/v1/oauth2/token"
    )
    api = MessagesApi(ApiClient(cfg))
    request = MessageRequest(application_id=APP_ID, to=["+15552221111"], var_from="+15554443333", text="hello")
    assert isinstance(await call(api.create_message, ACCOUNT, request), Message)
    await emulator.advance(7 * 86400)
    assert isinstance(await call(api.create_message, ACCOUNT, request), Message)
    assert len(emulator.tokens) == 1


async def test_virtual_clock_tokens_expire_under_the_sdk(receiver: Receiver):
    """tokenClock: virtual is for testing an application's own refresh: the SDK counts on the
    wall clock, so it keeps sending a token that virtual time has expired, and gets 401."""
    runner, emulator = await start({**SCENARIO, "oauth": {"tokenLifetime": "1h", "tokenClock": "virtual"}}, receiver)
    try:
        cfg = emulator.config(
            client_id="nightly-client", client_secret="nightly-secret", access_token_url=f"{emulator.base_url}/api/v1/oauth2/token"
        )
        media = MediaApi(ApiClient(cfg))
        assert await call(media.list_media, ACCOUNT) == []
        await emulator.advance(3600)
        with pytest.raises(ApiException) as info:
            await call(media.list_media, ACCOUNT)
        assert info.value.status == 401
        cfg.temp_access_token = None  # what an application's refresh-on-401 does
        assert await call(media.list_media, ACCOUNT) == []
    finally:
        await runner.cleanup()
