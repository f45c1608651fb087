"""``/api/v2/users/{accountId}/messages``."""

from __future__ import annotations

import json

from aiohttp import web

from ..keys import SERVICE
from ..wire import FieldError, message_body
from .auth import authenticate
from .errors import unsupported_content_type, validation_error


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


async def create_message(request: web.Request) -> web.Response:
    account_id = request.match_info["accountId"]
    authenticate(request, account_id)
    content_type = request.headers.get("Content-Type", "")
    if not _is_json(content_type):
        raise unsupported_content_type(content_type)
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise validation_error([FieldError("body", "The request body is not valid JSON")]) from None
    result = request.app[SERVICE].send(account_id, body)
    if isinstance(result, list):
        raise validation_error(result)
    return web.json_response(message_body(result), status=202)

