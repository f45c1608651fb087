"""The planner: a pure function from a message and the scenario to timed events.

No I/O and no clock: it returns, for each recipient, which callback events happen and how
many seconds after the message was accepted. The service turns these into callbacks and
the scheduler fires them.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from emulator.messaging.errorcodes import INVALID_RECIPIENT_CODES, callback_description, detected_by_bandwidth, lookup
from emulator.scenarios.eras import Era, era_for
from emulator.scenarios.format import Application, EventStep, Rule, Scenario
from emulator.scenarios.rules import Subject, first_rule
from emulator.state.models import Message

# +1555010EEEE: EEEE is the Bandwidth error code the recipient fails with (product brief).
MAGIC_NUMBER = re.compile(r"^\+1555010(\d{4})$")

TERMINAL = ("message-delivered", "message-failed")

# The code of a message whose delivery receipt never came (docs/scenarios.md, "Bandwidth's timeline").
RECEIPT_EXPIRED = 9902

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


def _sent_at(steps: list[EventStep]) -> float:
    """When message-sent goes: after the last non-terminal event, or halfway to the terminal one."""
    before = [s.after for s in steps if s.event not in TERMINAL]
    if before:
        return max(before)
    return max((s.after for s in steps if s.event in TERMINAL), default=0.0) / 2


def _no_receipt(kind: str, scenario: Scenario, app: Application, era: Era) -> list[EventStep]:
    """The carrier never returns a delivery receipt: Bandwidth waits for it until the era's
    window closes, then fails the message with 9902 (docs/scenarios.md, "Bandwidth's timeline")."""
    defaults = _default_steps(kind, scenario)
    if kind != "sms" and not app.mms_delivery_receipts:
        # No receipt is asked for, so none is missed: delivered when handed off (docs/scenarios.md,
        # "MMS and group messages without delivery receipts").
        return defaults
    steps = [s for s in defaults if s.event not in TERMINAL]
    if kind != "sms" and not any(s.event == "message-sending" for s in steps):
        steps.append(EventStep(event="message-sending", after=0.5))
    if app.message_sent and not any(s.event == "message-sent" for s in steps):
        # In transit when it would have been: the receipt is what never comes.
        steps.append(EventStep(event="message-sent", after=_sent_at(defaults)))
    last = max((s.after for s in steps), default=0.0)
    steps.append(EventStep(event="message-failed", after=max(era.receipt_window, last), error_code=RECEIPT_EXPIRED))
    return steps


def _rule_steps(rule: Rule, kind: str, scenario: Scenario, app: Application, era: Era) -> list[EventStep]:
    if rule.events is not None:
        steps = list(rule.events)
    elif rule.no_receipt:
        steps = _no_receipt(kind, scenario, app, era)
    else:
        assert rule.error_code is not None
        steps = _failing(_default_steps(kind, scenario), rule.error_code, rule.description)
    if rule.carrier_name is not None:
        steps = [s if s.carrier_name else s.model_copy(update={"carrier_name": rule.carrier_name}) for s in steps]
    return steps


def _handed_off(step: EventStep) -> EventStep:
    return EventStep(event="message-delivered", after=step.after, carrier_name=step.carrier_name)


def _application_switches(steps: list[EventStep], kind: str, app: Application, era: Era | None = None) -> list[EventStep]:
    """The application's switches, and the era's (none without ``era``), applied to ``steps``."""
    if kind != "sms" and not app.mms_delivery_receipts:
        # Without MMS delivery receipts there is no message-sending, "delivered" means only
        # "handed off to the MMSC", and a failure only a carrier's receipt could report
        # becomes that delivered; failures Bandwidth detects itself stay (docs/scenarios.md,
        # "MMS and group messages without delivery receipts").
        steps = [
            _handed_off(s) if s.event == "message-failed" and not detected_by_bandwidth(s.error_code) else s
            for s in steps
            if s.event != "message-sending"
        ]
    if era is not None and not era.message_sending:
        # Decommissioned on 2027-01-06 (docs/scenarios.md, "Bandwidth's timeline").
        steps = [s for s in steps if s.event != "message-sending"]
    if app.message_sent and not any(s.event == "message-sent" for s in steps):
        steps.append(EventStep(event="message-sent", after=_sent_at(steps)))
    elif not app.message_sent:
        # message-sent is opt-in per application, as on Bandwidth; only bandwidth-sdk >= 23.1.4
        # parses it (docs/compatibility.md, "Callbacks").
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
    every message), worked out once per (scenario, application, kind, era).

    Both are frozen models; entries are keyed by identity and hold them, so that their ids
    stay theirs. One memo belongs to one service (emulator.service), never to the process.
    """

    MAX_ENTRIES = 64

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int, str, Era], tuple[Scenario, Application, tuple[Resolved, ...]]] = {}

    def default_sequence(self, kind: str, app: Application, scenario: Scenario, era: Era) -> tuple[Resolved, ...]:
        key = (id(scenario), id(app), kind, era)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is scenario and hit[1] is app:
            return hit[2]
        steps = _default_sequence(kind, app, scenario, era)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (scenario, app, steps)
        return steps


def _default_sequence(kind: str, app: Application, scenario: Scenario, era: Era) -> tuple[Resolved, ...]:
    return _resolve(_application_switches(_default_steps(kind, scenario), kind, app, era), kind)


def steps_for(
    message: Message,
    recipient: str,
    app: Application,
    scenario: Scenario,
    memo: SequenceMemo | None = None,
    era: Era | None = None,
) -> tuple[Resolved, ...]:
    """The event sequence for one recipient, in time order: first matching rule, else magic
    number, else defaults (from ``memo`` when given); in ``era``, by default that of the
    message's send date."""
    kind = message.kind
    if era is None:
        era = era_for(scenario, message.time)
    rule = first_rule(scenario, Subject.of(message), recipient) if scenario.rules else None
    if rule is not None:
        return _resolve(_application_switches(_rule_steps(rule, kind, scenario, app, era), kind, app, era), kind)
    code = magic_error_code(recipient) if scenario.magic_numbers else None
    if code is None:
        if memo is not None:
            return memo.default_sequence(kind, app, scenario, era)
        return _default_sequence(kind, app, scenario, era)
    return _resolve(_application_switches(_failing(_default_steps(kind, scenario), code), kind, app, era), kind)


def plan(
    message: Message, app: Application, scenario: Scenario, memo: SequenceMemo | None = None
) -> list[PlannedEvent]:
    """Every recipient's events, in time order, in the era of the message's virtual send date.
    ``memo`` keeps the default sequences between calls; the result is the same without it."""
    era = era_for(scenario, message.time)
    if len(message.to) == 1:
        # One recipient: its sequence is already in time order, and no group quirk applies.
        recipient = message.to[0]
        return [PlannedEvent(recipient, *step) for step in steps_for(message, recipient, app, scenario, memo, era)]
    events: list[PlannedEvent] = []
    invalid_in_group: list[PlannedEvent] = []
    for recipient in message.to:
        for step in steps_for(message, recipient, app, scenario, memo, era):
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
