"""Load generators that run in their own process, so they do not share the server's core.

    python bench/drive.py accept URL --seconds S --connections C
        closed loop of POST /messages (the fallback when wrk is not installed); prints JSON
        {"requests", "seconds", "rps", "errors"}.

    python bench/drive.py e2e URL --receiver-port P --seconds S (--connections C | --rate R)
        sends SMS while a receiver on 127.0.0.1:P takes the callbacks; closed loop with C
        concurrent senders, or open loop at R messages/s. Prints JSON with the messages/s
        from the first send to the last callback and the 202 -> callback latencies.

Times on both sides are time.monotonic(), one clock for the whole process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp
from aiohttp import web

AUTH = aiohttp.BasicAuth("user", "pass")


def body(i: int) -> bytes:
    return json.dumps(
        {"applicationId": "bench", "from": "+15554443333", "to": [f"+1777{i:07d}"], "text": "benchmark"}
    ).encode()


async def accept(url: str, seconds: float, connections: int) -> dict:
    target = f"{url}/api/v2/users/9900000/messages"
    counts = {"ok": 0, "errors": 0}
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:

        async def worker(n: int) -> None:
            i = n * 10_000_000
            while time.monotonic() < stop:
                i += 1
                async with session.post(target, data=body(i % 10_000_000), auth=AUTH,
                                        headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    counts["ok" if resp.status == 202 else "errors"] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        elapsed = time.monotonic() - started
    return {"requests": counts["ok"], "errors": counts["errors"], "seconds": elapsed, "rps": counts["ok"] / elapsed}


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.more = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        events = await request.json()
        now = time.monotonic()
        for event in events:
            if event.get("type") in ("message-delivered", "message-failed"):
                self.arrived.setdefault(event["message"]["id"], now)
        self.more.set()
        return web.Response(status=200)


async def e2e(url: str, port: int, seconds: float, connections: int | None, rate: float | None) -> dict:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    target = f"{url}/api/v2/users/9900000/messages"
    accepted: dict[str, float] = {}
    first_send: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections or 256)) as session:

        async def one(i: int) -> None:
            nonlocal errors
            if not first_send:
                first_send.append(time.monotonic())
            async with session.post(target, data=body(i), auth=AUTH, headers={"Content-Type": "application/json"}) as resp:
                answer = await resp.read()
                if resp.status == 202:
                    accepted[json.loads(answer)["id"]] = time.monotonic()
                else:
                    errors += 1

        if connections:
            async def worker(n: int) -> None:
                i = n * 1_000_000
                while time.monotonic() < stop:
                    i += 1
                    await one(i)

            await asyncio.gather(*(worker(n) for n in range(connections)))
        else:
            assert rate
            tasks = []
            start = time.monotonic()
            i = 0
            while True:
                due = start + i / rate
                if due >= stop:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
                i += 1
            await asyncio.gather(*tasks)
        # Wait (bounded) for the callbacks of everything accepted.
        deadline = time.monotonic() + 30
        while len(set(accepted) & set(receiver.arrived)) < len(accepted) and time.monotonic() < deadline:
            receiver.more.clear()
            try:
                await asyncio.wait_for(receiver.more.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
    await runner.cleanup()
    got = [mid for mid in accepted if mid in receiver.arrived]
    latencies = sorted((receiver.arrived[m] - accepted[m]) * 1000 for m in got)
    last = max(receiver.arrived[m] for m in got) if got else time.monotonic()
    span = last - first_send[0] if first_send else 1.0
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    return {
        "accepted": len(accepted),
        "callbacks": len(got),
        "lost": len(accepted) - len(got),
        "errors": errors,
        "seconds": span,
        "mps": len(got) / span,
        "p50_ms": q[49],
        "p99_ms": q[98],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["accept", "e2e"])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--receiver-port", type=int)
    args = parser.parse_args()
    if args.what == "accept":
        result = asyncio.run(accept(args.url, args.seconds, args.connections or 32))
    else:
        result = asyncio.run(e2e(args.url, args.receiver_port, args.seconds, args.connections, args.rate))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
