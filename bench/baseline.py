"""The baselines: the least any HTTP emulator of this API must do, on the same aiohttp.

    accept: parse the JSON body and answer 202 with a small body.
    e2e:    the same, then POST one callback per request through one shared ClientSession.

Prints ``serving http://127.0.0.1:PORT`` once it listens, like the emulator's CLI.

    python bench/baseline.py accept|e2e [--callback-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time

import aiohttp
from aiohttp import web


def build(mode: str, callback_url: str | None) -> web.Application:
    ids = itertools.count()
    tasks: set[asyncio.Task[None]] = set()
    app = web.Application()

    async def post_callback(session: aiohttp.ClientSession, message: dict) -> None:
        event = [{"type": "message-delivered", "time": "", "to": message["to"][0], "description": "ok", "message": message}]
        try:
            async with session.post(callback_url, data=json.dumps(event), headers={"Content-Type": "application/json"}) as r:
                await r.read()
        except aiohttp.ClientError:
            pass

    async def create_message(request: web.Request) -> web.Response:
        body = await request.json()
        message = {"id": f"{int(time.time() * 1000)}{next(ids):016d}", "to": body["to"], "from": body["from"],
                   "applicationId": body["applicationId"], "text": body.get("text", "")}
        if mode == "e2e":
            task = asyncio.create_task(post_callback(request.app["session"], message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return web.json_response(message, status=202)

    async def session_ctx(app: web.Application):
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
        yield
        await app["session"].close()

    app.router.add_post("/api/v2/users/{accountId}/messages", create_message)
    if mode == "e2e":
        app.cleanup_ctx.append(session_ctx)
    return app


async def serve(mode: str, callback_url: str | None) -> None:
    runner = web.AppRunner(build(mode, callback_url), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"serving http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["accept", "e2e"])
    parser.add_argument("--callback-url")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.mode, args.callback_url))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
