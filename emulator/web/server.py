"""The HTTP server: aiohttp's, with its own error answers in Bandwidth's envelope.

When a request cannot even be parsed (a bad request line, a header with a forbidden
character), aiohttp answers before any route or middleware runs, with a plain-text body
from ``RequestHandler.handle_error``. aiohttp offers no hook for that answer
(github.com/aio-libs/aiohttp/issues/3287), so the runner here serves connections with a
``RequestHandler`` whose ``handle_error`` answers ``{type, description}`` JSON instead, as
every other error of the emulator does (docs/compatibility.md, 'Errors').
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_request import BaseRequest


class BandwidthRequestHandler(web.RequestHandler):
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
    """``web.AppRunner`` whose server answers aiohttp's own errors in Bandwidth's shape."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same object, given the subclass that only changes which handler serves a
        # connection: every setting aiohttp put on it stays as it is.
        server.__class__ = BandwidthServer
        return server
