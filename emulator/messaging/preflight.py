"""Checks Bandwidth makes when it picks a queued message up to send it.

A message is accepted (202) first; what can still stop it is decided when it would go
out: an ``expiration`` that has passed (4360, docs/bandwidth-behaviour.md, 'Sending') or media that cannot
be fetched or is too large (4410 / 4411, §10.2). Either way every recipient gets one
``message-failed`` instead of the planned sequence.
"""

from __future__ import annotations

from emulator.scenarios.planner import PlannedEvent, default_description
from emulator.state.media import MediaLibrary
from emulator.state.models import Message

EXPIRED = 4360


def send_failure(
    message: Message,
    expiration_at: float | None,
    planned: list[PlannedEvent],
    media: MediaLibrary,
    queued: float = 0.0,
) -> tuple[int, float] | None:
    """``(error code, seconds after leaving the queue)`` when the message cannot be sent, else None.

    ``queued`` is how long the message waits in the account's send queue before its
    planned events start (the planned ``after`` values count from then).
    """
    if expiration_at is None and not message.media:
        return None
    first = min((p.after for p in planned), default=0.0)
    if expiration_at is not None and expiration_at < message.time + queued + first:
        # It expired while waiting: the failure comes when the expiration passes, which may
        # be before the message would have left the queue (hence a negative offset).
        return EXPIRED, max(0.0, expiration_at - message.time) - queued
    code = media.send_failure(message.account_id, message.media)
    if code is not None:
        return code, first
    return None


def failed_plan(message: Message, code: int, after: float) -> list[PlannedEvent]:
    description = default_description("message-failed", message.kind, code)
    return [PlannedEvent(to, "message-failed", after, description, code) for to in message.to]
