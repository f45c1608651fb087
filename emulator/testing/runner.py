"""Run the emulator in-process, for tests and tools:

    async with Emulator(scenario="scenario.yml", clock="manual") as emu:
        message = await emu.send(to="+15552221111", from_="+15554443333", text="hi")
        await emu.advance(60)
        await emu.assert_callbacks(message["id"], ["message-delivered"])

``Emulator`` serves on 127.0.0.1 on a free port and *is* an :class:`AsyncClient` for it.
``BackgroundEmulator`` does the same on an event loop in a background thread, for
synchronous code (the pytest plugin uses it), handing out a blocking :class:`Client`.

Being in the same process, ``Emulator`` answers the calls a test makes most, ``advance``
and reading a message (``message``, ``assert_callbacks``, ``assert_attempts``), by calling
the control API's own code on its loop instead of over HTTP: the same checks, the same
answer (a copy of its JSON) and the same :class:`EmulatorError` as the endpoint, without
two HTTP round trips per test (docs/testing.md, 'What a test costs'). Every other call,
and every call of a client of an emulator in another process, goes over HTTP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from aiohttp import web

from emulator.app import create_app
from emulator.config import DEFAULT_ACCOUNT, Settings
from emulator.control import api as control
from emulator.delivery.urls import check_callback_url
from emulator.keys import QUERIES, SERVICE
from emulator.queries import Queries
from emulator.scenarios.format import ScenarioSource, load_scenario
from emulator.service import MessagingService
from emulator.testing.client import AsyncClient, Client, EmulatorError, LoopThread
from emulator.web.errors import ControlError, internal_error
from emulator.web.server import EmulatorRunner

log = logging.getLogger("emulator")

T = TypeVar("T")


class Emulator(AsyncClient):
    """An emulator served in-process on the running event loop, and a client for it."""

    def __init__(
        self,
        scenario: ScenarioSource = None,
        *,
        clock: Literal["manual", "realtime"] = "manual",
        callback_url: str | None = None,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str = DEFAULT_ACCOUNT,
        control_token: str | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__("", account_id=account_id, control_token=control_token, **client_options)
        self.settings = Settings(
            host=host, port=port, clock=clock, callback_url=callback_url, time_scale=time_scale, control_token=control_token
        )
        self._scenario = load_scenario(scenario)
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> str:
        """Serve; returns the base URL (``http://127.0.0.1:PORT``)."""
        self.app = create_app(self.settings, scenario=self._scenario)
        self._runner = EmulatorRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{self.settings.host}:{port}"
        self.app[SERVICE].base_url = self.base_url  # for the URLs of stored inbound media
        return self.base_url

    async def stop(self) -> None:
        await self.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def service(self) -> MessagingService:
        """The domain service itself, for in-process inspection beyond the control API."""
        if self.app is None:
            raise RuntimeError("the emulator is not started")
        return self.app[SERVICE]

    # -- the calls answered in-process (see the module's docstring) -----------------------

    async def advance(self, seconds: float) -> dict[str, Any]:
        """Manual clock: move virtual time forward, firing every callback and retry that falls
        due, in order; returns once all of them are done."""
        return await self._in_process("POST", "/_emulator/clock/advance", lambda queries: control.advance(queries, seconds))

    async def message(self, message_id: str) -> dict[str, Any]:
        """One message with its callbacks and their attempts (``GET /_emulator/messages/{id}``)."""

        async def detail(queries: Queries) -> dict[str, Any]:
            # A copy through JSON, as the endpoint's answer is: nothing the caller holds is the
            # emulator's own, and the types are JSON's.
            found: dict[str, Any] = json.loads(json.dumps(control.message_detail(queries, message_id, None)))
            return found

        return await self._in_process("GET", f"/_emulator/messages/{message_id}", detail)

    async def _in_process(self, method: str, path: str, call: Callable[[Queries], Awaitable[T]]) -> T:
        """``call``'s answer, or the :class:`EmulatorError` its endpoint would answer with: a
        control API error as it is, any other exception as the 500 of the endpoint's guard
        (counted as an internal error, docs/testing.md, 'Internal errors')."""
        __tracebackhide__ = True
        if self.app is None:
            raise RuntimeError("the emulator is not started")
        queries = self.app[QUERIES]
        try:
            return await call(queries)
        except ControlError as exc:
            raise EmulatorError(exc.status, _body(exc.response()), method, path) from None
        except Exception as exc:
            log.exception("unhandled error on %s %s", method, path)
            self.service.internal_errors.record(f"{method} {path}", exc)
            raise EmulatorError(500, _body(internal_error()), method, path) from exc

    def set_callback_url(self, url: str | None) -> None:
        """Where callbacks go for applications the scenario does not name, or names without
        callback URLs (``--callback-url``). ValueError for a URL that cannot be one."""
        if url is not None:
            check_callback_url(url)
        self.settings.callback_url = url
        self.service.callback_url = url


class BackgroundEmulator:
    """An :class:`Emulator` on its own event loop in a daemon thread, for synchronous code.

        with BackgroundEmulator(clock="manual") as emu:   # emu is a blocking Client
            emu.send(...)
    """

    def __init__(self, scenario: ScenarioSource = None, **options: Any) -> None:
        self._scenario = scenario
        self._options = options
        self.loop: LoopThread | None = None
        self.emulator: Emulator | None = None
        self.client: Client | None = None

    def __enter__(self) -> Client:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Client:
        self.loop = LoopThread("bandwidth-emulator")
        self.emulator = Emulator(self._scenario, **self._options)
        url = self.loop.run(self.emulator.start())
        # The emulator is its own async client, answering the commonest calls in-process.
        self.client = Client(url, loop=self.loop, aio=self.emulator)
        return self.client

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the emulator's loop and wait for it."""
        assert self.loop is not None, "not started"
        return self.loop.run(coro)

    def stop(self) -> None:
        if self.loop is None:
            return
        if self.client is not None:
            self.client.close()
        if self.emulator is not None:
            self.loop.run(self.emulator.stop())
        self.loop.stop()
        self.loop = None


def _body(response: web.Response) -> Any:
    """The JSON body of an answer built in-process."""
    assert isinstance(response.body, bytes)
    return json.loads(response.body)
