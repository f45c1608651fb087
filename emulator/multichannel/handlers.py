"""``POST /api/v2/users/{accountId}/messages/multiChannel`` (createMultiChannelMessage).

Every answer of this route, errors included, is in the multi-channel envelope
``{links, data, errors}`` (multiChannelError in Bandwidth's API reference), not the
``{type, description}`` of the rest of the messaging API.
"""

from __future__ import annotations

import logging

from aiohttp import web

from emulator.keys import SERVICE
from emulator.multichannel import service as multichannel
from emulator.multichannel.wire import SourceError, error_envelope, response_body
from emulator.scenarios.faults import SendRejected
from emulator.web.auth import authenticate
from emulator.web.bodies import BodyError, load_json
from emulator.web.errors import BandwidthError, require_acceptable

log = logging.getLogger("emulator.api")

# Which part of the request each error is about (errorSource in the API reference).
_SOURCES = {406: {"header": "Accept"}, 415: {"header": "Content-Type"}}


def _answer(status: int, errors: list[SourceError], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_envelope(errors), status=status, headers=headers, content_type="application/json")


def _from_bandwidth_error(exc: BandwidthError) -> web.Response:
    source = _SOURCES.get(exc.status, {})
    description = exc.description
    if exc.status == 415:
        # The multi-channel example words it "Content-Type '...' is not supported".
        description = description.replace("Content type", "Content-Type").replace("not supported", "is not supported")
    error = SourceError(description, header=source.get("header"), type=exc.type)
    return _answer(exc.status, [error], exc.headers)


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


async def create_multi_channel_message(request: web.Request) -> web.Response:
    try:
        return await _create(request)
    except BandwidthError as exc:
        return _from_bandwidth_error(exc)
    except Exception:  # a bug of ours still answers in this API's envelope
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _answer(500, [SourceError("Internal server error. No further information available", type="internal-server-error")])


async def _create(request: web.Request) -> web.Response:
    account_id = request.match_info["accountId"]
    authenticate(request, account_id)
    require_acceptable(request, ("application/json",))
    content_type = request.headers.get("Content-Type", "")
    if not _is_json(content_type):
        return _answer(
            415,
            [
                SourceError(
                    f"Content-Type '{content_type or 'none'}' is not supported. Please use 'application/json'",
                    header="Content-Type",
                    type="unsupported-content-type",
                )
            ],
        )
    try:
        # Refuses over-deep nesting and lone surrogates too (docs/compatibility.md, 'What the emulator refuses').
        body = load_json(await request.read())
    except BodyError as exc:
        return _answer(400, [SourceError(exc.description, field=None if exc.field == "body" else exc.field)])
    try:
        result = multichannel.send(request.app[SERVICE], account_id, body)
    except SendRejected as exc:
        kind = "rate-limit-exceeded" if exc.status == 429 else "internal-server-error" if exc.status == 500 else exc.type
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return _answer(exc.status, [SourceError(exc.description, type=kind)], headers)
    if isinstance(result, list):
        return _answer(400, result)
    return web.json_response(response_body(result), status=202)


async def method_not_allowed(request: web.Request) -> web.Response:
    return _answer(
        405,
        [SourceError(f"Method '{request.method}' not supported for this resource.", type="method-not-allowed")],
        {"Allow": "POST"},
    )
