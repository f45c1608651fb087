"""The planner: a pure function from a message and the scenario to timed events.

No I/O and no clock: it returns, for each recipient, which callback events happen and how
many seconds after the message was accepted. The service turns these into callbacks and
the scheduler fires them.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from emulator.messaging.errorcodes import INVALID_RECIPIENT_CODES, callback_description, lookup
from emulator.scenarios.format import Application, EventStep, Rule, Scenario
from emulator.scenarios.rules import Subject, first_rule
from emulator.state.models import Message

# +1555010EEEE: EEEE is the Bandwidth error code the recipient fails with (product brief).
MAGIC_NUMBER = re.compile(r"^\+1555010(\d{4})$")

TERMINAL = ("message-delivered", "message-failed")

# Seconds between message-failed and the extra message-delivered of the legacy group quirk.
LEGACY_DELIVERED_GAP = 0.1


class PlannedEvent(NamedTuple):
    recipient: str
    type: str
    after: float
    description: str
    error_code: int | None = None
    carrier_name: str | None = None


def default_description(event: str, kind: str, error_code: int | None = None) -> str:
    """Descriptions as Bandwidth writes them in its examples (docs/bandwidth-behaviour.md, 'Callbacks')."""
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


def _default_steps(kind: str, scenario: Scenario) -> list[EventStep]:
    return list(scenario.defaults.sms if kind == "sms" else scenario.defaults.mms)


def _failing(steps: list[EventStep], code: int, description: str | None = None) -> list[EventStep]:
    """The same sequence, with its terminal event turned into message-failed ``code``."""
    out = [s for s in steps if s.event not in TERMINAL]
    at = max((s.after for s in steps if s.event in TERMINAL), default=None)
    if at is None:
        at = max((s.after for s in steps), default=0.0)
    out.append(EventStep(event="message-failed", after=at, error_code=code, description=description))
    return out


def _rule_steps(rule: Rule, kind: str, scenario: Scenario) -> list[EventStep]:
    if rule.events is not None:
        steps = list(rule.events)
    elif rule.no_receipt:
        # The carrier never returns a delivery receipt: message-sending, then silence
        # (support article 360051643414, docs/bandwidth-behaviour.md, 'MMS delivery receipts').
        sending = [s for s in _default_steps(kind, scenario) if s.event == "message-sending"]
        steps = sending[:1] or [EventStep(event="message-sending", after=0.5)]
    else:
        assert rule.error_code is not None
        steps = _failing(_default_steps(kind, scenario), rule.error_code, rule.description)
    if rule.carrier_name is not None:
        steps = [s if s.carrier_name else s.model_copy(update={"carrier_name": rule.carrier_name}) for s in steps]
    return steps


def _application_switches(steps: list[EventStep], kind: str, app: Application) -> list[EventStep]:
    if kind != "sms" and not app.mms_delivery_receipts:
        # Without MMS delivery receipts there is no message-sending and "delivered" means
        # only "handed off to the MMSC" (docs/bandwidth-behaviour.md, 'MMS delivery receipts').
        steps = [s for s in steps if s.event != "message-sending"]
    if app.message_sent and not any(s.event == "message-sent" for s in steps):
        terminal_after = max((s.after for s in steps if s.event in TERMINAL), default=0.0)
        before = [s.after for s in steps if s.event not in TERMINAL]
        at = max(before) if before else terminal_after / 2
        steps.append(EventStep(event="message-sent", after=at))
    elif not app.message_sent:
        # message-sent is opt-in: SDKs before v20 reject it (docs/bandwidth-behaviour.md, 'Callbacks').
        steps = [s for s in steps if s.event != "message-sent"]
    return sorted(steps, key=lambda s: s.after)


# One step of a recipient's sequence, ready to become a PlannedEvent:
# (type, after, description, error code, carrier name).
Resolved = tuple[str, float, str, "int | None", "str | None"]


def _resolve(steps: list[EventStep], kind: str) -> tuple[Resolved, ...]:
    out = []
    for step in steps:
        error_code = step.error_code if step.event == "message-failed" else None
        description = step.description or default_description(step.event, kind, error_code)
        out.append((step.event, step.after, description, error_code, step.carrier_name))
    return tuple(out)


class SequenceMemo:
    """The event sequence of a recipient that no rule and no magic number singles out (nearly
    every message), worked out once per (scenario, application, kind).

    Both are frozen models; entries are keyed by identity and hold them, so that their ids
    stay theirs. One memo belongs to one service (emulator.service), never to the process.
    """

    MAX_ENTRIES = 64

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int, str], tuple[Scenario, Application, tuple[Resolved, ...]]] = {}

    def default_sequence(self, kind: str, app: Application, scenario: Scenario) -> tuple[Resolved, ...]:
        key = (id(scenario), id(app), kind)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is scenario and hit[1] is app:
            return hit[2]
        steps = _default_sequence(kind, app, scenario)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (scenario, app, steps)
        return steps


def _default_sequence(kind: str, app: Application, scenario: Scenario) -> tuple[Resolved, ...]:
    return _resolve(_application_switches(_default_steps(kind, scenario), kind, app), kind)


def steps_for(
    message: Message, recipient: str, app: Application, scenario: Scenario, memo: SequenceMemo | None = None
) -> tuple[Resolved, ...]:
    """The event sequence for one recipient, in time order: first matching rule, else magic
    number, else defaults (from ``memo`` when given)."""
    kind = message.kind
    rule = first_rule(scenario, Subject.of(message), recipient) if scenario.rules else None
    if rule is not None:
        return _resolve(_application_switches(_rule_steps(rule, kind, scenario), kind, app), kind)
    code = magic_error_code(recipient) if scenario.magic_numbers else None
    if code is None:
        return memo.default_sequence(kind, app, scenario) if memo is not None else _default_sequence(kind, app, scenario)
    return _resolve(_application_switches(_failing(_default_steps(kind, scenario), code), kind, app), kind)


def plan(
    message: Message, app: Application, scenario: Scenario, memo: SequenceMemo | None = None
) -> list[PlannedEvent]:
    """Every recipient's events, in time order. ``memo`` keeps the default sequences between
    calls; the result is the same without it."""
    if len(message.to) == 1:
        # One recipient: its sequence is already in time order, and no group quirk applies.
        recipient = message.to[0]
        return [PlannedEvent(recipient, *step) for step in steps_for(message, recipient, app, scenario, memo)]
    events: list[PlannedEvent] = []
    invalid_in_group: list[PlannedEvent] = []
    for recipient in message.to:
        for step in steps_for(message, recipient, app, scenario, memo):
            event = PlannedEvent(recipient, *step)
            events.append(event)
            if event.error_code in INVALID_RECIPIENT_CODES:  # more than one recipient: a group
                invalid_in_group.append(event)
    if scenario.group_invalid_number == "legacy" and invalid_in_group:
        # The documented quirk (docs/bandwidth-behaviour.md, 'The group invalid-number quirk'): the invalid recipient gets
        # message-failed, then message-delivered when everyone else does.
        terminal_after = max((e.after for e in events if e.type in TERMINAL), default=0.0)
        for failed in invalid_in_group:
            # "Then": strictly after the failure, or callbacks due at the same instant
            # could reach the webhook in either order.
            at = terminal_after if terminal_after > failed.after else failed.after + LEGACY_DELIVERED_GAP
            events.append(
                PlannedEvent(
                    failed.recipient,
                    "message-delivered",
                    at,
                    default_description("message-delivered", message.kind),
                )
            )
    return sorted(events, key=lambda e: e.after)
