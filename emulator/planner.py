"""The planner: a pure function from a message and the scenario to timed events.

No I/O and no clock: it returns, for each recipient, which callback events happen and how
many seconds after the message was accepted. The service turns these into callbacks and
the scheduler fires them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errorcodes import INVALID_RECIPIENT_CODES, callback_description, lookup
from .models import Message
from .scenario import Application, EventStep, Scenario

# +1555010EEEE: EEEE is the Bandwidth error code the recipient fails with (product brief).
MAGIC_NUMBER = re.compile(r"^\+1555010(\d{4})$")

TERMINAL = ("message-delivered", "message-failed")


@dataclass(frozen=True)
class PlannedEvent:
    recipient: str
    type: str
    after: float
    description: str
    error_code: int | None = None
    carrier_name: str | None = None


def default_description(event: str, kind: str, error_code: int | None = None) -> str:
    """Descriptions as Bandwidth writes them in its examples (bandwidth-facts §7.3)."""
    if event == "message-failed":
        return callback_description(error_code) if error_code is not None else "message-failed"
    if event == "message-delivered":
        # SMS: "ok"; MMS and group: handed to the carrier's MMSC.
        return "ok" if kind == "sms" else "Message delivered to carrier"
    if event == "message-sending":
        return "Message is sending to carrier"
    if event == "message-sent":
        return "Message sent to carrier"
    return "Incoming message received"


def magic_error_code(recipient: str) -> int | None:
    match = MAGIC_NUMBER.match(recipient)
    if match and lookup(int(match.group(1))) is not None:
        return int(match.group(1))
    return None


def _steps_for(message: Message, app: Application, scenario: Scenario) -> list[EventStep]:
    steps = list(scenario.defaults.sms if message.kind == "sms" else scenario.defaults.mms)
    if message.kind != "sms" and not app.mms_delivery_receipts:
        # Without MMS delivery receipts there is no message-sending and "delivered" means
        # only "handed off to the MMSC" (bandwidth-facts §11).
        steps = [s for s in steps if s.event != "message-sending"]
    if app.message_sent and not any(s.event == "message-sent" for s in steps):
        terminal_after = max((s.after for s in steps if s.event in TERMINAL), default=0.0)
        before = [s.after for s in steps if s.event not in TERMINAL]
        at = max(before) if before else terminal_after / 2
        steps.append(EventStep(event="message-sent", after=at))
    elif not app.message_sent:
        steps = [s for s in steps if s.event != "message-sent"]
    return sorted(steps, key=lambda s: s.after)


def plan(message: Message, app: Application, scenario: Scenario) -> list[PlannedEvent]:
    steps = _steps_for(message, app, scenario)
    terminal_after = max((s.after for s in steps if s.event in TERMINAL), default=0.0)
    events: list[PlannedEvent] = []
    invalid_in_group: list[PlannedEvent] = []
    for recipient in message.to:
        code = magic_error_code(recipient) if scenario.magic_numbers else None
        for step in steps:
            if code is not None and step.event in TERMINAL:
                failed = PlannedEvent(
                    recipient, "message-failed", step.after, default_description("message-failed", message.kind, code), code
                )
                events.append(failed)
                if message.kind == "group" and code in INVALID_RECIPIENT_CODES:
                    invalid_in_group.append(failed)
                continue
            error_code = step.error_code if step.event == "message-failed" else None
            description = step.description or default_description(step.event, message.kind, error_code)
            events.append(PlannedEvent(recipient, step.event, step.after, description, error_code, step.carrier_name))
    if scenario.group_invalid_number == "legacy":
        # The documented quirk (bandwidth-facts §12): the invalid recipient gets
        # message-failed, then message-delivered like everyone else.
        for failed in invalid_in_group:
            events.append(
                PlannedEvent(
                    failed.recipient,
                    "message-delivered",
                    max(terminal_after, failed.after),
                    default_description("message-delivered", message.kind),
                )
            )
    return sorted(events, key=lambda e: e.after)
