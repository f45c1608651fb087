"""Long-polls must not slow sends down: the send rate with N open waiters against none.

One emulator (realtime clock, callbacks delivered at once to the load generator's receiver),
a closed-loop sender (bench/drive.py e2e, its own process), and a holder process with a
feeder that sends one message every 0.25 s to another account (in every round alike) and N
long-polls of ``GET /_emulator/callbacks`` and ``GET /_emulator/messages``. The journal is
emptied (``POST /_emulator/reset``) before every round, and the rounds alternate:

- ``none``: no long-poll open;
- ``open``: N long-polls open for the whole round: nine in ten for filters that never match
  (other message ids, tags, recipients, a failure type that never happens, a count never
  reached), one in ten for one of the feeder's messages (by its tag) or its delivered
  callback (by its recipient), 4 to 20 messages (1 to 5 s) ahead, and then for the next;
- ``idle``: N long-polls open, none of which matches (what waiting costs, without the cost of
  answering the polls that match);
- ``gone``: N long-polls whose clients sent the request and then hung up.

The figure is the sender's rate, and the emulator's CPU time per message sent (steadier on
a busy machine), each against the ``none`` rounds of the same run.

    .venv/bin/python bench/waiters.py [--waiters 500] [--seconds 10] [--rounds 3] [--connections 64]
    .venv/bin/python bench/waiters.py hold URL --waiters N [--gone | --never]   (the holder process)

Prints a table and, on its last line, one JSON object with the medians and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PY, ROOT, ZERO_DELAY, cpu_seconds, emulator, free_port, run_json  # noqa: E402

ACCOUNT = "9900000"
WAIT = 60  # the longest long-poll the control API allows; every round is shorter


FED = "9900001"  # the account of the feeder's messages, which the matching polls wait for
FEED_EVERY = 0.25  # seconds between two of the feeder's messages


def step(j: int) -> int:
    """How many of the feeder's messages the j-th poll waits for each time: 4 to 20 (1 to 5 s)."""
    return 4 + 4 * (j // 10 % 5)


def poll_path(j: int, target: int, matching: bool = True) -> str:
    """The j-th waiter's query; a matching one waits for the feeder's message number
    ``target`` (or its delivered callback). Without ``matching``, one that never matches."""
    kind = j % 10
    if kind == 0 and not matching:
        return f"/_emulator/messages?accountId={FED}&tag=never-{j}&wait={WAIT}"
    if kind == 0:  # as a test waits for its own message: one record per answer
        if j % 20 == 0:
            return f"/_emulator/messages?accountId={FED}&tag=fed-{target}&wait={WAIT}"
        return f"/_emulator/callbacks?accountId={FED}&recipient=%2B1555{target:07d}&state=delivered&wait={WAIT}"
    if kind in (1, 2, 3, 4):
        return f"/_emulator/callbacks?messageId=never-{j}&wait={WAIT}"
    if kind in (5, 6):
        return f"/_emulator/messages?accountId={ACCOUNT}&tag=never-{j}&wait={WAIT}"
    if kind == 7:
        return f"/_emulator/callbacks?accountId={ACCOUNT}&type=message-failed&wait={WAIT}"
    if kind == 8:
        return f"/_emulator/messages?to=%2B19990{j:06d}&wait={WAIT}"
    return f"/_emulator/callbacks?state=delivered&count=100000000&wait={WAIT}"


# -- the holder process -------------------------------------------------------------------------


async def _answer(reader: asyncio.StreamReader) -> dict:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return json.loads(await reader.readexactly(length))


async def feed(host: str, port: int, stop: asyncio.Event) -> int:
    """One message to account FED every FEED_EVERY seconds, in every round alike."""
    reader, writer = await asyncio.open_connection(host, port)
    sent = 0
    while not stop.is_set():
        sent += 1  # message n goes to +1555000000n with tag fed-n
        body = json.dumps({"applicationId": "bench", "from": "+15554443333", "to": [f"+1555{sent:07d}"],
                           "text": "fed", "tag": f"fed-{sent}"})
        head = (f"POST /api/v2/users/{FED}/messages HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic dXNlcjpwYXNz"
                f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        writer.write((head + body).encode())
        await _answer(reader)
        try:
            await asyncio.wait_for(stop.wait(), FEED_EVERY)
        except TimeoutError:
            pass
    writer.close()
    return sent


async def hold(url: str, waiters: int, gone: bool, matching: bool) -> None:
    host, port = url.removeprefix("http://").split(":")
    answered = 0
    connections: list[asyncio.StreamWriter] = []

    def request(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    async def waiter(j: int) -> None:
        nonlocal answered
        reader, writer = await asyncio.open_connection(host, int(port))
        connections.append(writer)
        target = step(j)
        writer.write(request(poll_path(j, target, matching)))
        if gone:
            await writer.drain()
            return
        while True:
            await _answer(reader)
            answered += 1
            target += step(j)
            writer.write(request(poll_path(j, target, matching)))

    tasks = [asyncio.create_task(waiter(j)) for j in range(waiters)]
    while len(connections) < waiters:
        await asyncio.sleep(0.01)
    if gone:
        await asyncio.gather(*tasks)
        for writer in connections:
            writer.transport.abort()  # no FIN handshake to wait for: the client is simply gone
    stop = asyncio.Event()
    feeder = asyncio.create_task(feed(host, int(port), stop))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # until told to stop
    stop.set()
    fed = await feeder
    for task in tasks:
        task.cancel()
    for writer in connections:
        writer.transport.abort()
    print(json.dumps({"answered": answered, "fed": fed}), flush=True)


# -- the benchmark ----------------------------------------------------------------------------------


def health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_emulator/health", timeout=10) as resp:
        return json.loads(resp.read())


def open_waits(url: str) -> int | None:
    """How many long-polls the emulator holds, when it says so."""
    return health(url).get("openWaits")


def settle(url: str, expected: int, seconds: float = 10.0) -> int | None:
    """Until the emulator holds ``expected`` long-polls (bounded); what it holds at the end."""
    deadline = time.monotonic() + seconds
    held = open_waits(url)
    while held is not None and held != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        held = open_waits(url)
    return held


def reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/_emulator/reset", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        resp.read()


def one_round(url: str, port: int, mode: str, waiters: int, seconds: float, connections: int, pid: int) -> dict:
    reset(url)
    # The holder runs in every round, with its feeder; with no long-poll in the first.
    args = [PY, str(HERE / "waiters.py"), "hold", url, "--waiters", str(0 if mode == "none" else waiters)]
    args += {"gone": ["--gone"], "idle": ["--never"]}.get(mode, [])
    holder = subprocess.Popen(args, cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    if holder.stdout.readline().strip() != "ready":
        holder.kill()
        raise RuntimeError("the holder process did not start")
    held = settle(url, waiters if mode in ("open", "idle") else 0)
    cpu = cpu_seconds(pid)
    drive = [PY, str(HERE / "drive.py"), "e2e", url, "--receiver-port", str(port)]
    result = run_json([*drive, "--seconds", str(seconds), "--connections", str(connections)], seconds + 90)
    result["server_cpu_us"] = (cpu_seconds(pid) - cpu) / max(result["accepted"], 1) * 1e6
    result["held_during"] = open_waits(url)
    result["held_before"] = held
    out, _ = holder.communicate("stop\n", timeout=30)
    result.update(json.loads(out.strip().splitlines()[-1]))
    return result


def bench(waiters: int, seconds: float, rounds: int, connections: int) -> dict:
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(ZERO_DELAY)
    try:
        with emulator("--clock", "realtime", "--scenario", f.name, "--log-level", "warning",
                      "--callback-url", f"http://127.0.0.1:{port}/callbacks") as server:
            drive = [PY, str(HERE / "drive.py"), "e2e", server.url, "--receiver-port", str(port)]
            run_json([*drive, "--seconds", "1", "--connections", "16"], 90)  # warm-up
            runs: dict[str, list[dict]] = {"none": [], "open": [], "idle": [], "gone": []}
            modes = list(runs)
            for round_ in range(rounds):
                # Each round starts one case further on, so that no case always runs at the
                # same point of the round (a slow minute of the machine then spreads over all).
                shift = round_ % len(modes)
                for mode in modes[shift:] + modes[:shift]:
                    r = one_round(server.url, port, mode, waiters, seconds, connections, server.process.pid)
                    runs[mode].append(r)
                    print(f"  {mode:5} {r['mps']:8.0f} msg/s  {r['server_cpu_us']:6.0f} us CPU per send  "
                          f"held {r['held_before']} -> {r['held_during']}  answered {r.get('answered', '-')}",
                          file=sys.stderr, flush=True)
    finally:
        os.unlink(f.name)
    med = {mode: statistics.median(r["mps"] for r in rs) for mode, rs in runs.items()}
    cpu = {mode: statistics.median(r["server_cpu_us"] for r in rs) for mode, rs in runs.items()}
    return {
        "waiters": waiters,
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "mps": med,
        "cpu_us": cpu,
        "open_ratio": med["open"] / med["none"],
        "gone_ratio": med["gone"] / med["none"],
        "idle_ratio": med["idle"] / med["none"],
        "held": [r["held_during"] for r in runs["open"]],
        "held_gone": [r["held_during"] for r in runs["gone"]],
        "held_idle": [r["held_during"] for r in runs["idle"]],
        "answered": [r.get("answered") for r in runs["open"]],
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="bench", choices=["bench", "hold"])
    parser.add_argument("url", nargs="?")
    parser.add_argument("--waiters", type=int, default=500)
    parser.add_argument("--gone", action="store_true", help="hold: close every connection once its request is sent")
    parser.add_argument("--never", action="store_true", help="hold: only polls that never match")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if args.what == "hold":
        asyncio.run(hold(args.url, args.waiters, args.gone, not args.never))
        return
    r = bench(args.waiters, args.seconds, args.rounds, args.connections)
    print(f"send rate, no long-poll:            {r['mps']['none']:8.0f} msg/s  {r['cpu_us']['none']:5.0f} us CPU per send")
    print(f"send rate, {r['waiters']} open long-polls:     {r['mps']['open']:8.0f} msg/s  "
          f"{r['cpu_us']['open']:5.0f} us CPU per send  ratio {r['open_ratio']:.2f}  target >= 0.9")
    print(f"send rate, {r['waiters']} never answered:   {r['mps']['idle']:8.0f} msg/s  "
          f"{r['cpu_us']['idle']:5.0f} us CPU per send  ratio {r['idle_ratio']:.2f}  target >= 0.9")
    print(f"send rate, {r['waiters']} long-polls gone:     {r['mps']['gone']:8.0f} msg/s  "
          f"{r['cpu_us']['gone']:5.0f} us CPU per send  ratio {r['gone_ratio']:.2f}  target >= 0.9")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
