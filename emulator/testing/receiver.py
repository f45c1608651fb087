"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every
callback and answers as told (200 by default, a given status, N failures, or no answer,
optionally behind Basic credentials with the challenge flow). The pytest plugin's
``callback_receiver`` and the emulator's own tests (tests/support.py) use this one.

It runs on whichever event loop starts it, and its records and waits are thread-safe, so
the pytest plugin can run it next to the emulator in a background thread while tests
read it from the main thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    status: int | None  # what we answered; None: we hung up without answering
    events: list[dict[str, Any]] = field(default_factory=list)


class CallbackReceiver:
    def __init__(self, host: str = "127.0.0.1", path: str = "/callbacks") -> None:
        self.host = host
        self.path = path
        self.url = ""
        self._lock = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._plan: list[int | None] = []  # answers for the next requests; None = hang
        self._status = 200
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._hung = 0  # requests waiting unanswered (hang); clear() wakes the loop only for them
        self._expected_authorization: str | None = None
        self._challenge_header = True

    # -- lifetime -------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        self._loop = asyncio.get_running_loop()
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self.host}:{bound}{self.path}"
        return self.url

    async def stop(self) -> None:
        self._unhang()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- behaviour ------------------------------------------------------------------------

    def respond(self, status: int) -> CallbackReceiver:
        """Answer every request from now on with ``status`` (after any planned ``fail``/``hang``)."""
        with self._lock:
            self._status = status
        return self

    def fail(self, times: int = 1, status: int = 500) -> CallbackReceiver:
        """Answer the next ``times`` requests with ``status``, then go on as before."""
        with self._lock:
            self._plan.extend([status] * times)
        return self

    def hang(self, times: int = 1) -> CallbackReceiver:
        """Do not answer the next ``times`` requests, so the sender times out."""
        with self._lock:
            self._plan.extend([None] * times)
        return self

    def require_credentials(self, username: str, password: str, *, challenge: bool = True) -> CallbackReceiver:
        """Answer 401 to every request without these Basic credentials, before any planned
        answer; with ``WWW-Authenticate`` (the signal of Bandwidth's challenge flow, see
        docs/callbacks.md, 'Credentials and challenge mode') unless ``challenge`` is False."""
        authorization = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        with self._lock:
            self._expected_authorization = authorization
            self._challenge_header = challenge
        return self

    def clear(self) -> None:
        """Forget what arrived and what was planned; answer 200 again; release hung requests."""
        with self._lock:
            self._requests.clear()
            self._plan.clear()
            self._status = 200
            self._expected_authorization = None
        self._unhang()

    def _unhang(self) -> None:
        loop, release = self._loop, self._release
        if loop is None or release is None or loop.is_closed():
            return
        with self._lock:
            if self._hung == 0:
                # Nothing waits on ``release``: no call into the receiver's loop (the plugin
                # clears the receiver twice per test, docs/testing.md, 'What a test costs').
                return
        fresh = asyncio.Event()

        def swap() -> None:
            release.set()
            self._release = fresh

        if _on_loop(loop):
            swap()
        else:
            loop.call_soon_threadsafe(swap)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        events = [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []
        headers: dict[str, str] = {}
        with self._lock:
            expected = self._expected_authorization
            if expected is not None and request.headers.get("Authorization") != expected:
                answer: int | None = 401
                if self._challenge_header:
                    headers["WWW-Authenticate"] = 'Basic realm="callbacks"'
            else:
                answer = self._plan.pop(0) if self._plan else self._status
            release = self._release
            if answer is None:
                self._hung += 1
            self._record(ReceivedRequest(request.path, dict(request.headers), body, answer, events))
            self._lock.notify_all()
        if answer is None:
            assert release is not None
            try:
                await release.wait()
            finally:
                with self._lock:
                    self._hung -= 1
            return web.Response(status=204)  # the sender gave up long ago; nobody reads this
        if 300 <= answer < 400:
            headers["Location"] = self.url + "/moved"
        return web.Response(status=answer, headers=headers)

    def _record(self, request: ReceivedRequest) -> None:
        """Keep one request (called with the lock held, on the receiver's loop)."""
        self._requests.append(request)

    # -- what arrived ---------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event of every request, in arrival order (callbacks are arrays of events)."""
        return [event for r in self.requests for event in r.events]

    def types(self, message_id: str | None = None) -> list[str]:
        """The event types that arrived, in order (for one message, if given)."""
        return [str(e.get("type")) for e in self.events if message_id is None or e.get("message", {}).get("id") == message_id]

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` requests arrived; AssertionError listing them on timeout.
        Do not call it on the loop the receiver runs on: use :meth:`wait_for_async` there."""
        __tracebackhide__ = True
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                arrived = "\n".join(f"  {r.status} {r.path} {[e.get('type') for e in r.events]}" for r in self._requests)
                raise AssertionError(
                    f"waited {timeout:g}s for {count} callback request(s) at {self.url}; "
                    f"{len(self._requests)} arrived:\n{arrived or '  (none)'}"
                )
            return list(self._requests)

    async def wait_for_async(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedRequest]:
        return await asyncio.to_thread(self.wait_for, count, timeout)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
