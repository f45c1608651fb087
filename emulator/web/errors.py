"""Errors in Bandwidth's exact shapes (docs/bandwidth-behaviour.md, 'Errors and rate limits'), the control API's errors in the
same envelope, and the route wrapper that guarantees every failure, including our own
bugs, leaves in one of them."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from emulator.keys import SERVICE
from emulator.messaging.wire import FieldError

log = logging.getLogger("emulator.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Bodies above this are refused before they are read (media files are at most 3.5 MB); the
# application's client_max_size (emulator/app.py), answered 413 by guarded below.
REQUEST_SIZE_LIMIT = 8 * 1024 * 1024


class BandwidthError(Exception):
    """An error answer in Bandwidth's ``{type, description}`` envelope."""

    def __init__(
        self,
        status: int,
        type: str,
        description: str,
        *,
        field_errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.type = type
        self.description = description
        self.field_errors = field_errors
        self.headers = headers or {}

    def response(self) -> web.Response:
        body: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.field_errors is not None:
            body["fieldErrors"] = [e.to_json() for e in self.field_errors]
        return web.json_response(body, status=self.status, headers=self.headers, content_type="application/json")


def unauthorized() -> BandwidthError:
    return BandwidthError(401, "unauthorized", "Authentication Failed", headers={"WWW-Authenticate": 'Basic realm="Bandwidth"'})


def forbidden() -> BandwidthError:
    return BandwidthError(403, "forbidden", "Access Denied")


def validation_error(field_errors: list[FieldError]) -> BandwidthError:
    return BandwidthError(400, "request-validation", "Your request could not be accepted", field_errors=field_errors)


def unsupported_content_type(content_type: str) -> BandwidthError:
    return BandwidthError(
        415,
        "unsupported-content-type",
        f"Content type '{content_type or 'none'}' not supported. Please use 'application/json'",
    )


def spring_not_found(path: str) -> web.Response:
    """Unknown paths answer like Bandwidth's Spring gateway (docs/bandwidth-behaviour.md, 'Errors and rate limits')."""
    now = datetime.now(UTC)
    body = {
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000",
        "status": 404,
        "error": "Not Found",
        "message": "Not Found",
        "path": path,
    }
    return web.json_response(body, status=404, content_type="application/json")


def method_not_allowed(method: str, allowed: set[str]) -> web.Response:
    return BandwidthError(
        405,
        "method-not-allowed",
        f"Method '{method}' not supported for this resource.",
        headers={"Allow": ", ".join(sorted(allowed))},
    ).response()


def internal_error() -> web.Response:
    return BandwidthError(500, "internal-server-error", "Something went wrong. Please try again.").response()


# Control API errors use the same ``{type, description}`` envelope as Bandwidth's API, so one
# error handler in a client covers both; ``details`` lists each problem when there are several.
CONTROL = "/_emulator"
ERROR_TYPES = {400: "invalid-request", 404: "not-found", 405: "method-not-allowed", 409: "conflict"}


class ControlError(Exception):
    """An error answer of the control API (``/_emulator/...``)."""

    def __init__(self, status: int, message: str, details: Any = None, *, type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.type = type or ERROR_TYPES.get(status, "error")

    def response(self) -> web.Response:
        body: dict[str, Any] = {"type": self.type, "description": self.message}
        if self.details is not None:
            body["details"] = self.details
        return web.json_response(body, status=self.status)


def _is_control(path: str) -> bool:
    return path == CONTROL or path.startswith(CONTROL + "/")


def _not_found(request: web.Request) -> web.Response:
    if _is_control(request.path):
        return ControlError(
            404, f"no control endpoint {request.path}; every endpoint is listed in {CONTROL}/openapi.json"
        ).response()
    return spring_not_found(request.path)


def _method_not_allowed(request: web.Request, allowed_methods: set[str]) -> web.Response:
    if _is_control(request.path):
        allowed = ", ".join(sorted(allowed_methods))
        response = ControlError(405, f"{request.method} is not allowed on {request.path}; use {allowed}").response()
        response.headers["Allow"] = allowed
        return response
    return method_not_allowed(request.method, allowed_methods)


def _too_large(text: str | None) -> web.Response:
    return BandwidthError(413, "request-entity-too-large", text or "Request entity too large").response()


def guarded(handler: Handler) -> Handler:
    """``handler``, answering every failure in its API's error shape.

    Every route is wrapped in this rather than a middleware: an aiohttp middleware costs
    about as much per request as all of send's validation (bench/RESULTS.md).
    """

    @functools.wraps(handler)
    async def guard(request: web.Request) -> web.StreamResponse:
        # aiohttp enforces client_max_size only while reading; a declared Content-Length above
        # it is refused at once, so a client cannot hold a handler waiting for megabytes never sent.
        length = request.content_length
        if length is not None and length > request.client_max_size:
            return _too_large(web.HTTPRequestEntityTooLarge(max_size=request.client_max_size, actual_size=length).text)
        try:
            return await handler(request)
        except (BandwidthError, ControlError) as exc:
            return exc.response()
        except web.HTTPMethodNotAllowed as exc:
            return _method_not_allowed(request, set(exc.allowed_methods))
        except web.HTTPNotFound:
            return _not_found(request)
        except web.HTTPRequestEntityTooLarge as exc:
            return _too_large(exc.text)
        except (web.HTTPException, ConnectionError):
            raise  # a client gone while its body was read is the server's to handle (web/server.py)
        except Exception as exc:  # a bug of ours must still answer in Bandwidth's shape
            log.exception("unhandled error on %s %s", request.method, request.path)
            service = request.app.get(SERVICE)
            if service is not None:
                service.internal_errors.record(f"{request.method} {request.path}", exc)
            return internal_error()

    return guard


async def unmatched(request: web.Request) -> web.Response:
    """The last route, for any method and path no other route takes: 405 when another
    route has the path, else 404, each in its API's shape."""
    own = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not own:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        return _method_not_allowed(request, allowed)
    return _not_found(request)


def bad_request(description: str) -> BandwidthError:
    """A 400 outside the send API: ``{type, description}`` without ``fieldErrors``."""
    return BandwidthError(400, "request-validation", description)


def not_found(description: str) -> BandwidthError:
    # The media 404 is declared as {type, description}; its exact words are unpublished
    # (docs/bandwidth-behaviour.md, 'What Bandwidth does not publish'), so we follow the multichannel error's kebab-case style.
    return BandwidthError(404, "not-found", description)


def not_acceptable(accept: str, offered: tuple[str, ...]) -> BandwidthError:
    return BandwidthError(
        406,
        "not-acceptable",
        f"Cannot answer with any of the types in Accept '{accept}'. Acceptable: {', '.join(offered)}",
    )


def require_acceptable(request: web.Request, offered: tuple[str, ...]) -> None:
    """406 unless the Accept header allows one of ``offered`` (a missing Accept allows all)."""
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return
    for part in accept.split(","):
        mime, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        mime = mime.lower()
        if mime in ("*/*", "*"):
            return
        for candidate in offered:
            major = candidate.split("/", 1)[0]
            if mime == candidate.lower() or mime == f"{major}/*":
                return
    raise not_acceptable(accept, offered)
