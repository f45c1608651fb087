"""``/api/v2/users/{accountId}/messages``."""

from __future__ import annotations

import math

from aiohttp import web

from emulator.keys import SERVICE
from emulator.messaging.listing import ListError, encode_page_token, parse_query
from emulator.messaging.wire import FieldError, message_body_json
from emulator.scenarios.faults import LIST_RATE_LIMITED, SendRejected
from emulator.web.auth import authenticate
from emulator.web.bodies import BodyError, load_json
from emulator.web.errors import (
    BandwidthError,
    bad_request,
    require_acceptable,
    unsupported_content_type,
    validation_error,
)
from emulator.web.ratelimit import LIST_LIMITER


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


async def create_message(request: web.Request) -> web.Response:
    account_id = request.match_info["accountId"]
    authenticate(request, account_id)
    require_acceptable(request, ("application/json",))
    content_type = request.headers.get("Content-Type", "")
    if not _is_json(content_type):
        raise unsupported_content_type(content_type)
    try:
        body = load_json(await request.read())
    except BodyError as exc:
        raise validation_error([FieldError(exc.field, exc.description)]) from None
    try:
        result = request.app[SERVICE].send(account_id, body)
    except SendRejected as exc:
        raise BandwidthError(exc.status, exc.type, exc.description) from None
    if isinstance(result, list):
        raise validation_error(result)
    return web.Response(text=message_body_json(result), status=202, content_type="application/json")



async def list_messages(request: web.Request) -> web.Response:
    """Metadata of the account's messages (docs/bandwidth-behaviour.md, 'Listing messages'); never their text."""
    account_id = request.match_info["accountId"]
    authenticate(request, account_id)
    service = request.app[SERVICE]
    if not service.scenario.message_storage:
        # Accounts without message storage have no access to message search: Bandwidth's
        # documented 403 is "Access Denied" (docs/bandwidth-behaviour.md, 'Errors and rate limits').
        raise BandwidthError(
            403, "forbidden", "Access Denied: message storage is off for this account, so messages cannot be listed"
        )
    limit = service.scenario.list_rate_limit
    if limit is not None:
        wait = request.app[LIST_LIMITER].admit(request.remote or "", limit.requests, limit.window)
        if wait is not None:
            # The spec's listMessagesTooManyRequestsError (docs/scenarios.md, 'The listing rate limit').
            retry_after = str(max(1, math.ceil(wait)))
            raise BandwidthError(429, "rate_limit_exceeded", LIST_RATE_LIMITED, headers={"Retry-After": retry_after})
    try:
        service.admit_list(account_id)
    except SendRejected as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        raise BandwidthError(exc.status, exc.type, exc.description, headers=headers) from None
    try:
        query = parse_query(request.query)
    except ListError as exc:
        raise bad_request(str(exc)) from None
    page = service.list_messages(account_id, query)
    # Links that do not exist are left out, never null: the spec declares them as
    # non-nullable strings and the legacy Node SDK rejects null (docs/bandwidth-behaviour.md, 'The official SDKs').
    page_info: dict[str, str] = {}
    for name, offset in (("prev", page.prev_offset), ("next", page.next_offset)):
        if offset is not None:
            token = encode_page_token(offset)
            page_info[f"{name}Page"] = str(request.url.update_query(pageToken=token))
            page_info[f"{name}PageToken"] = token
    body = {
        "totalCount": page.total_count,
        "pageInfo": page_info,
        "messages": [row.to_json() for row in page.rows],
    }
    return web.json_response(body)
