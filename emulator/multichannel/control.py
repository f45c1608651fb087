"""Control API for the handset's side of an RBM conversation (docs/control-api.md):

- ``POST /_emulator/messages/{messageId}/reply``: tap a suggestion (``{"suggestion": text}``
  or ``{"postbackData": ...}``), share a location (``{"location": {latitude, longitude}}``)
  or type a text (``{"text": ...}``); the app's inbound webhook gets the answer.
- ``POST /_emulator/messages/{messageId}/read``: the handset reads the message (message-read).
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from emulator.control.api import _json_body
from emulator.keys import SERVICE
from emulator.messaging.wire import MAX_INBOUND_TEXT
from emulator.multichannel import service as multichannel
from emulator.queries import callback_json, message_json
from emulator.web.errors import ControlError

# A coordinate is kept as given (RBM reports strings); more digits than this say nothing more.
MAX_COORDINATE = 32


def _coordinate(value: Any, name: str, limit: float, problems: list[str]) -> str:
    try:
        number = float(value) if len(str(value)) <= MAX_COORDINATE else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not -limit <= number <= limit:
        problems.append(f"location.{name} must be a number from -{limit:g} to {limit:g}, in at most {MAX_COORDINATE} characters")
        return ""
    return str(value)


def _location(value: Any, problems: list[str]) -> tuple[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append("'location' must be an object {latitude, longitude}")
        return None
    return (
        _coordinate(value.get("latitude"), "latitude", 90, problems),
        _coordinate(value.get("longitude"), "longitude", 180, problems),
    )


async def reply(request: web.Request) -> web.Response:
    body = await _json_body(request)
    problems: list[str] = []
    for key in ("suggestion", "postbackData", "text"):
        if body.get(key) is not None and not isinstance(body[key], str):
            problems.append(f"'{key}' must be a string")
    if isinstance(body.get("text"), str) and len(body["text"]) > MAX_INBOUND_TEXT:
        # As any inbound text (docs/control-api.md, 'Inbound messages').
        problems.append(f"'text' is {len(body['text'])} characters; a handset's message holds at most {MAX_INBOUND_TEXT:,}")
    unknown = sorted(set(body) - {"suggestion", "postbackData", "text", "location"})
    if unknown:
        problems.append(f"unknown keys: {', '.join(unknown)}; give suggestion, postbackData, location or text")
    location = _location(body.get("location"), problems)
    answers = [k for k in ("suggestion", "postbackData", "text") if body.get(k) is not None]
    if len(answers) > 1 or (body.get("text") is not None and location is not None):
        problems.append("give one answer: suggestion (or postbackData), location, or text")
    if problems:
        raise ControlError(400, "invalid handset reply", problems)
    try:
        message = multichannel.reply(
            request.app[SERVICE],
            request.match_info["messageId"],
            suggestion=body.get("suggestion"),
            postback_data=body.get("postbackData"),
            location=location,
            text=body.get("text"),
        )
    except multichannel.HandsetError as exc:
        raise ControlError(exc.status, exc.message) from None
    return web.json_response({"messages": [message_json(message)]}, status=201)


async def read(request: web.Request) -> web.Response:
    await _json_body(request)
    service = request.app[SERVICE]
    try:
        callback = multichannel.read(service, request.match_info["messageId"])
    except multichannel.HandsetError as exc:
        raise ControlError(exc.status, exc.message) from None
    return web.json_response({"callback": callback_json(callback, service.event(callback))}, status=201)
