"""``/api/v2/users/{accountId}/media[/{mediaId}]`` (docs/bandwidth-behaviour.md, 'Media').

``mediaId`` may hold ``/``: inbound MMS media are named ``{messageId}/{n}/{filename}``, and
the SDKs send the slash as ``%2F``; the route matches any characters after ``media/``, so both forms work.
"""

from __future__ import annotations

import re

from aiohttp import web

from emulator.keys import SERVICE
from emulator.state.media import BadContinuationToken, MediaTooLarge, media_url
from emulator.web.auth import authenticate
from emulator.web.errors import BandwidthError, bad_request, not_found, require_acceptable
from emulator.web.exposure import stored_media_headers

# type/subtype, optionally with parameters (RFC 9110 token characters).
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")
JSON = ("application/json",)


def _ids(request: web.Request) -> tuple[str, str]:
    account_id = request.match_info["accountId"]
    authenticate(request, account_id)
    return account_id, request.match_info.get("mediaId", "")


def _base_url(request: web.Request) -> str:
    return str(request.url.origin())


async def list_media(request: web.Request) -> web.Response:
    account_id, _ = _ids(request)
    require_acceptable(request, JSON)
    try:
        items, token = request.app[SERVICE].media.page(account_id, request.headers.get("Continuation-Token"))
    except BadContinuationToken as exc:
        raise bad_request(str(exc)) from None
    body = [
        {
            "content": media_url(_base_url(request), account_id, item.media_id),
            "contentLength": len(item.content),
            "mediaName": item.media_id,
        }
        for item in items
    ]
    headers = {"Continuation-Token": token} if token else None
    return web.json_response(body, headers=headers)


async def get_media(request: web.Request) -> web.Response:
    account_id, media_id = _ids(request)
    item = request.app[SERVICE].media.get(account_id, media_id)
    if item is None:
        raise not_found(f"Media '{media_id}' was not found for account {account_id}")
    # The Python SDK asks with Accept: application/json and still expects the bytes
    # (docs/bandwidth-behaviour.md, 'The official SDKs'), so JSON is acceptable here, as are the file's own type and octets.
    require_acceptable(request, (item.content_type.split(";")[0].strip(), "application/octet-stream", *JSON))
    headers = {"Content-Type": item.content_type, **stored_media_headers(item.content_type, media_id)}
    if item.cache_control:
        headers["Cache-Control"] = item.cache_control
    return web.Response(body=item.content, headers=headers)


async def upload_media(request: web.Request) -> web.Response:
    # No Accept check: the answer has no body, so no type can be unacceptable (Bandwidth's
    # own Node SDK test uploads with Accept: text/plain and expects 204; docs/bandwidth-behaviour.md, 'Media').
    account_id, media_id = _ids(request)
    content_type = request.headers.get("Content-Type", "").strip()
    if not _MEDIA_TYPE.match(content_type):
        # Bandwidth stores and serves the file with the type it was given; without one
        # there is nothing to serve it as.
        raise BandwidthError(
            415,
            "unsupported-content-type",
            f"Content type '{content_type or 'none'}' not supported. Send the file's media type, e.g. 'image/png'",
        )
    service = request.app[SERVICE]
    limit = service.scenario.media_size_limit
    # Read up to one byte past the limit ourselves, so the limit (which a scenario may
    # raise above the server's request-size cap) decides, and a huge body is cut short.
    chunks = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    try:
        service.media.put(account_id, media_id, b"".join(chunks), content_type, request.headers.get("Cache-Control"))
    except MediaTooLarge as exc:
        # 400, the status the spec declares for uploadMedia, rather than 413 which it does not.
        raise bad_request(
            f"The media file is larger than the limit of {exc.limit} bytes per file; it was not stored"
        ) from None
    return web.Response(status=204)


async def delete_media(request: web.Request) -> web.Response:
    """204 whether or not the file is (still) there: deleting twice succeeds, as Bandwidth's
    own smoke tests expect (docs/bandwidth-behaviour.md, 'Media'). No body, so no Accept check."""
    account_id, media_id = _ids(request)
    request.app[SERVICE].media.delete(account_id, media_id)
    return web.Response(status=204)
