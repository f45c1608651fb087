"""The control API (``/_emulator/...``): what tests and tools use to drive and inspect."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from emulator.control.openapi import OPENAPI
from emulator.delivery.clock import ManualClock, isoformat
from emulator.keys import SERVICE
from emulator.messaging.wire import E164
from emulator.scenarios.format import ScenarioError, load_scenario_text
from emulator.service import InboundRequest
from emulator.state.media import parse_inbound_media
from emulator.state.models import Attempt, Callback, Message
from emulator.web.errors import ControlError

# Longest long-poll, in real seconds: beyond this, proxies and test runners time out first.
MAX_WAIT = 60.0
# Longest single clock advance: ten years of virtual time is more than any test needs and
# keeps every timestamp printable.
MAX_ADVANCE = 10 * 366 * 86400.0

DIRECTIONS = ("in", "out")
CALLBACK_STATES = ("pending", "delivered", "exhausted", "skipped", "cancelled")
CALLBACK_TYPES = ("message-sending", "message-sent", "message-delivered", "message-failed", "message-received")


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

    async def run(self, request: web.Request, find: Any) -> tuple[list[Any], bool | None]:
        """The matching records, and whether the wait condition held (None: no wait asked)."""
        if self.wait is None:
            return find(), None
        found: list[Any] = []

        def enough() -> bool:
            nonlocal found
            found = find()
            return len(found) >= self.count

        met = await request.app[SERVICE].changes.wait_until(enough, self.wait)
        return found, met


def _t(t: float | None) -> str | None:
    return None if t is None else isoformat(t)


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "time": _t(a.time),
        "statusCode": a.status,
        "error": a.error,
        "durationMs": a.duration_ms,
        "authorization": a.authorization,
        "number": a.number,
        "duplicate": a.duplicate,
    }


def callback_json(c: Callback, event: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": c.id,
        "accountId": c.account_id,
        "messageId": c.message_id,
        "applicationId": c.application_id,
        "type": c.type,
        "recipient": c.recipient,
        "url": c.url,
        "state": c.state,
        "plannedAt": _t(c.planned_at),
        "nextAttemptAt": _t(c.next_attempt_at),
        "heldBy": c.held_by,
        "attempts": [attempt_json(a) for a in c.attempts],
        "event": event,
    }


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "accountId": m.account_id,
        "applicationId": m.application_id,
        "direction": m.direction,
        "kind": m.kind,
        "from": m.from_,
        "to": list(m.to),
        "owner": m.owner,
        "time": _t(m.time),
        "text": m.text,
        "media": list(m.media),
        "tag": m.tag,
        "priority": m.priority,
        "expiration": m.expiration,
        "segmentCount": m.segment_count,
        "encoding": m.encoding,
        "recipients": [
            {
                "to": r.to,
                "status": r.status,
                "errorCode": r.error_code,
                "description": r.description,
                "carrierName": r.carrier_name,
                "updatedAt": _t(r.updated_at),
            }
            for r in m.recipients.values()
        ],
    }


async def health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response(
        {
            "status": "ok",
            "clock": "manual" if service.clock.manual else "realtime",
            "now": _t(service.clock.now()),
            "scenario": service.scenario.name,
            "pendingCallbacks": service.callbacks.pending(),
        }
    )


MESSAGE_FILTERS = ("accountId", "direction", "from", "to", "tag")


def find_messages(service: Any, q: dict[str, str]) -> list[Message]:
    out = []
    for m in service.store.messages(q.get("accountId")):
        if "direction" in q and m.direction != q["direction"]:
            continue
        if "from" in q and m.from_ != q["from"]:
            continue
        if "to" in q and q["to"] not in m.to:
            continue
        if "tag" in q and m.tag != q["tag"]:
            continue
        out.append(m)
    out.sort(key=lambda m: m.time)
    return out


async def list_messages(request: web.Request) -> web.Response:
    q = _query(request, (*MESSAGE_FILTERS, "wait", "count"))
    _choice(q, "direction", DIRECTIONS)
    poll = LongPoll(q)
    service = request.app[SERVICE]
    found, met = await poll.run(request, lambda: find_messages(service, q))
    body: dict[str, Any] = {"messages": [message_json(m) for m in found]}
    if met is not None:
        body["conditionMet"] = met
    return web.json_response(body)


async def get_message(request: web.Request) -> web.Response:
    q = _query(request, ("accountId",))
    service = request.app[SERVICE]
    message_id = request.match_info["messageId"]
    message = service.store.get_message(message_id)
    if message is None or ("accountId" in q and message.account_id != q["accountId"]):
        where = f" in account {q['accountId']!r}" if "accountId" in q else ""
        raise ControlError(404, f"no message with id {message_id!r}{where}")
    body = message_json(message)
    callbacks = service.store.callbacks_for_message(message.id)
    callbacks.sort(key=lambda c: (c.planned_at, c.order))
    body["callbacks"] = [callback_json(c, service.event(c)) for c in callbacks]
    return web.json_response(body)


CALLBACK_FILTERS = ("accountId", "messageId", "type", "state", "recipient")


def find_callbacks(service: Any, q: dict[str, str]) -> list[Callback]:
    found: list[Callback]
    if "messageId" in q:
        found = service.store.callbacks_for_message(q["messageId"])
        if "accountId" in q:
            found = [c for c in found if c.account_id == q["accountId"]]
    else:
        found = list(service.store.callbacks(q.get("accountId")))
    if "type" in q:
        found = [c for c in found if c.type == q["type"]]
    if "state" in q:
        found = [c for c in found if c.state == q["state"]]
    if "recipient" in q:
        found = [c for c in found if c.recipient == q["recipient"]]
    found.sort(key=lambda c: (c.planned_at, c.order))
    return found


async def list_callbacks(request: web.Request) -> web.Response:
    q = _query(request, (*CALLBACK_FILTERS, "wait", "count"))
    _choice(q, "type", CALLBACK_TYPES)
    _choice(q, "state", CALLBACK_STATES)
    poll = LongPoll(q)
    service = request.app[SERVICE]
    found, met = await poll.run(request, lambda: find_callbacks(service, q))
    body: dict[str, Any] = {"callbacks": [callback_json(c, service.event(c)) for c in found]}
    if met is not None:
        body["conditionMet"] = met
    return web.json_response(body)


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ControlError(400, "the body is not valid JSON") from None
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
    if not isinstance(to, list) or not to or not all(isinstance(n, str) and E164.match(n) for n in to):
        problems.append("'to' is required: one of your numbers in E.164, or a list of them")
    text = body.get("text", "")
    if not isinstance(text, str):
        problems.append("'text' must be a string")
    try:
        # URLs, or files given inline; those are stored and served by the emulator.
        media = parse_inbound_media(body.get("media"))
    except ValueError as exc:
        problems.append(str(exc))
        media = []
    for key in ("applicationId", "accountId"):
        if body.get(key) is not None and not isinstance(body[key], str):
            problems.append(f"'{key}' must be a string")
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


def _clock_json(request: web.Request) -> dict[str, Any]:
    service = request.app[SERVICE]
    clock = service.clock
    return {
        "mode": "manual" if clock.manual else "realtime",
        "now": _t(clock.now()),
        "epoch": clock.now(),
        "timeScale": getattr(clock, "scale", None),
        "nextDue": _t(service.scheduler.next_due()),
        "pending": service.scheduler.pending(),
    }


async def get_clock(request: web.Request) -> web.Response:
    return web.json_response(_clock_json(request))


async def advance_clock(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if not isinstance(service.clock, ManualClock):
        raise ControlError(409, "the clock is realtime; start with --clock manual to advance it")
    body = await _json_body(request)
    unknown = sorted(set(body) - {"seconds"})
    if unknown:
        raise ControlError(400, f"unknown field {', '.join(repr(k) for k in unknown)}; the body is {{\"seconds\": N}}")
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_ADVANCE:
        raise ControlError(400, f"'seconds' must be a number from 0 to {MAX_ADVANCE:.0f} (ten years)")
    await service.scheduler.advance(float(seconds))
    return web.json_response(_clock_json(request))


async def reset(request: web.Request) -> web.Response:
    q = _query(request, ("accountId",))
    account_id = q.get("accountId")
    if account_id == "":
        raise ControlError(400, "accountId is empty; leave it out to reset every account")
    service = request.app[SERVICE]
    messages = sum(1 for _ in service.store.messages(account_id))
    dropped = service.reset(account_id)
    return web.json_response(
        {
            "reset": account_id or "all",
            "messages": messages,
            "callbacks": len(dropped),
            "cancelled": sum(1 for c in dropped if c.state == "pending"),
        }
    )


async def get_scenario(request: web.Request) -> web.Response:
    scenario = request.app[SERVICE].scenario
    return web.json_response(scenario.model_dump(mode="json", by_alias=True, exclude_none=True))


async def put_scenario(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ControlError(400, "the scenario must be UTF-8 text (YAML or JSON)") from None
    try:
        scenario = load_scenario_text(text, "<request body>")
    except ScenarioError as exc:
        raise ControlError(
            400,
            "invalid scenario; the running scenario stays in force",
            [{"path": path, "message": msg} for path, msg in exc.problems],
        ) from None
    request.app[SERVICE].replace_scenario(scenario)
    return web.json_response(scenario.model_dump(mode="json", by_alias=True, exclude_none=True))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)
