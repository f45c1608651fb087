"""The web page at ``/``: a static page with vanilla JS that reads the control API.

No build step and no CDN, because the emulator often runs on a machine without internet
access. The routes here serve the page itself, the event stream that tells it what changed,
pages of conversations and messages with the filters applied on the server (so an open page
costs the emulator what it shows, not everything stored: docs/ui.md, 'Live updates'), the
active scenario as YAML, and stored media as thumbnails.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

from emulator.keys import QUERIES, SERVICE
from emulator.live import MAX_STREAMS, PageFilter, TooManyStreams
from emulator.queries import PAGE_STATES, scenario_json
from emulator.web.errors import ControlError

# The page builds its DOM with textContent only; the policy is a second line of defence
# against message text (attacker-controlled) ever reaching the page as markup.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is tiny and changes with the package: always revalidate.
    "Cache-Control": "no-cache",
}
ASSETS = {
    "app.js": "text/javascript",
    "style.css": "text/css",
}
# Shown inline as thumbnails. SVG is left out: it can carry script when opened directly.
INLINE_MEDIA = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"}


def _static(name: str) -> bytes:
    return resources.files("emulator.control").joinpath("static", name).read_bytes()


async def index(request: web.Request) -> web.Response:
    return web.Response(
        body=_static("index.html"), content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
    )


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = ASSETS.get(name)
    if content_type is None:
        raise ControlError(404, f"no file {name!r} in the web page; it has {', '.join(ASSETS)}", type="not-found")
    return web.Response(body=_static(name), content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS)


async def changes(request: web.Request) -> web.Response:
    """The emulator's change counter: the page re-reads the lists only when it moved."""
    return web.json_response({"version": request.app[QUERIES].version}, headers={"Cache-Control": "no-store"})


# -- pages of conversations and messages ---------------------------------------------------

PAGE_FILTERS = ("accountId", "number", "tag", "state", "q")
MAX_LIMIT = 200
MAX_IDS = 100  # conversations or messages asked for by name in one request
TAGS_SHOWN = 500  # the tag filter's choices


def _params(request: web.Request, allowed: tuple[str, ...], repeatable: tuple[str, ...] = ()) -> dict[str, str]:
    """The query as a dict; an unknown parameter, or one given twice that may not be, is an error."""
    q = request.query
    unknown = sorted(set(q) - set(allowed) - set(repeatable))
    if unknown:
        raise ControlError(
            400,
            f"unknown query parameter {', '.join(repr(k) for k in unknown)}; "
            f"{request.path} accepts {', '.join((*allowed, *repeatable))}",
        )
    repeated = sorted(k for k in set(q) if k not in repeatable and len(q.getall(k)) > 1)
    if repeated:
        raise ControlError(400, f"query parameter {', '.join(repr(k) for k in repeated)} given more than once")
    return {k: q[k] for k in q if k not in repeatable}


def _filter(q: dict[str, str]) -> PageFilter:
    state = q.get("state") or None
    if state is not None and state not in PAGE_STATES:
        raise ControlError(400, f"state={state!r} is not one of {', '.join(PAGE_STATES)}")
    number = "".join(q.get("number", "").split()) or None
    return PageFilter(
        account_id=q.get("accountId") or None,
        number=number,
        tag=q.get("tag") or None,
        state=state,
        text=q.get("q") or None,
    )


def _int(q: dict[str, str], key: str, default: int | None, low: int, high: int) -> int | None:
    if key not in q:
        return default
    try:
        value = int(q[key])
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ControlError(400, f"{key}={q[key]!r} must be a whole number from {low} to {high}")
    return value


def _names(request: web.Request, key: str) -> list[str]:
    names = request.query.getall(key, [])
    if len(names) > MAX_IDS:
        raise ControlError(400, f"at most {MAX_IDS} {key} parameters at once; got {len(names)}")
    return list(dict.fromkeys(names))


async def conversations(request: web.Request) -> web.Response:
    """A page of conversations, most recently active first (``before``: the ``next`` of the
    previous page), or, with ``key=`` (repeatable), those conversations' rows."""
    q = _params(request, (*PAGE_FILTERS, "limit", "before", "count"), repeatable=("key",))
    where = _filter(q)
    queries = request.app[QUERIES]
    keys = _names(request, "key")
    await queries.live_index()  # built on the first read, letting sends run meanwhile
    if keys:
        if "before" in q or "limit" in q or "count" in q:
            raise ControlError(400, "key= names the conversations wanted: give no limit, before or count with it")
        body = queries.page_conversation_rows(where, keys)
    else:
        limit = _int(q, "limit", 50, 0, MAX_LIMIT)
        before = _int(q, "before", None, 1, 2**62)
        count = q.get("count", "0")
        if count not in ("0", "1"):
            raise ControlError(400, f"count={count!r} must be 0 or 1")
        assert limit is not None
        body = queries.page_conversations(where, limit, before, count == "1", TAGS_SHOWN)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def thread(request: web.Request) -> web.Response:
    """The latest messages of one conversation that match the filters (``before``: a page
    further back), each with its callbacks."""
    q = _params(request, (*PAGE_FILTERS, "conversation", "limit", "before"))
    if "conversation" not in q:
        raise ControlError(400, "conversation is required: the key of a conversation, as in /_emulator/ui/conversations")
    limit = _int(q, "limit", 50, 1, MAX_LIMIT)
    assert limit is not None
    await request.app[QUERIES].live_index()
    body = request.app[QUERIES].page_thread(q["conversation"], _filter(q), q.get("before"), limit)
    if body is None:
        raise ControlError(404, f"no conversation {q['conversation']!r}", type="not-found")
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def messages(request: web.Request) -> web.Response:
    """These messages (``id=``, repeatable), each with its callbacks: what the page re-reads
    when it is told they changed."""
    q = _params(request, PAGE_FILTERS, repeatable=("id",))
    ids = _names(request, "id")
    await request.app[QUERIES].live_index()
    body = request.app[QUERIES].page_messages(ids, _filter(q))
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# -- the event stream -------------------------------------------------------------------------

HEARTBEAT = 15.0  # seconds between comments on a quiet stream, so proxies keep it open
CHECK = 1.0  # seconds between looks at whether the page is still there, while quiet
WRITE_TIMEOUT = 10.0  # a page that reads nothing for this long is dropped


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``hello`` once, then ``change`` with the messages that changed (and
    their conversations) at most every 50 ms, ``reset`` or ``resync`` (read everything again),
    and a comment every 15 s of quiet. It ends when the server stops."""
    _params(request, ())
    queries = request.app[QUERIES]
    try:
        stream = await queries.open_stream()
    except TooManyStreams:
        raise ControlError(503, f"{MAX_STREAMS} pages are open already: close one", type="too-many-streams") from None
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 1000\n" + _event("hello", {"version": queries.version}))
        quiet = 0.0
        while True:
            batch = await stream.next(CHECK)
            if stream.closed or request.transport is None:  # the server stops, or the page left
                break
            if batch is None:
                quiet += CHECK
                if quiet < HEARTBEAT:
                    continue
                chunk = b": still here\n\n"
            else:
                name = "resync" if batch.resync else "reset" if batch.resets else "change"
                chunk = _event(name, queries.describe(batch))
            quiet = 0.0
            await asyncio.wait_for(response.write(chunk), WRITE_TIMEOUT)
    except (ConnectionResetError, TimeoutError):
        pass  # the page went away, or stopped reading
    finally:
        stream.close()
    return response


async def scenario_yaml(request: web.Request) -> web.Response:
    data = scenario_json(request.app[QUERIES].scenario())
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return web.Response(text=text, content_type="application/yaml", charset="utf-8", headers={"Cache-Control": "no-cache"})


async def media(request: web.Request) -> web.Response:
    """A stored media file, for thumbnails: an <img> cannot send the Basic credentials
    that ``/api/v2/users/{accountId}/media/{mediaId}`` requires."""
    account_id = request.match_info["accountId"]
    media_id = request.match_info["mediaId"]  # already decoded, %2F included
    item = request.app[SERVICE].media.get(account_id, media_id)
    if item is None:
        raise ControlError(404, f"no media {media_id!r} in account {account_id!r}", type="not-found")
    content_type = (item.content_type or "application/octet-stream").split(";")[0].strip().lower()
    headers = {
        "X-Content-Type-Options": "nosniff",
        # Uploaded content is the app's, not ours: never let it run as a page on this origin.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "no-cache",
    }
    if content_type not in INLINE_MEDIA:
        filename = media_id.rsplit("/", 1)[-1].replace('"', "") or "media"
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        content_type = "application/octet-stream"
    return web.Response(body=item.content, content_type=content_type, headers=headers)
