"""The control API (/_emulator/...): filters, long-polls, per-account reset, errors, OpenAPI."""

from __future__ import annotations

import asyncio

import pytest
from support import AUTH, advance, send

from emulator.control.openapi import OPENAPI

SMS = {"applicationId": "app-1", "to": ["+15552221111"], "from": "+15554443333", "text": "Hello", "tag": "t1"}
MMS = {**SMS, "media": ["https://example.com/cat.png"]}


async def _json(resp, status=200):
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _error(resp, status):
    body = await _json(resp, status)
    assert set(body) <= {"type", "description", "details"}
    assert body["type"] and body["description"]
    return body


# -- OpenAPI ---------------------------------------------------------------------------------


async def test_every_control_route_is_in_the_openapi_document(client):
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/_emulator") and route.method != "HEAD"
    }
    described = {(method, path) for path, item in OPENAPI["paths"].items() for method in item}
    assert not routes - described, f"describe these control routes in emulator/control/openapi.py: {sorted(routes - described)}"
    assert not described - routes, f"described but not served: {sorted(described - routes)}"


async def test_openapi_document_is_served_and_resolves(client):
    doc = await _json(await client.get("/_emulator/openapi.json"))
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


TOKEN = "control-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
OPERATIONS = [(method, path) for path, item in OPENAPI["paths"].items() for method in item]


def _address(path: str) -> str:
    """A concrete address for a described path (the parameters need not exist)."""
    names = {"messageId": "m1", "callbackId": "cb-m1-0", "name": "app.js", "accountId": "1", "mediaId": "x.png"}
    for name, value in names.items():
        path = path.replace("{" + name + "}", value)
    return path


def _declared(method: str, path: str, status: int) -> None:
    responses = OPENAPI["paths"][path][method]["responses"]
    assert str(status) in responses, (
        f"{method.upper()} {path} answers {status}, which emulator/control/openapi.py does not declare"
    )


async def _status_of_declared_length(client, method: str, address: str, length: int) -> int:
    """The status answered to a request head declaring a body of ``length`` bytes, never sent."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(
            f"{method.upper()} {address} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {BEARER['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_the_refusals_every_route_makes_are_declared(make_client, method, path):
    """The checks in front of every handler (emulator/web/exposure.py, emulator/web/errors.py)
    answer what the OpenAPI document declares for each operation."""
    from emulator.app import CLIENT_MAX_SIZE

    client = await make_client(control_token=TOKEN)
    address = _address(path)
    without_token = await client.request(method, address)
    if path == "/_emulator/health":  # open, for Docker's HEALTHCHECK (docs/security.md)
        assert without_token.status == 200
    else:
        assert without_token.status == 401, await without_token.text()
        assert without_token.headers["WWW-Authenticate"].startswith("Bearer")
        _declared(method, path, 401)
    rebound = await client.request(method, address, headers={**BEARER, "Host": "attacker.example"})
    assert rebound.status == 403
    _declared(method, path, 403)
    if method != "get":
        cross_origin = await client.request(method, address, headers={**BEARER, "Origin": "http://attacker.example"})
        assert cross_origin.status == 403
        _declared(method, path, 403)
    assert await _status_of_declared_length(client, method, address, CLIENT_MAX_SIZE + 1) == 413
    _declared(method, path, 413)


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs", "status"),
    [
        ("get", "/_emulator/messages/{messageId}", {"params": {"messageID": "x"}}, 400),
        ("post", "/_emulator/messages/{messageId}/read", {"data": "[1]"}, 400),
        ("get", "/_emulator/ui/events", {"params": {"since": "1"}}, 400),
        ("put", "/_emulator/scenario", {"data": "# x\n" * 40_000}, 413),
        ("patch", "/_emulator/scenario", {"data": "# x\n" * 40_000}, 413),
        ("get", "/_emulator/ui", {"params": {"token": TOKEN}, "allow_redirects": False}, 303),
    ],
)
async def test_the_answers_of_handlers_are_declared(make_client, method, path, request_kwargs, status):
    client = await make_client(control_token=TOKEN)
    headers = {} if path == "/_emulator/ui" else BEARER
    resp = await client.request(method, _address(path), headers=headers, **request_kwargs)
    assert resp.status == status, await resp.text()
    _declared(method, path, status)


async def test_an_error_of_the_emulators_own_is_declared(client, monkeypatch):
    from emulator.queries import Queries

    def broken(self):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Queries, "clock_state", broken)
    resp = await client.get("/_emulator/clock")
    assert resp.status == 500
    _declared("get", "/_emulator/clock", 500)


async def test_response_fields_match_the_openapi_schemas(client, receiver):
    """Every field the handlers emit is described, and every required one is there."""
    schemas = OPENAPI["components"]["schemas"]

    def check(obj, name):
        schema = schemas[name]
        assert set(obj) <= set(schema["properties"]), (name, set(obj) - set(schema["properties"]))
        assert set(schema.get("required", [])) <= set(obj), name

    message_id = (await (await send(client, MMS)).json())["id"]
    receiver.statuses = [500]
    await advance(client, 10)
    message = await _json(await client.get(f"/_emulator/messages/{message_id}"))
    callbacks = message.pop("callbacks")
    check(message, "Message")
    for recipient in message["recipients"]:
        check(recipient, "Recipient")
    for callback in callbacks:
        check(callback, "Callback")
        for attempt in callback["attempts"]:
            check(attempt, "Attempt")
    check(await _json(await client.get("/_emulator/clock")), "Clock")
    check(await _json(await client.get("/_emulator/health")), "Health")
    check(await _json(await client.post("/_emulator/reset")), "ResetResult")
    error = await _json(await client.get("/_emulator/messages/nope"), 404)
    check(error, "Error")


# -- messages --------------------------------------------------------------------------------


async def test_messages_filters(client):
    await send(client, SMS, account="111")
    await send(client, {**SMS, "to": ["+15552220000"], "tag": "other"}, account="222")
    await client.post("/_emulator/inbound", json={"from": "+15559998888", "to": "+15554443333", "accountId": "111"})

    async def ids(query):
        body = await _json(await client.get("/_emulator/messages", params=query))
        return [(m["accountId"], m["direction"], m["from"], m["to"]) for m in body["messages"]]

    assert len(await ids({})) == 3
    assert await ids({"accountId": "222"}) == [("222", "out", "+15554443333", ["+15552220000"])]
    assert await ids({"accountId": "111", "direction": "in"}) == [("111", "in", "+15559998888", ["+15554443333"])]
    assert await ids({"to": "+15552220000"}) == [("222", "out", "+15554443333", ["+15552220000"])]
    assert await ids({"from": "+15559998888"}) == [("111", "in", "+15559998888", ["+15554443333"])]
    assert [a for a, *_ in await ids({"tag": "t1"})] == ["111"]
    assert await ids({"accountId": "333"}) == []


@pytest.mark.parametrize(
    "query, words",
    [
        ({"direction": "sideways"}, "direction='sideways' is not one of in, out"),
        ({"messageID": "x"}, "unknown query parameter 'messageID'"),
        ({"count": "2"}, "give wait=SECONDS too"),
        ({"wait": "-1"}, "wait='-1' must be a number of seconds from 0 to 60"),
        ({"wait": "61"}, "from 0 to 60"),
        ({"wait": "nan"}, "from 0 to 60"),
        ({"wait": "soon"}, "from 0 to 60"),
        ({"wait": "1", "count": "0"}, "count='0' must be a whole number of at least 1"),
        ({"wait": "1", "count": "two"}, "whole number"),
    ],
)
async def test_bad_message_filters_are_clear_400s(client, query, words):
    body = await _error(await client.get("/_emulator/messages", params=query), 400)
    assert body["type"] == "invalid-request"
    assert words in body["description"]


async def test_repeated_parameter_is_400(client):
    body = await _error(await client.get("/_emulator/messages?to=+1&to=+2"), 400)
    assert "'to' given more than once" in body["description"]


async def test_one_message_with_its_callbacks_in_planned_order(client):
    message_id = (await (await send(client, MMS)).json())["id"]
    await advance(client, 60)
    body = await _json(await client.get(f"/_emulator/messages/{message_id}"))
    assert body["id"] == message_id
    assert body["text"] == "Hello" and body["media"] == MMS["media"]
    assert [c["type"] for c in body["callbacks"]] == ["message-sending", "message-delivered"]
    assert body["recipients"][0]["status"] == "DELIVERED"


async def test_callback_ids_name_their_message_and_place(client):
    message_id = (await (await send(client, MMS)).json())["id"]
    body = await _json(await client.get(f"/_emulator/messages/{message_id}"))
    assert [c["id"] for c in body["callbacks"]] == [f"cb-{message_id}-0", f"cb-{message_id}-1"]


async def test_one_message_is_scoped_by_account_when_asked(client):
    message_id = (await (await send(client, SMS, account="111")).json())["id"]
    await _json(await client.get(f"/_emulator/messages/{message_id}", params={"accountId": "111"}))
    body = await _error(await client.get(f"/_emulator/messages/{message_id}", params={"accountId": "222"}), 404)
    assert body == {"type": "not-found", "description": f"no message with id {message_id!r} in account '222'"}


# -- callbacks -------------------------------------------------------------------------------


async def test_callback_filters(client, receiver):
    first = (await (await send(client, MMS, account="111")).json())["id"]
    await send(client, {**SMS, "to": ["+15550104720"]}, account="222")
    receiver.statuses = [503]  # the first callback to arrive fails once
    await advance(client, 30)

    async def kinds(query):
        body = await _json(await client.get("/_emulator/callbacks", params=query))
        return [(c["accountId"], c["type"], c["state"]) for c in body["callbacks"]]

    assert await kinds({"messageId": first}) == [("111", "message-sending", "pending"), ("111", "message-delivered", "delivered")]
    assert await kinds({"accountId": "222"}) == [("222", "message-failed", "delivered")]
    assert await kinds({"type": "message-failed"}) == [("222", "message-failed", "delivered")]
    assert await kinds({"state": "pending"}) == [("111", "message-sending", "pending")]
    assert await kinds({"recipient": "+15550104720"}) == [("222", "message-failed", "delivered")]
    assert await kinds({"messageId": first, "accountId": "222"}) == []
    [pending] = (await _json(await client.get("/_emulator/callbacks", params={"state": "pending"})))["callbacks"]
    assert [a["statusCode"] for a in pending["attempts"]] == [503]
    assert pending["nextAttemptAt"] is not None


@pytest.mark.parametrize(
    "query, words",
    [
        ({"state": "done"}, "state='done' is not one of pending, delivered, exhausted, skipped, cancelled"),
        ({"type": "message-unread"}, "type='message-unread' is not one of"),
        ({"message_id": "x"}, "accepts accountId, messageId, type, state, recipient, wait, count"),
    ],
)
async def test_bad_callback_filters_are_clear_400s(client, query, words):
    body = await _error(await client.get("/_emulator/callbacks", params=query), 400)
    assert words in body["description"]


# -- long-poll -------------------------------------------------------------------------------


async def test_long_poll_answers_at_once_when_the_condition_already_holds(client):
    message_id = (await (await send(client, SMS)).json())["id"]
    await advance(client, 5)
    # wait=60 would hold the test for a minute if the condition were not checked first.
    query = {"messageId": message_id, "state": "delivered", "wait": "60"}
    body = await _json(await asyncio.wait_for(client.get("/_emulator/callbacks", params=query), 5))
    assert body["conditionMet"] is True
    assert [c["type"] for c in body["callbacks"]] == ["message-delivered"]


async def test_long_poll_wakes_up_when_a_callback_is_delivered(client):
    message_id = (await (await send(client, MMS)).json())["id"]
    query = {"messageId": message_id, "state": "delivered", "count": "2", "wait": "60"}
    poll = asyncio.create_task(client.get("/_emulator/callbacks", params=query))
    await advance(client, 1)  # only message-sending is due: one of two
    assert not poll.done()
    await advance(client, 1)
    body = await _json(await asyncio.wait_for(poll, 5))
    assert body["conditionMet"] is True
    assert [c["type"] for c in body["callbacks"]] == ["message-sending", "message-delivered"]


async def test_long_poll_times_out_with_what_there_is(client):
    message_id = (await (await send(client, MMS)).json())["id"]
    await advance(client, 1)
    query = {"messageId": message_id, "state": "delivered", "count": "2", "wait": "0.05"}
    body = await _json(await client.get("/_emulator/callbacks", params=query))
    assert body["conditionMet"] is False
    assert [c["type"] for c in body["callbacks"]] == ["message-sending"]


async def test_without_wait_there_is_no_condition(client):
    body = await _json(await client.get("/_emulator/callbacks"))
    assert body == {"callbacks": []}


async def test_long_poll_on_messages_wakes_up_on_inbound(client, long_poll_waiting):
    query = {"direction": "in", "from": "+15559998888", "wait": "60"}
    waiting = long_poll_waiting(client)
    poll = asyncio.create_task(client.get("/_emulator/messages", params=query))
    await asyncio.wait_for(waiting.wait(), 10)  # the poll waits before the message exists
    await client.post("/_emulator/inbound", json={"from": "+15559998888", "to": "+15554443333", "text": "hi"})
    body = await _json(await asyncio.wait_for(poll, 5))
    assert body["conditionMet"] is True
    assert [m["text"] for m in body["messages"]] == ["hi"]


# -- inbound ---------------------------------------------------------------------------------


async def test_inbound_creates_a_message_and_its_callback(client, receiver):
    resp = await client.post(
        "/_emulator/inbound", json={"from": "+15559998888", "to": "+15554443333", "text": "STOP", "accountId": "111"}
    )
    [message] = (await _json(resp, 201))["messages"]
    assert message["direction"] == "in" and message["accountId"] == "111"
    await advance(client, 0)
    [event] = receiver.events
    assert event["type"] == "message-received"
    assert event["message"]["text"] == "STOP"


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"to": "+15554443333"}, "'from' is required"),
        ({"from": "+15559998888"}, "'to' is required"),
        ({"from": "+15559998888", "to": ["555"]}, "'to' is required"),
        ({"from": "+15559998888", "to": "+15554443333", "text": 5}, "'text' must be a string"),
        ({"from": "+15559998888", "to": "+15554443333", "media": "x"}, "'media' must be a list of URLs"),
        ({"from": "+15559998888", "to": "+15554443333", "accountId": 1}, "'accountId' must be a string"),
    ],
)
async def test_invalid_inbound_lists_each_problem(client, body, problem):
    error = await _error(await client.post("/_emulator/inbound", json=body), 400)
    assert error["description"] == "invalid inbound message"
    assert any(problem in p for p in error["details"])


@pytest.mark.parametrize("raw", [b"{nope", b"[1, 2]", b"\xff\xfe"])
async def test_inbound_body_must_be_a_json_object(client, raw):
    await _error(await client.post("/_emulator/inbound", data=raw), 400)


# -- clock -----------------------------------------------------------------------------------


async def test_clock_reads_and_advances(client):
    before = await _json(await client.get("/_emulator/clock"))
    assert before["mode"] == "manual"
    await send(client, SMS)
    planned = await _json(await client.get("/_emulator/clock"))
    assert planned["pending"] == 1 and planned["nextDue"] is not None
    after = await advance(client, 3600)
    assert after["epoch"] == pytest.approx(before["epoch"] + 3600)
    assert after["pending"] == 0 and after["nextDue"] is None


@pytest.mark.parametrize(
    "raw",
    [b'{"seconds": -1}', b'{"seconds": true}', b'{"seconds": "60"}', b'{"seconds": Infinity}', b'{"seconds": NaN}',
     b'{"seconds": 1e12}', b'{"seconds": 1, "minutes": 2}', b"{}", b"[60]"],
)  # fmt: skip
async def test_bad_advance_is_a_clear_400(client, raw):
    body = await _error(await client.post("/_emulator/clock/advance", data=raw), 400)
    assert "seconds" in body["description"] or "JSON object" in body["description"]


async def test_realtime_clock_cannot_be_advanced(make_client):
    realtime = await make_client(clock="realtime")
    body = await _error(await realtime.post("/_emulator/clock/advance", json={"seconds": 1}), 409)
    assert body["type"] == "conflict" and "--clock manual" in body["description"]


# -- reset -----------------------------------------------------------------------------------


async def test_reset_one_account_leaves_the_others_alone(client, receiver):
    a1 = (await (await send(client, SMS, account="111")).json())["id"]
    a2 = (await (await send(client, MMS, account="111")).json())["id"]
    b1 = (await (await send(client, MMS, account="222")).json())["id"]
    await advance(client, 0.5)  # the MMS message-sending callbacks are delivered, the rest pending
    body = await _json(await client.post("/_emulator/reset", params={"accountId": "111"}))
    assert body == {"reset": "111", "messages": 2, "callbacks": 3, "cancelled": 2}

    for message_id in (a1, a2):
        await _error(await client.get(f"/_emulator/messages/{message_id}"), 404)
    assert (await _json(await client.get("/_emulator/callbacks", params={"accountId": "111"})))["callbacks"] == []
    await _json(await client.get(f"/_emulator/messages/{b1}"))

    receiver.requests.clear()
    await advance(client, 60)
    # Account 111's pending callbacks were cancelled; account 222's still arrive.
    assert [(e["type"], e["message"]["id"]) for e in receiver.events] == [("message-delivered", b1)]
    clock = await _json(await client.get("/_emulator/clock"))
    assert clock["pending"] == 0


async def test_reset_stops_retries_of_that_account_only(client, receiver):
    a = (await (await send(client, SMS, account="111")).json())["id"]
    b = (await (await send(client, SMS, account="222")).json())["id"]
    receiver.statuses = [500, 500]
    await advance(client, 1)  # both first attempts fail; both will be retried
    await client.post("/_emulator/reset", params={"accountId": "111"})
    receiver.requests.clear()
    await advance(client, 86400)
    assert [e["message"]["id"] for e in receiver.events] == [b]
    assert a != b


async def test_reset_everything(client):
    await send(client, SMS, account="111")
    await send(client, SMS, account="222")
    body = await _json(await client.post("/_emulator/reset"))
    assert body == {"reset": "all", "messages": 2, "callbacks": 2, "cancelled": 2}
    assert (await _json(await client.get("/_emulator/messages")))["messages"] == []
    assert (await _json(await client.get("/_emulator/clock")))["pending"] == 0


async def test_reset_of_an_unknown_account_is_harmless(client):
    await send(client, SMS, account="111")
    body = await _json(await client.post("/_emulator/reset", params={"accountId": "999"}))
    assert body == {"reset": "999", "messages": 0, "callbacks": 0, "cancelled": 0}
    assert len((await _json(await client.get("/_emulator/messages")))["messages"]) == 1


@pytest.mark.parametrize("query", ["?accountId=", "?account=1"])
async def test_bad_reset_parameters(client, query):
    await _error(await client.post("/_emulator/reset" + query), 400)


# -- scenario --------------------------------------------------------------------------------


async def test_scenario_put_yaml_then_get(client):
    resp = await client.put("/_emulator/scenario", data="name: quirky\ngroupInvalidNumber: legacy\n")
    body = await _json(resp)
    assert body["name"] == "quirky" and body["groupInvalidNumber"] == "legacy"
    assert (await _json(await client.get("/_emulator/scenario")))["name"] == "quirky"
    assert (await _json(await client.get("/_emulator/health")))["scenario"] == "quirky"


async def test_invalid_scenario_names_each_problem_and_keeps_the_old_one(client):
    body = await _error(await client.put("/_emulator/scenario", data='{"name": "x", "groupInvalidNumber": "maybe", "bogus": 1}'), 400)
    assert "stays in force" in body["description"]
    assert {d["path"] for d in body["details"]} == {"groupInvalidNumber", "bogus"}
    assert (await _json(await client.get("/_emulator/scenario")))["name"] == "default"


async def test_scenario_that_is_not_yaml(client):
    body = await _error(await client.put("/_emulator/scenario", data="a: [1"), 400)
    assert "not valid YAML" in body["details"][0]["message"]


# -- unknown endpoints -----------------------------------------------------------------------


async def test_unknown_control_path_is_a_json_404(client):
    body = await _error(await client.get("/_emulator/nothing-here"), 404)
    assert body["type"] == "not-found" and "/_emulator/openapi.json" in body["description"]


async def test_wrong_method_on_control_path_is_a_json_405(client):
    resp = await client.delete("/_emulator/clock")
    body = await _error(resp, 405)
    assert resp.headers["Allow"] == "GET, HEAD"
    assert body["description"] == "DELETE is not allowed on /_emulator/clock; use GET, HEAD"


async def test_reset_one_account_forgets_its_media_only(client):
    for account in ("111", "222"):
        resp = await client.put(
            f"/api/v2/users/{account}/media/pic.png", data=b"\x89PNG", headers={**AUTH, "Content-Type": "image/png"}
        )
        assert resp.status == 204, await resp.text()
    await _json(await client.post("/_emulator/reset", params={"accountId": "111"}))
    gone = await client.get("/api/v2/users/111/media/pic.png", headers=AUTH)
    kept = await client.get("/api/v2/users/222/media/pic.png", headers=AUTH)
    assert (gone.status, kept.status) == (404, 200)
    assert await kept.read() == b"\x89PNG"
