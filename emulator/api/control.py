"""The control API (``/_emulator/...``): what tests and tools use to drive and inspect."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..clock import ManualClock, isoformat
from ..keys import SERVICE, SETTINGS
from ..media import parse_inbound_media
from ..models import Attempt, Callback, Message
from ..scenario import ScenarioError, load_scenario_text
from ..service import InboundRequest
from ..wire import E164


class ControlError(Exception):
    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.message}
        if self.details is not None:
            body["details"] = self.details
        return web.json_response(body, status=self.status)


def _t(t: float | None) -> str | None:
    return None if t is None else isoformat(t)


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "time": _t(a.time),
        "statusCode": a.status,
        "error": a.error,
        "durationMs": a.duration_ms,
        "authorization": a.authorization,
    }


def callback_json(c: Callback) -> dict[str, Any]:
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
        "attempts": [attempt_json(a) for a in c.attempts],
        "event": c.event,
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


async def list_messages(request: web.Request) -> web.Response:
    q = request.query
    service = request.app[SERVICE]
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
    return web.json_response({"messages": [message_json(m) for m in out]})


async def get_message(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    message = service.store.get_message(request.match_info["messageId"])
    if message is None:
        raise ControlError(404, f"no message with id {request.match_info['messageId']!r}")
    body = message_json(message)
    body["callbacks"] = [callback_json(c) for c in service.store.callbacks_for_message(message.id)]
    return web.json_response(body)


async def list_callbacks(request: web.Request) -> web.Response:
    q = request.query
    service = request.app[SERVICE]
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
    found.sort(key=lambda c: (c.planned_at, c.order))
    return web.json_response({"callbacks": [callback_json(c) for c in found]})


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
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ControlError(400, "'seconds' must be a non-negative number")
    await service.scheduler.advance(float(seconds))
    return web.json_response(_clock_json(request))


async def reset(request: web.Request) -> web.Response:
    account_id = request.query.get("accountId")
    request.app[SERVICE].reset(account_id)
    return web.json_response({"reset": account_id or "all"})


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


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as exc:
        return exc.response()
