"""How to: use the emulator from async code, without the pytest fixtures.

``Emulator`` starts the emulator in-process on the running event loop (127.0.0.1, a free
port) and is itself an async client of it. Here the application under test is an aiohttp
webhook on the same loop, the way an aiohttp or FastAPI app is usually tested.
"""

from aiohttp import web

from emulator.testing.runner import Emulator

OUR_NUMBER = "+15554443333"
HANDSET = "+15552221111"


async def start_webhook(seen):
    async def status(request):
        seen.extend(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/bandwidth/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/bandwidth/status"


async def test_manual_clock():
    seen = []
    runner, url = await start_webhook(seen)
    try:
        # The era pinned: MMS gets message-sending only until 2027-01-06 (docs/scenarios.md).
        async with Emulator({"era": "2026-07-06"}, clock="manual", callback_url=url) as emu:
            message = await emu.send(to=HANDSET, from_=OUR_NUMBER, text="Hello", media=["https://example.com/a.png"])
            await emu.advance(60)
            await emu.assert_callbacks(message["id"], ["message-sending", "message-delivered"])
            assert [e["type"] for e in seen] == ["message-sending", "message-delivered"]
    finally:
        await runner.cleanup()


async def test_realtime_clock_without_sleeping():
    seen = []
    runner, url = await start_webhook(seen)
    fast = {"defaults": {"sms": [{"event": "message-delivered", "after": "100ms"}]}}
    try:
        async with Emulator(fast, clock="realtime", callback_url=url) as emu:
            message = await emu.send(to=HANDSET, from_=OUR_NUMBER, text="Hello")
            # Long-polls until the callback is delivered (or fails after 5 s, listing what there is).
            await emu.wait_for_callbacks(message["id"], state="delivered", timeout=5)
            assert [e["type"] for e in seen] == ["message-delivered"]
    finally:
        await runner.cleanup()
