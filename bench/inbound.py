"""An inbound message that names no account or application finds its conversation (the
latest message sent from the number it goes to) in the store's index, whatever the number
of messages held (docs/control-api.md, 'Inbound messages').

In process, on the manual clock, no HTTP: one service holding ``--small`` messages and one
holding ``--large``, each sent from 100 numbers; then rounds, alternating the two, of
``--inbound`` inbound messages to those numbers without accountId or applicationId. The
figure is the time per inbound message with the large store against the small one, in the
same run; for the record, the time of one pass over the large store, which is what each
inbound cost before the index.

    .venv/bin/python bench/inbound.py [--small 1000] [--large 100000] [--inbound 2000] [--rounds 5]

Prints a table and, on its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.delivery.clock import ManualClock
from emulator.scenarios.format import Scenario
from emulator.service import MessagingService
from emulator.state.models import InboundRequest

SENDERS = [f"+1555444{n:04d}" for n in range(100)]


def filled(messages: int) -> MessagingService:
    service = MessagingService(clock=ManualClock(), scenario=Scenario())
    for n in range(messages):
        body = {"applicationId": "bench", "from": SENDERS[n % len(SENDERS)], "to": ["+15552221111"], "text": "hi"}
        service.send(str(9_900_000 + n % 10), body)
    return service


def per_inbound(service: MessagingService, count: int) -> float:
    """Seconds per inbound message that must find its conversation."""
    requests = [InboundRequest(from_="+15552221111", to=[SENDERS[n % len(SENDERS)]], text="hi") for n in range(count)]
    gc.collect()
    start = time.perf_counter()
    for request in requests:
        service.inbound(request)
    return (time.perf_counter() - start) / count


def one_scan(service: MessagingService) -> float:
    """Seconds for one pass over every stored message, as the lookup before the index made."""
    start = time.perf_counter()
    latest = {}
    for message in service.store.messages():
        if message.direction == "out" and message.from_ == SENDERS[0]:
            latest[message.from_] = message
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--inbound", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    small, large = filled(args.small), filled(args.large)
    times: dict[str, list[float]] = {"small": [], "large": []}
    for _ in range(args.rounds):
        times["small"].append(per_inbound(small, args.inbound))
        times["large"].append(per_inbound(large, args.inbound))
    result = {
        "small": args.small,
        "large": args.large,
        "inbound": args.inbound,
        "rounds": args.rounds,
        "us_small": statistics.median(times["small"]) * 1e6,
        "us_large": statistics.median(times["large"]) * 1e6,
        "scan_us_large": one_scan(large) * 1e6,
    }
    result["ratio"] = result["us_large"] / result["us_small"]
    print(f"inbound with {args.small:,} messages held: {result['us_small']:.1f} us each")
    print(f"inbound with {args.large:,} messages held: {result['us_large']:.1f} us each (ratio {result['ratio']:.2f})")
    print(f"one pass over {args.large:,} messages (the lookup before the index): {result['scan_us_large']:.0f} us")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
