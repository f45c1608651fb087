"""Hostile run: the CLI emulator against misbehaving webhooks, stalled clients and bad URLs.

Everything on 127.0.0.1. Webhooks that answer a 1 GB body, an endless chunked body, headers
dripped forever, or nothing at all (plus a well-behaved one); 300 stalled client connections
(idle, dripping a head, stopping mid-body) held open during the whole run; callback URLs that
must be refused by ``validate`` and ``--callback-url``. Prints what was accepted, lost and
answered 5xx, the journal's outcome per webhook, the peak RSS and how long SIGTERM took.

    .venv/bin/python bench/hostile.py [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ACCOUNT = "9900000"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
BAD_URLS = ["not a url", "/cb", "ftp://x/cb", "http://xn--/", "http://h:0/", "http://[::1/", "http://a..b/", "http:///x", "",
            "http://h:99999/"]


HANDLERS: set[asyncio.Task[Any]] = set()


async def webhook(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mode: str) -> None:
    task = asyncio.current_task()
    assert task is not None
    HANDLERS.add(task)
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            if mode == "ok":
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            elif mode == "huge":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
                while True:
                    writer.write(b"x" * 65536)
                    await writer.drain()
            elif mode == "endless":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                while True:
                    writer.write(b"10000\r\n" + b"x" * 65536 + b"\r\n")
                    await writer.drain()
            elif mode == "drip":
                writer.write(b"HTTP/1.1 200 OK\r\n")
                while True:
                    writer.write(b"X: y\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.05)
            else:  # hang
                await asyncio.Event().wait()
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        HANDLERS.discard(task)
        writer.close()


def refused(args: list[str], code: int) -> bool:
    result = subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True, text=True, timeout=60)
    return result.returncode == code and "Traceback" not in result.stderr


async def run(messages: int, tmp: Path) -> dict[str, Any]:
    modes = ("ok", "huge", "endless", "drip", "hang")
    servers = {}
    for mode in modes:
        servers[mode] = await asyncio.start_server(lambda r, w, m=mode: webhook(r, w, m), "127.0.0.1", 0)
    apps = [
        {"id": m, "statusCallbackUrl": f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/cb", "callbackTimeout": "1s",
         "retrySchedule": [0, 60, 120]}
        for m, s in servers.items()
    ]
    scenario = tmp / "scenario.yml"
    scenario.write_text(yaml.safe_dump({"applications": apps}))
    bad = tmp / "bad.yml"
    refusals = 0
    for url in BAD_URLS:
        bad.write_text(yaml.safe_dump({"applications": [{"id": "a", "statusCallbackUrl": url}]}))
        refusals += refused(["validate", str(bad)], 1) + refused(["--callback-url", url, "--port", "0"], 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp / "emulator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--port", str(port), "--clock", "manual", "--scenario", str(scenario)],
            stdout=out, stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    statuses: collections.Counter[int] = collections.Counter()
    stalled = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(base + "/_emulator/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            for i in range(300):
                _, w = await asyncio.open_connection("127.0.0.1", port)
                if i % 3 == 1:
                    w.write(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                elif i % 3 == 2:
                    w.write(b"POST /_emulator/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n{")
                stalled.append(w)
            accepted: list[tuple[str, str]] = []

            async def send(app: str) -> None:
                body = {"applicationId": app, "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}
                async with session.post(f"{base}/api/v2/users/{ACCOUNT}/messages", json=body, headers=AUTH) as r:
                    statuses[r.status] += 1
                    if r.status == 202:
                        accepted.append((app, (await r.json())["id"]))

            counts = {"ok": messages, **{m: max(1, messages // 5) for m in modes if m != "ok"}}
            await asyncio.gather(*(send(app) for app, n in counts.items() for _ in range(n)))
            started = time.perf_counter()
            for step in (10, 60, 60, 3600):
                async with session.post(base + "/_emulator/clock/advance", json={"seconds": step}) as r:
                    statuses[r.status] += 1
            advance_s = time.perf_counter() - started
            async with session.get(base + "/_emulator/callbacks", params={"accountId": ACCOUNT}) as r:
                statuses[r.status] += 1
                callbacks = (await r.json())["callbacks"]
            async with session.get(base + "/_emulator/health") as r:
                statuses[r.status] += 1
                health = await r.json()
        rss_kb = int(Path(f"/proc/{proc.pid}/status").read_text().split("VmHWM:")[1].split()[0])
    finally:
        for w in stalled:
            w.close()
        stopped = time.perf_counter()
        proc.terminate()
        exit_code = proc.wait(90)
        stop_s = time.perf_counter() - stopped
        for server in servers.values():
            server.close()
        for handler in list(HANDLERS):
            handler.cancel()
        await asyncio.gather(*HANDLERS, return_exceptions=True)
    by_message: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for c in callbacks:
        by_message[c["messageId"]].append(c)
    outcome: collections.Counter[str] = collections.Counter()
    for app, message_id in accepted:
        outcome[f"{app}: " + "/".join(sorted({c["state"] for c in by_message[message_id]}) or ["LOST"])] += 1
    return {
        "bad inputs refused": f"{refusals} of {2 * len(BAD_URLS)} bad callback URLs, + 300 stalled connections",
        "accepted": len(accepted),
        "lost": sum(1 for _, m in accepted if not by_message.get(m)),
        "answers": dict(statuses),
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "callbacks by webhook": dict(outcome),
        "attempt errors": dict(collections.Counter(a["error"] for c in callbacks for a in c["attempts"] if a["error"])),
        "internal errors": health["internalErrors"]["count"],
        "advance wall s": round(advance_s, 1),
        "peak RSS MB": round(rss_kb / 1024, 1),
        "SIGTERM exit": f"{exit_code} in {stop_s:.1f} s",
        "log KB": round(os.path.getsize(log) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="messages to the good webhook (a fifth to each bad one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for key, value in asyncio.run(run(args.messages, Path(tmp))).items():
            print(f"{key:<22} {value}")


if __name__ == "__main__":
    main()
