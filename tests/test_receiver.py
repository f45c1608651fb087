"""emulator.testing.receiver.CallbackReceiver: answers as told, records, waits, explains timeouts."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from emulator.testing.receiver import CallbackReceiver

EVENT = {"type": "message-delivered", "to": "+15552221111", "message": {"id": "m1"}}


@pytest.fixture
async def hook():
    receiver = CallbackReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def post(url, body=None, timeout=5.0):
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=[EVENT] if body is None else body, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return r.status


async def test_answers_200_and_records(hook):
    assert hook.url.startswith("http://127.0.0.1:") and hook.url.endswith("/callbacks")
    assert await post(hook.url) == 200
    [request] = hook.requests
    assert (request.path, request.status, request.body) == ("/callbacks", 200, [EVENT])
    assert hook.events == [EVENT]
    assert hook.types() == ["message-delivered"] and hook.types("m1") == ["message-delivered"] and hook.types("m2") == []


async def test_fail_then_respond(hook):
    hook.fail(times=2, status=503).respond(404)
    assert [await post(hook.url) for _ in range(4)] == [503, 503, 404, 404]
    hook.clear()
    assert hook.requests == [] and await post(hook.url) == 200


async def test_hang_until_the_sender_gives_up(hook):
    hook.hang(times=1)
    with pytest.raises(TimeoutError):
        await post(hook.url, timeout=0.2)
    assert [r.status for r in hook.requests] == [None]
    assert await post(hook.url) == 200  # only the next request hung
    hook.clear()  # releases the hung handler


async def test_clear_releases_hung_requests_and_otherwise_leaves_the_loop_alone(hook, monkeypatch):
    calls = []
    loop = asyncio.get_running_loop()
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counting(callback, *args, **kwargs):
        if getattr(callback, "__name__", "") == "swap":  # the receiver's own (to_thread makes others)
            calls.append(callback)
        return call_soon_threadsafe(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    await asyncio.to_thread(hook.clear)  # from another thread, as the pytest plugin clears it
    assert calls == []  # nothing hung: no call into the receiver's loop
    hook.hang(times=1)
    with pytest.raises(TimeoutError):
        await post(hook.url, timeout=0.2)
    assert hook._hung == 1
    await asyncio.to_thread(hook.clear)
    assert len(calls) == 1
    for _ in range(20):  # the released handler finishes within a few turns of the loop
        if hook._hung == 0:
            break
        await asyncio.sleep(0)
    assert hook._hung == 0


async def test_records_a_body_that_is_not_json(hook):
    async with aiohttp.ClientSession() as session, session.post(hook.url, data=b"not json") as response:
        assert response.status == 200
    assert hook.requests[0].body == "not json" and hook.events == []


async def test_wait_for_returns_once_enough_arrived(hook):
    await post(hook.url)
    assert len(await hook.wait_for_async(1, timeout=1)) == 1


async def test_wait_for_timeout_lists_what_arrived(hook):
    hook.fail(times=1, status=500)
    await post(hook.url)
    with pytest.raises(AssertionError) as failed:
        await hook.wait_for_async(2, timeout=0.05)
    assert str(failed.value) == (
        f"waited 0.05s for 2 callback request(s) at {hook.url}; 1 arrived:\n  500 /callbacks ['message-delivered']"
    )


async def test_require_credentials_answers_the_challenge_flow(hook):
    hook.require_credentials("hook", "secret").fail(times=1, status=302)
    auth = {"Authorization": "Basic aG9vazpzZWNyZXQ="}  # hook:secret
    async with aiohttp.ClientSession() as session:
        async with session.post(hook.url, json=[EVENT]) as r:
            assert (r.status, r.headers.get("WWW-Authenticate")) == (401, 'Basic realm="callbacks"')
        async with session.post(hook.url, json=[EVENT], headers=auth, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (302, hook.url + "/moved")
        async with session.post(hook.url, json=[EVENT], headers=auth) as r:
            assert r.status == 200
    assert [r.status for r in hook.requests] == [401, 302, 200]
    hook.require_credentials("hook", "secret", challenge=False)
    async with aiohttp.ClientSession() as session:
        async with session.post(hook.url, json=[EVENT]) as r:
            assert (r.status, r.headers.get("WWW-Authenticate")) == (401, None)
    hook.clear()
    assert await post(hook.url) == 200
