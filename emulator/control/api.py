"""The control API (``/_emulator/...``): what tests and tools use to drive and inspect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from emulator.control.openapi import OPENAPI
from emulator.keys import QUERIES, SERVICE
from emulator.messaging.wire import E164, MAX_HANDSET, MAX_ID, MAX_INBOUND_TEXT, MAX_RECIPIENTS
from emulator.queries import (
    CALLBACK_STATES,
    CALLBACK_TYPES,
    DIRECTIONS,
    CallbackFilter,
    ClockIsRealtime,
    MessageFilter,
    Queries,
    message_json,
    scenario_json,
)
from emulator.scenarios.format import (
    MAX_SCENARIO_BYTES,
    ScenarioError,
    load_scenario_data,
    load_scenario_text,
    parse_scenario,
)
from emulator.service import ReplayRefused
from emulator.state.media import parse_inbound_media
from emulator.state.models import InboundRequest
from emulator.web.bodies import BodyError, load_json
from emulator.web.errors import ControlError
from emulator.web.server import on_client_gone

# Longest long-poll, in real seconds: beyond this, proxies and test runners time out first.
MAX_WAIT = 60.0
# Longest single clock advance: ten years of virtual time is more than any test needs and
# keeps every timestamp printable.
MAX_ADVANCE = 10 * 366 * 86400.0


def _query(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query as a plain dict; an unknown or repeated parameter is an error, so a typo
    such as ``messageID`` never silently matches everything."""
    q = request.query
    unknown = sorted(set(q) - set(allowed))
    if unknown:
        raise ControlError(
            400,
            f"unknown query parameter {', '.join(repr(k) for k in unknown)}; "
            f"{request.path} accepts {', '.join(allowed)}",
        )
    repeated = sorted(k for k in set(q) if len(q.getall(k)) > 1)
    if repeated:
        raise ControlError(400, f"query parameter {', '.join(repr(k) for k in repeated)} given more than once")
    return {k: q[k] for k in q}


def _choice(q: dict[str, str], key: str, choices: tuple[str, ...]) -> None:
    if key in q and q[key] not in choices:
        raise ControlError(400, f"{key}={q[key]!r} is not one of {', '.join(choices)}")


class LongPoll:
    """``wait`` and ``count`` query parameters: wait until at least ``count`` (default 1)
    records match the filters, at most ``wait`` real seconds."""

    def __init__(self, q: dict[str, str]) -> None:
        self.wait: float | None = None
        self.count = 1
        if "wait" in q:
            try:
                wait = float(q["wait"])
            except ValueError:
                wait = -1.0
            if not 0 <= wait <= MAX_WAIT:  # also rejects nan
                raise ControlError(400, f"wait={q['wait']!r} must be a number of seconds from 0 to {MAX_WAIT:g}")
            self.wait = wait
        if "count" in q:
            if self.wait is None:
                raise ControlError(400, "count is the number of records to wait for: give wait=SECONDS too")
            try:
                self.count = int(q["count"])
            except ValueError:
                self.count = 0
            if self.count < 1:
                raise ControlError(400, f"count={q['count']!r} must be a whole number of at least 1")

    async def run(
        self,
        request: web.Request,
        find: Callable[[], list[Any]],
        wait_for: Callable[[int, float, asyncio.Future[None]], Awaitable[tuple[list[Any], bool]]],
    ) -> tuple[list[Any], bool | None]:
        """The matching records, and whether the wait condition held (None: no wait asked).
        A poll whose client hangs up stops waiting at once (docs/control-api.md,
        'Long-polling: waiting without sleeping')."""
        if self.wait is None:
            return find(), None
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def client_gone() -> None:
            if not gone.done():
                gone.set_result(None)

        stop = on_client_gone(request, client_gone)
        try:
            return await wait_for(self.count, self.wait, gone)
        finally:
            stop()


async def health(request: web.Request) -> web.Response:
    return web.json_response(request.app[QUERIES].health())


MESSAGE_FILTERS = ("accountId", "direction", "from", "to", "tag")


async def list_messages(request: web.Request) -> web.Response:
    q = _query(request, (*MESSAGE_FILTERS, "wait", "count"))
    _choice(q, "direction", DIRECTIONS)
    poll = LongPoll(q)
    queries = request.app[QUERIES]
    where = MessageFilter(
        account_id=q.get("accountId"), direction=q.get("direction"), from_=q.get("from"), to=q.get("to"), tag=q.get("tag")
    )
    found, met = await poll.run(request, lambda: queries.find_messages(where), partial(queries.wait_for_messages, where))
    body: dict[str, Any] = {"messages": [message_json(m) for m in found]}
    if met is not None:
        body["conditionMet"] = met
    return web.json_response(body)


async def get_message(request: web.Request) -> web.Response:
    q = _query(request, ("accountId",))
    return web.json_response(message_detail(request.app[QUERIES], request.match_info["messageId"], q.get("accountId")))


def message_detail(queries: Queries, message_id: str, account_id: str | None) -> dict[str, Any]:
    """``GET /_emulator/messages/{id}`` once its query is read; the in-process client calls it
    too (emulator/testing/runner.py), so both answer alike."""
    message = queries.message(message_id, account_id)
    if message is None:
        where = f" in account {account_id!r}" if account_id is not None else ""
        raise ControlError(404, f"no message with id {message_id!r}{where}")
    return queries.message_detail(message)


CALLBACK_FILTERS = ("accountId", "messageId", "type", "state", "recipient")


async def list_callbacks(request: web.Request) -> web.Response:
    q = _query(request, (*CALLBACK_FILTERS, "wait", "count"))
    _choice(q, "type", CALLBACK_TYPES)
    _choice(q, "state", CALLBACK_STATES)
    poll = LongPoll(q)
    queries = request.app[QUERIES]
    where = CallbackFilter(
        account_id=q.get("accountId"),
        message_id=q.get("messageId"),
        type=q.get("type"),
        state=q.get("state"),
        recipient=q.get("recipient"),
    )
    found, met = await poll.run(
        request, lambda: queries.find_callbacks(where), partial(queries.wait_for_callbacks, where)
    )
    body: dict[str, Any] = {"callbacks": [queries.callback_json(c) for c in found]}
    if met is not None:
        body["conditionMet"] = met
    return web.json_response(body)


async def replay_callback(request: web.Request) -> web.Response:
    """Deliver one callback again, now; answers the callback with the replay as its last attempt."""
    callback_id = request.match_info["callbackId"]
    try:
        callback = await request.app[SERVICE].replay_callback(callback_id)
    except KeyError:
        raise ControlError(404, f"no callback {callback_id}") from None
    except ReplayRefused as exc:
        raise ControlError(409, f"callback {callback_id} cannot be replayed: {exc}") from None
    return web.json_response(request.app[QUERIES].callback_json(callback))


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = load_json(raw)
    except BodyError as exc:
        raise ControlError(400, exc.description) from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


async def inbound(request: web.Request) -> web.Response:
    body = await _json_body(request)
    problems = []
    from_ = body.get("from")
    to = body.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(from_, str) or not from_:
        problems.append("'from' is required: the handset's number")
    elif len(from_) > MAX_HANDSET:
        problems.append(f"'from' is longer than {MAX_HANDSET} characters: give the handset's number")
    if not isinstance(to, list) or not to or not all(isinstance(n, str) and E164.match(n) for n in to):
        problems.append("'to' is required: one of your numbers in E.164, or a list of them")
    elif len(to) > MAX_RECIPIENTS:
        # A group message has at most this many recipients, as a send does (docs/compatibility.md,
        # 'What the emulator refuses'); each owned number gets its own message listing them all.
        problems.append(f"'to' may list at most {MAX_RECIPIENTS} numbers, as a group message may")
    elif len(set(to)) != len(to):
        problems.append("'to' must not list the same number twice")
    text = body.get("text", "")
    if not isinstance(text, str):
        problems.append("'text' must be a string")
    elif len(text) > MAX_INBOUND_TEXT:
        # The longest text a handset sends (docs/control-api.md, 'Inbound messages').
        problems.append(
            f"'text' is {len(text)} characters; a handset's message holds at most {MAX_INBOUND_TEXT:,} "
            "(the longest concatenated SMS: 255 parts of 153)"
        )
    try:
        # URLs, or files given inline; those are stored and served by the emulator.
        media = parse_inbound_media(body.get("media"), request.app[QUERIES].scenario().media_size_limit)
    except ValueError as exc:
        problems.append(str(exc))
        media = []
    for key in ("applicationId", "accountId"):
        if body.get(key) is not None and not isinstance(body[key], str):
            problems.append(f"'{key}' must be a string")
        elif body.get(key) is not None and len(body[key]) > MAX_ID:
            problems.append(f"'{key}' is longer than {MAX_ID} characters")
    if problems:
        raise ControlError(400, "invalid inbound message", problems)
    assert isinstance(from_, str) and isinstance(to, list)  # checked above
    messages = request.app[SERVICE].inbound(
        InboundRequest(
            from_=from_,
            to=to,
            text=text,
            media=media,
            application_id=body.get("applicationId"),
            account_id=body.get("accountId"),
            base_url=str(request.url.origin()),
        )
    )
    return web.json_response({"messages": [message_json(m) for m in messages]}, status=201)


async def get_clock(request: web.Request) -> web.Response:
    return web.json_response(request.app[QUERIES].clock_state())


async def advance_clock(request: web.Request) -> web.Response:
    queries = request.app[QUERIES]
    _check_manual(queries)
    body = await _json_body(request)
    unknown = sorted(set(body) - {"seconds"})
    if unknown:
        raise ControlError(400, f"unknown field {', '.join(repr(k) for k in unknown)}; the body is {{\"seconds\": N}}")
    return web.json_response(await advance(queries, body.get("seconds")))


def _check_manual(queries: Queries) -> None:
    try:
        queries.check_manual()
    except ClockIsRealtime:
        raise ControlError(409, "the clock is realtime; start with --clock manual to advance it") from None


async def advance(queries: Queries, seconds: object) -> dict[str, Any]:
    """``POST /_emulator/clock/advance`` once its body is read; the in-process client calls it
    too (emulator/testing/runner.py), so both answer alike."""
    _check_manual(queries)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_ADVANCE:
        raise ControlError(400, f"'seconds' must be a number from 0 to {MAX_ADVANCE:.0f} (ten years)")
    return await queries.advance(float(seconds))


async def reset(request: web.Request) -> web.Response:
    q = _query(request, ("accountId",))
    account_id = q.get("accountId")
    if account_id == "":
        raise ControlError(400, "accountId is empty; leave it out to reset every account")
    return web.json_response(request.app[QUERIES].reset(account_id))


async def get_scenario(request: web.Request) -> web.Response:
    return web.json_response(scenario_json(request.app[QUERIES].scenario()))


async def _scenario_body(request: web.Request) -> str:
    # Bounded before it is read (docs/scenarios.md, 'Limits'); the caller parses it in a
    # thread: the API and the callbacks go on while a large scenario is checked.
    too_large = ControlError(
        413, f"the scenario is larger than {MAX_SCENARIO_BYTES:,} bytes; the running scenario stays in force",
        type="request-entity-too-large",
    )
    if (request.content_length or 0) > MAX_SCENARIO_BYTES:
        raise too_large
    raw = await request.content.read(MAX_SCENARIO_BYTES + 1)
    while len(raw) <= MAX_SCENARIO_BYTES and (more := await request.content.read(MAX_SCENARIO_BYTES + 1 - len(raw))):
        raw += more
    if len(raw) > MAX_SCENARIO_BYTES:
        raise too_large
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ControlError(400, "the scenario must be UTF-8 text (YAML or JSON)") from None


def _refused_scenario(message: str, exc: ScenarioError) -> ControlError:
    """A scenario that does not validate: 400 with each problem's path and message."""
    return ControlError(400, message, [{"path": path, "message": msg} for path, msg in exc.problems])


async def put_scenario(request: web.Request) -> web.Response:
    text = await _scenario_body(request)
    try:
        scenario = await asyncio.to_thread(load_scenario_text, text, "<request body>")
    except ScenarioError as exc:
        raise _refused_scenario("invalid scenario; the running scenario stays in force", exc) from None
    request.app[SERVICE].replace_scenario(scenario)
    return web.json_response(scenario_json(scenario))


def merge_scenario(current: Any, change: Any) -> Any:
    """``change`` laid over ``current``: objects merge key by key, ``applications`` by ``id``
    (an application named in ``change`` keeps what it does not say; a new id is added);
    anything else is replaced, and ``null`` removes a key (docs/control-api.md, 'Scenario')."""
    if isinstance(current, dict) and isinstance(change, dict):
        merged = dict(current)
        for key, value in change.items():
            if value is None:
                merged.pop(key, None)
            elif key == "applications" and isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = _merge_applications(merged[key], value)
            else:
                merged[key] = merge_scenario(merged.get(key), value)
        return merged
    return change


def _merge_applications(current: list[Any], change: list[Any]) -> list[Any]:
    merged = list(current)
    index = {a.get("id"): i for i, a in enumerate(merged) if isinstance(a, dict)}
    for application in change:
        key = application.get("id") if isinstance(application, dict) else None
        if key is not None and key in index:
            merged[index[key]] = merge_scenario(merged[index[key]], application)
        else:
            merged.append(application)
    return merged


async def patch_scenario(request: web.Request) -> web.Response:
    """Change part of the active scenario: the body (YAML or JSON) is merged into it."""
    text = await _scenario_body(request)
    try:
        change = await asyncio.to_thread(load_scenario_data, text, "<request body>") if text.strip() else {}
        if not isinstance(change, dict):
            raise ControlError(400, "the body must be an object: the parts of the scenario to change")
        current = scenario_json(request.app[SERVICE].scenario)
        scenario = await asyncio.to_thread(parse_scenario, merge_scenario(current, change), "<request body>")
    except ScenarioError as exc:
        raise _refused_scenario("invalid scenario after the change; the running scenario stays in force", exc) from None
    request.app[SERVICE].replace_scenario(scenario)
    return web.json_response(scenario_json(scenario))


def _callback_url_json(request: web.Request) -> dict[str, Any]:
    return {"url": request.app[SERVICE].callback_url}


async def get_callback_url(request: web.Request) -> web.Response:
    return web.json_response(_callback_url_json(request))


async def put_callback_url(request: web.Request) -> web.Response:
    """Where callbacks go for applications without URLs of their own (--callback-url)."""
    body = await _json_body(request)
    if "url" not in body:
        raise ControlError(400, "'url' is required: an http:// or https:// URL, or null for none")
    url = body["url"]
    try:
        if url is not None and not isinstance(url, str):
            raise ValueError("is not a string")
        request.app[SERVICE].set_callback_url(url)
    except ValueError as exc:
        raise ControlError(400, f"'url' {exc}: give an absolute http:// or https:// URL, or null for none") from None
    return web.json_response(_callback_url_json(request))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)
