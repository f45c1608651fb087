"""The HTTP server: aiohttp's, with its own error answers in Bandwidth's envelope.

When a request cannot even be parsed (a bad request line, a header with a forbidden
character), aiohttp answers before any route or middleware runs, with a plain-text body
from ``RequestHandler.handle_error``. aiohttp offers no hook for that answer
(github.com/aio-libs/aiohttp/issues/3287), so the runner here serves connections with a
``RequestHandler`` whose ``handle_error`` answers ``{type, description}`` JSON instead, as
every other error of the emulator does (docs/compatibility.md, 'Errors').

It also bounds what a stalled client can hold (docs/compatibility.md, 'What the emulator
refuses'): a connection that sends no request head within ``idle_timeout`` (from its start
or from its previous answer) is closed, and a request whose body has not fully arrived
``body_timeout`` after its head gets a 408 and its connection closed.

And it tells a handler at once when its client hangs up (:func:`on_client_gone`), so that a
long-poll whose client has gone stops waiting (docs/control-api.md, 'Long-polling: waiting
without sleeping').
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

log = logging.getLogger("emulator.server")

# How long a connection may stay open without a complete request head: idle between
# requests, or sending its head (aiohttp's keepalive timer covers both). nginx's default.
IDLE_TIMEOUT = 75.0
# How long a request's body may take to arrive once its head has.
BODY_TIMEOUT = 60.0


class SlowBody(web.HTTPRequestTimeout):
    """Set on a request's payload when its body is late; answered as a 408 and the connection closed."""


class BandwidthRequestHandler(web.RequestHandler):
    # Called when the connection is lost (see when_lost); a list only once someone asks.
    _when_lost: list[Callable[[], None]] | None = None

    def __init__(self, *args: Any, body_timeout: float = BODY_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._body_timeout = body_timeout

    def when_lost(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the connection is lost; returns the function that cancels it."""
        if self._when_lost is None:
            self._when_lost = []
        callbacks = self._when_lost
        callbacks.append(callback)

        def cancel() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return cancel

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        callbacks, self._when_lost = self._when_lost, None
        for callback in callbacks or ():
            callback()

    async def _handle_request(
        self,
        request: BaseRequest,
        start_time: float | None,
        request_handler: Callable[[BaseRequest], Awaitable[web.StreamResponse]],
    ) -> tuple[web.StreamResponse, bool]:
        payload = request.content

        def late() -> None:
            if not payload.is_eof():
                payload.set_exception(SlowBody())

        async def bounded(request: BaseRequest) -> web.StreamResponse:
            try:
                return await request_handler(request)
            except SlowBody:
                # Nothing more is read from this client: no lingering for the rest of its body.
                self._lingering_time = 0
                seconds = f"{self._body_timeout:g}"
                body = {"type": "request-timeout", "description": f"The request body did not arrive within {seconds} s"}
                response = web.json_response(body, status=408)
                response.force_close()
                return response
            except ConnectionError:
                # The client went away while its request was read: nobody to answer and
                # nothing to log (a flood of dropped clients must not flood the log).
                self._lingering_time = 0
                gone = web.Response(status=400)
                gone.force_close()
                return gone

        if payload.is_eof() or self._body_timeout <= 0:
            return await super()._handle_request(request, start_time, bounded)
        timer = asyncio.get_running_loop().call_later(self._body_timeout, late)
        try:
            return await super()._handle_request(request, start_time, bounded)
        finally:
            timer.cancel()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        # A request still waiting for its body would hold the shutdown for the whole timeout:
        # the body is late by definition now, so it gets its 408 at once.
        request = self._current_request
        if request is not None and not request.content.is_eof():
            request.content.set_exception(SlowBody())
        await super().shutdown(timeout)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # aiohttp's own: logs the traceback, and refuses when part of an answer already left.
            super().handle_error(request, status, exc, message)
            body = {"type": "internal-server-error", "description": "Something went wrong. Please try again."}
        else:
            if request.writer.output_size > 0:
                raise ConnectionError("an answer was already sent on this connection")
            # The client's mistake, said in the answer; a traceback per bad request in the
            # emulator's log would only bury what matters.
            detail = " ".join((message or "").split())[:200]
            self.logger.debug("unparseable request from %s: %s", request.remote, detail)
            body = {"type": "bad-request", "description": f"The HTTP request could not be parsed: {detail or 'bad request'}"}
        response = web.json_response(body, status=status, content_type="application/json")
        response.force_close()
        return response


class BandwidthServer(web.Server):
    """aiohttp's ``web.Server``, serving each connection with :class:`BandwidthRequestHandler`."""

    def __call__(self) -> web.RequestHandler:
        return BandwidthRequestHandler(self, loop=self._loop, **self._kwargs)


class EmulatorRunner(web.AppRunner):
    """``web.AppRunner`` whose server answers aiohttp's own errors in Bandwidth's shape and
    times out stalled clients."""

    def __init__(
        self,
        app: web.Application,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, keepalive_timeout=idle_timeout, body_timeout=body_timeout, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same object, given the subclass that only changes which handler serves a
        # connection: every setting aiohttp put on it stays as it is.
        server.__class__ = BandwidthServer
        return server


# How often a request served by another runner than EmulatorRunner (an application embedded
# in a server of its own) looks whether its client is still there.
GONE_CHECK_EVERY = 1.0


def on_client_gone(request: BaseRequest, callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` once when the client of ``request`` hangs up; returns the function that
    cancels it. Served by :class:`EmulatorRunner`, at once, from the connection's own
    ``connection_lost``; served by plain aiohttp, within :data:`GONE_CHECK_EVERY` seconds."""
    protocol = request.protocol
    if isinstance(protocol, BandwidthRequestHandler) and protocol.transport is not None:
        return protocol.when_lost(callback)
    loop = asyncio.get_running_loop()
    handle: asyncio.Handle | None = None

    def check() -> None:
        nonlocal handle
        transport = request.transport
        if transport is None or transport.is_closing():
            handle = None
            callback()
        else:
            handle = loop.call_later(GONE_CHECK_EVERY, check)

    handle = loop.call_soon(check)

    def cancel() -> None:
        if handle is not None:
            handle.cancel()

    return cancel


ACCEPT_FAILED = "socket.accept() out of system resource"


class AcceptErrors:
    """A loop exception handler that reports failures to accept a connection (out of file
    descriptors, say, under a flood of connections) once a minute with a count, instead of
    a traceback each time asyncio retries; every other error goes to the previous handler."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float = 60.0) -> None:
        self._previous = loop.get_exception_handler()
        self._every = every
        self._last: float | None = None
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _late_accept_retry(context):
            # asyncio schedules a retry per failed accept; those still due when the server
            # has closed its socket fail on the closed descriptor: nothing to report.
            self.suppressed += 1
            return
        if context.get("message") != ACCEPT_FAILED:
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if self._last is not None and now - self._last < self._every:
            self.suppressed += 1
            return
        more = f" ({self.suppressed} more since the last report)" if self.suppressed else ""
        log.error(
            "cannot accept connections: %s%s; stalled connections are closed after %g s idle,"
            " further failures are reported once a minute",
            context.get("exception") or "out of resources", more, IDLE_TIMEOUT,
        )
        self._last = now
        self.suppressed = 0


def _late_accept_retry(context: dict[str, Any]) -> bool:
    handle = context.get("handle")
    callback = getattr(handle, "_callback", None)
    return getattr(callback, "__name__", "") == "_start_serving" and isinstance(context.get("exception"), (ValueError, OSError))


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> AcceptErrors:
    handler = AcceptErrors(loop)
    loop.set_exception_handler(handler)
    return handler
