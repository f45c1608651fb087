"""Retention: RSS through an hour of virtual traffic at 100 messages a second.

An emulator process (the CLI, manual clock) runs a scenario of scheduled inbound traffic: a
handset texts every 10 ms (100 messages a second, 360,000 in the hour), and each message's
``message-received`` callback is POSTed to a receiver answering 200 in its own process. The
clock is advanced one virtual minute at a time through ``POST /_emulator/clock/advance``, and
the emulator's RSS (``VmRSS``) is read after each minute. The same run is made with retention
on (``--retain-messages``) and off (``--retain-messages 0``, every message kept), the baseline.

Printed for each: RSS after the warm-up, the band (max - min) after it, and the slope per
virtual minute (least squares over the minutes after the warm-up); the target is a flat band
with retention on: a slope under 1% of the baseline's.

With ``--db`` both runs keep their state in a SQLite file, and its size (with the ``-wal`` file
beside it) is read after each minute too.

    .venv/bin/python bench/retention.py [--minutes 60] [--warmup 10] [--keep 20000] [--db] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import fixed_webhook  # bench/fixed_webhook.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "9900000"
# Fixed numbers, application and account: the inbound path then needs no conversation lookup.
SCENARIO = """\
name: bench-retention
applications:
  - id: bench
    numbers: ["+15554443333"]
inbound:
  - every: 10ms
    from: "+15552221111"
    to: "+15554443333"
    text: "an hour of traffic"
    applicationId: bench
    accountId: "{account}"
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))  # type: ignore[union-attr]
    return kb / 1024


def post(url: str, body: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return json.loads(resp.read())


def slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def file_mb(db: Path) -> float:
    """The --db file and its -wal file beside it."""
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists()) / (1024 * 1024)


def run(receiver: str, minutes: int, warmup: int, keep: int, db: Path | None = None) -> dict[str, Any]:
    """One emulator process through ``minutes`` virtual minutes; RSS (and the --db file's
    size) after each."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(SCENARIO.format(account=ACCOUNT))
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--clock", "manual", "--scenario", f.name,
         "--callback-url", receiver, "--retain-messages", str(keep), "--log-level", "warning",
         *(["--db", str(db)] if db is not None else [])],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    files: list[tuple[int, float]] = []
    try:
        assert process.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline()).group(0)  # type: ignore[union-attr]
        samples: list[tuple[int, float]] = [(0, rss_mb(process.pid))]
        started = time.perf_counter()
        for minute in range(1, minutes + 1):
            post(f"{url}/_emulator/clock/advance", {"seconds": 60})
            samples.append((minute, rss_mb(process.pid)))
            if db is not None:
                files.append((minute, file_mb(db)))
        wall = time.perf_counter() - started
        health = get(f"{url}/_emulator/health")
        held = len(get(f"{url}/_emulator/messages?accountId={ACCOUNT}")["messages"])
    finally:
        process.terminate()
        process.wait(30)
        os.unlink(f.name)
    after = [(m, r) for m, r in samples if m >= warmup]
    values = [r for _, r in after]
    file_after = [size for m, size in files if m >= warmup]
    return {
        "db": db is not None,
        "file_warm_mb": file_after[0] if file_after else None,
        "file_end_mb": file_after[-1] if file_after else None,
        "file_slope_mb_per_min": slope([(float(m), v) for m, v in files if m >= warmup]) if files else None,
        "keep": keep,
        "minutes": minutes,
        "warmup": warmup,
        "messages": minutes * 60 * 100,
        "held": held,
        "forgotten": health["retention"]["forgottenMessages"],
        "pending": health["pendingCallbacks"],
        "wall_s": wall,
        "rss_warm_mb": after[0][1],
        "rss_end_mb": samples[-1][1],
        "band_mb": max(values) - min(values),
        "slope_mb_per_min": slope([(float(m), r) for m, r in after]),
        "samples": samples,
    }


def measure(minutes: int, warmup: int, keep: int, with_db: bool = False) -> dict[str, Any]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    receiver = multiprocessing.get_context("fork").Process(target=fixed_webhook.serve, args=(sock, '200 OK'), daemon=True)
    receiver.start()
    sock.close()
    load = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"http://127.0.0.1:{port}/callbacks"
            on = run(url, minutes, warmup, keep, Path(tmp) / "on.db" if with_db else None)
            off = run(url, minutes, warmup, 0, Path(tmp) / "off.db" if with_db else None)
    finally:
        receiver.terminate()
        receiver.join()
    return {"on": on, "off": off, "load": load, "load_after": os.getloadavg()[0]}


def report(result: dict[str, Any]) -> str:
    on, off = result["on"], result["off"]
    lines = [
        f"retention: {on['messages']:,} inbound messages over {on['minutes']} virtual minutes (100/s), "
        f"each with a callback to a local receiver; RSS after minute {on['warmup']} (warm-up) "
        f"(Python {platform.python_version()}, {os.cpu_count()} cores, load {result['load']:.1f} -> {result['load_after']:.1f})",
        f"{'run':<28} {'RSS warm':>9} {'RSS end':>8} {'band':>7} {'slope/min':>10} {'held':>8} {'forgotten':>10} {'wall s':>7}",
    ]
    for label, r in ((f"retention on (keep {on['keep']:,})", on), ("retention off (baseline)", off)):
        lines.append(
            f"{label:<28} {r['rss_warm_mb']:>7.1f}MB {r['rss_end_mb']:>6.1f}MB {r['band_mb']:>5.1f}MB "
            f"{r['slope_mb_per_min']:>8.2f}MB {r['held']:>8,} {r['forgotten']:>10,} {r['wall_s']:>7.1f}"
        )
    ratio = on["slope_mb_per_min"] / off["slope_mb_per_min"] if off["slope_mb_per_min"] else float("nan")
    lines.append(f"slope ratio on/off: {ratio:.3f} (target: flat, < 0.01)")
    if on["db"]:
        for label, r in (("--db file, retention on", on), ("--db file, retention off", off)):
            lines.append(
                f"{label:<28} {r['file_warm_mb']:>7.1f}MB {r['file_end_mb']:>6.1f}MB "
                f"slope {r['file_slope_mb_per_min']:.2f}MB per virtual min"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60, help="virtual minutes of traffic (default 60)")
    parser.add_argument("--warmup", type=int, default=10, help="virtual minutes before the band is measured (default 10)")
    parser.add_argument("--keep", type=int, default=20_000, help="--retain-messages of the run with retention (default 20000)")
    parser.add_argument("--db", action="store_true", help="both runs with --db: also the file's size (with its -wal)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (for bench/run.py)")
    args = parser.parse_args()
    if not 0 < args.warmup < args.minutes:
        parser.error("--warmup must be between 0 and --minutes")
    result = measure(args.minutes, args.warmup, args.keep, args.db)
    if args.json:
        print(json.dumps(result))
    else:
        print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
