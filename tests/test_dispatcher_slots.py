"""The dispatcher's slots and its connect path: every attempt really connects, nothing is left
behind by attempts that were refused, answered or cut short (docs/callbacks.md, 'Time, scale
and shutdown', 'The HTTP client')."""

from __future__ import annotations

import asyncio

from support import closed_port_url

from emulator.delivery.dispatcher import Dispatcher, _Gate

BODY = b'[{"type":"message-delivered"}]'
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


async def _until(condition, limit: int = 10_000) -> None:
    """Let other tasks run until ``condition()`` holds (no timed sleep)."""
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_a_slot_handed_to_a_waiter_cancelled_before_it_ran_goes_to_the_next():
    gate = _Gate(1)
    gate.free = 0  # the one slot is taken
    first = asyncio.create_task(gate.wait())
    second = asyncio.create_task(gate.wait())
    await _until(lambda: len(gate.waiters) == 2)
    gate.release()  # handed to the first waiter...
    first.cancel()  # ...which is cancelled before it gets to run
    await second  # so the slot passes on to the second
    assert first.cancelled()
    assert gate.free == 0 and not gate.waiters
    gate.release()
    assert gate.free == 1


async def test_a_cancelled_waiter_leaves_the_line():
    gate = _Gate(1)
    gate.free = 0
    waiter = asyncio.create_task(gate.wait())
    await _until(lambda: len(gate.waiters) == 1)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert not gate.waiters
    gate.release()
    assert gate.free == 1


async def test_a_waiter_cancelled_then_passed_over_by_a_release_is_only_cancelled():
    # release() meets the cancelled waiter first and drops it; the waiter, when it runs, must
    # end cancelled (not with an error of the line's own), and the slot stays free.
    gate = _Gate(1)
    gate.free = 0
    waiter = asyncio.create_task(gate.wait())
    await _until(lambda: len(gate.waiters) == 1)
    waiter.cancel()
    gate.release()
    (result,) = await asyncio.gather(waiter, return_exceptions=True)
    assert isinstance(result, asyncio.CancelledError)
    assert gate.free == 1 and not gate.waiters


async def test_every_attempt_connects_a_refusing_webhook_that_comes_up_gets_the_next(dispatcher: Dispatcher):
    url = closed_port_url()
    for _ in range(3):
        outcome = await dispatcher.post(url, BODY, timeout=5)
        assert (outcome.status, outcome.error) == (None, "connection refused")
    port = int(url.split(":")[2].split("/")[0])
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(OK)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    try:
        outcome = await dispatcher.post(url, BODY, timeout=5)
    finally:
        server.close()
    assert (outcome.status, outcome.error) == (200, None)
    assert len(requests) == 1


async def test_nothing_is_left_after_a_burst_of_refused_attempts(dispatcher: Dispatcher):
    url = closed_port_url()
    outcomes = await asyncio.gather(*(dispatcher.post(url, BODY, timeout=5) for _ in range(300)))
    assert {o.error for o in outcomes} == {"connection refused"}
    assert dispatcher._lanes == {} and dispatcher._limit.free == 100


async def test_attempts_cut_short_give_back_their_slots():
    # One slot per receiver: the other POSTs wait in the receiver's line, then all are cancelled.
    dispatcher = Dispatcher(concurrency=2, per_receiver=1)
    arrived = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived.set()
        await reader.read()  # never answers; ends when the client goes

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    try:
        posts = [asyncio.create_task(dispatcher.post(url, BODY, timeout=30)) for _ in range(5)]
        await arrived.wait()
        assert len(dispatcher._lanes[url].waiters) == 4
        for post in posts:
            post.cancel()
        await asyncio.gather(*posts, return_exceptions=True)
        assert dispatcher._lanes == {} and dispatcher._limit.free == 2
        # The receiver's line works again afterwards: the next POST gets its slot at once.
        arrived.clear()
        again = asyncio.create_task(dispatcher.post(url, BODY, timeout=30))
        await arrived.wait()
        again.cancel()
        await asyncio.gather(again, return_exceptions=True)
        assert dispatcher._lanes == {} and dispatcher._limit.free == 2
    finally:
        server.close()
        await dispatcher.close()
