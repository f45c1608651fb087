"""A callback that cannot be attempted is a failed attempt, never a callback left pending with
nothing planned (docs/callbacks.md, 'Delivery rules'); a bug survived shows in
/_emulator/health (docs/testing.md, 'Internal errors')."""

from __future__ import annotations

from typing import Any

from support import ACCOUNT, AUTH, Receiver, advance

from emulator.keys import SERVICE

SMS = {"applicationId": "app", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}


async def callbacks(client: Any) -> list[dict[str, Any]]:
    return (await (await client.get("/_emulator/callbacks", params={"accountId": ACCOUNT})).json())["callbacks"]


async def health(client: Any) -> dict[str, Any]:
    return await (await client.get("/_emulator/health")).json()


async def test_an_unexpected_error_while_attempting_is_a_failed_attempt_then_retried(make_client, receiver: Receiver):
    client = await make_client()
    dispatcher = client.server.app[SERVICE].dispatcher
    post = dispatcher.post
    calls = 0

    async def broken_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return await post(*args, **kwargs)

    dispatcher.post = broken_once  # type: ignore[method-assign]
    assert (await health(client))["internalErrors"] == {"count": 0, "recent": []}
    assert (await client.post(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers=AUTH)).status == 202
    await advance(client, 10)
    [callback] = await callbacks(client)
    assert callback["state"] == "pending"
    [attempt] = callback["attempts"]
    assert attempt["statusCode"] is None and attempt["error"] == "internal error: RuntimeError: boom"
    assert callback["nextAttemptAt"] is not None  # the retry schedule goes on: 1 min later
    errors = (await health(client))["internalErrors"]
    assert errors["count"] == 1 and errors["recent"][0]["error"] == "RuntimeError: boom"
    assert errors["recent"][0]["where"] == f"callback {callback['id']}"
    await advance(client, 60)
    [callback] = await callbacks(client)
    assert callback["state"] == "delivered"
    assert [a["number"] for a in callback["attempts"]] == [1, 2]
    assert len(receiver.requests) == 1


async def test_a_url_that_cannot_be_attempted_is_journaled_and_retried(make_client):
    client = await make_client({"applications": [{"id": "app", "retrySchedule": [0, 60]}]}, callback_url=None)
    # Refused in scenarios and --callback-url; the in-process runner's set_callback_url takes it.
    client.server.app[SERVICE].callback_url = "http://xn--/"
    assert (await client.post(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers=AUTH)).status == 202
    await advance(client, 10)
    [callback] = await callbacks(client)
    assert callback["state"] == "pending" and callback["attempts"][0]["error"].startswith("invalid URL")
    await advance(client, 60)
    [callback] = await callbacks(client)
    assert callback["state"] == "exhausted" and len(callback["attempts"]) == 2
    assert (await health(client))["internalErrors"]["count"] == 0
