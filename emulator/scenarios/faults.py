"""Faults on our own API: scripted 429/500/503 answers and the per-account send queue.

Bandwidth accepts sends into a per-account queue that drains at the account's allowed
rate, counted in segments (a 2-segment SMS counts 2); when the queue is full a send gets
429 ``max-message-queue-size-exceeded`` (docs/bandwidth-behaviour.md, 'Errors and rate limits'). Scenario faults add the
failures a real service has on a bad day, for the first N sends, every k-th, or at random
from the scenario's seeded random source.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from emulator.scenarios.format import Fault, RateLimit, Scenario
from emulator.scenarios.rules import Subject, matches, pattern_matches

# docs/bandwidth-behaviour.md, 'Errors and rate limits', word for word: the default rate is 60 per minute, 15 minutes of queue.
QUEUE_FULL_DESCRIPTION = (
    "The SMS queue for your account is full and cannot accept more messages right now. "
    "Your allowed rate is {rate} messages per minute. The capacity of this queue is {capacity} messages "
    "({minutes} minutes). Reduce your message sending rate, or contact support to increase your allowed rate."
)

# Bandwidth documents no body for 500 or 503; these follow its kebab-case error types
# (the multichannel API's internal-server-error, docs/bandwidth-behaviour.md, 'Errors and rate limits').
DEFAULT_BODIES = {
    500: ("internal-server-error", "Something went wrong. Please try again."),
    503: ("service-unavailable", "The service is temporarily unavailable. Please try again later."),
}


LIST_RATE_LIMITED = "Rate limit exceeded. Wait for Retry-After time before sending another request."


class SendRejected(Exception):
    """A send our API refuses with an HTTP error (mapped to Bandwidth's error shape)."""

    def __init__(self, status: int, type: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.type = type
        self.description = description
        self.retry_after: int | None = None  # seconds, for a Retry-After header


def queue_full_description(rate: int, capacity: int, minutes: float) -> str:
    shown = int(minutes) if float(minutes).is_integer() else round(minutes, 2)
    return QUEUE_FULL_DESCRIPTION.format(rate=rate, capacity=capacity, minutes=shown)


def rejection(fault: Fault) -> SendRejected:
    if fault.status == 429:
        type_, description = "max-message-queue-size-exceeded", queue_full_description(60, 900, 15)
    else:
        type_, description = DEFAULT_BODIES[fault.status]
    return SendRejected(fault.status, type_, fault.description or description)


def list_rejection(fault: Fault) -> SendRejected:
    if fault.status == 429:
        # The spec's listMessagesTooManyRequestsError, with its Retry-After header.
        rejected = SendRejected(429, "rate_limit_exceeded", fault.description or LIST_RATE_LIMITED)
        rejected.retry_after = fault.retry_after
        return rejected
    return rejection(fault)


@dataclass
class _Queue:
    level: float = 0.0  # segments waiting
    at: float = 0.0  # virtual time of ``level``


class FaultInjector:
    """Decides, per send, whether our API fails it, and how long it waits in the queue."""

    def __init__(self, scenario: Callable[[], Scenario], rng: Callable[[], random.Random]) -> None:
        self._scenario = scenario
        self._rng = rng
        self._seen: dict[int, int] = {}  # fault index -> matching sends so far
        self._queues: dict[str, _Queue] = {}

    def reset(self, account_id: str | None = None) -> None:
        if account_id is None:
            self._seen.clear()
            self._queues.clear()
        else:
            self._queues.pop(account_id, None)

    def admit(self, subject: Subject, segments: int, now: float) -> float:
        """Raise :class:`SendRejected`, or return how many seconds the send waits in the queue."""
        scenario = self._scenario()
        for index, fault in enumerate(scenario.faults):
            if fault.operation != "createMessage" or not matches(fault.match, subject):
                continue
            count = self._seen[index] = self._seen.get(index, 0) + 1
            if self._fires(fault, count):
                raise rejection(fault)
        return self.queue_wait(subject.account_id, segments, now)

    def queue_wait(self, account_id: str, segments: int, now: float) -> float:
        """How many seconds a send waits in the account's queue; raise :class:`SendRejected` when it is full."""
        account = self._scenario().account(account_id)
        if account is None or account.rate_limit is None:
            return 0.0
        return self._enqueue(account_id, account.rate_limit, segments, now)

    def admit_list(self, account_id: str) -> None:
        """Raise :class:`SendRejected` when a listMessages fault fires for this account."""
        scenario = self._scenario()
        for index, fault in enumerate(scenario.faults):
            if fault.operation != "listMessages":
                continue
            if fault.match.account_id is not None and not pattern_matches(fault.match.account_id, account_id):
                continue
            count = self._seen[index] = self._seen.get(index, 0) + 1
            if self._fires(fault, count):
                raise list_rejection(fault)

    def _fires(self, fault: Fault, count: int) -> bool:
        if fault.first is not None:
            return count <= fault.first
        if fault.every is not None:
            return count % fault.every == 0
        if fault.probability is not None:
            return self._rng().random() < fault.probability
        return True

    def _enqueue(self, account_id: str, limit: RateLimit, segments: int, now: float) -> float:
        per_second = limit.segments_per_minute / 60.0
        capacity = limit.segments_per_minute * limit.queue / 60.0
        queue = self._queues.setdefault(account_id, _Queue(at=now))
        # The queue drains at the allowed rate between sends.
        queue.level = max(0.0, queue.level - (now - queue.at) * per_second)
        queue.at = now
        if queue.level + segments > capacity + 1e-9:
            raise SendRejected(
                429,
                "max-message-queue-size-exceeded",
                queue_full_description(limit.segments_per_minute, int(capacity), limit.queue / 60.0),
            )
        wait = queue.level / per_second
        queue.level += segments
        return wait
