"""Fallback planning: a pure function from a multi-channel message and the scenario to the
channel attempts and the timed events of the channel that wins.

Bandwidth tries the channels "in the order they are listed. Once a message sends
successfully, the others will be ignored" (multiChannelMessageRequest in Bandwidth's API
reference). The emulator's reading, documented in docs/multichannel.md, 'Fallback':

- RBM to a handset that is not RCS-capable is skipped at once;
- an attempt whose planned events end in ``message-failed`` falls to the next channel
  when the failure happens;
- an RBM attempt with no delivery receipt expires after ``rcs.receiptTimeout`` and falls
  to the next channel;
- the first attempt that does not fall back wins, and only its events are sent, each
  carrying its ``channel``; the last channel's events are sent whatever they are.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from emulator.messaging.errorcodes import callback_description, lookup
from emulator.multichannel.wire import ChannelItem, media_urls, summary_text
from emulator.scenarios.eras import era_for
from emulator.scenarios.format import Application, EventStep, Scenario
from emulator.scenarios.planner import (
    PlannedEvent,
    Resolved,
    _application_switches,
    _failing,
    magic_error_code,
    steps_for,
)
from emulator.scenarios.rules import Subject, first_rule, pattern_matches
from emulator.state.models import Message, Recipients

# Magic numbers (docs/multichannel.md, 'Magic numbers'), beside +1555010EEEE of plain sends:
# +1555020xxxx is never RCS-capable; +1555021EEEE is, but its RBM attempt fails with EEEE.
NEVER_RCS = re.compile(r"^\+1555020\d{4}$")
RBM_FAILS = re.compile(r"^\+1555021(\d{4})$")
# RBM to a handset without RCS, with no channel left to fall back to: Bandwidth publishes no
# code for it; 4700 "Carrier Rejected as Invalid Service Type" says what happened.
NOT_CAPABLE_CODE = 4700

RBM_DESCRIPTIONS = {
    "message-sending": "Message is sending to carrier",
    "message-sent": "Message sent to carrier",
    # The 2026 spec's example of a delivered status callback.
    "message-delivered": "Message delivered to handset.",
    "message-read": "Message read by recipient.",
}


class ChannelTry(NamedTuple):
    """One channel of the list, as the fallback went: ``outcome`` is delivered (it won),
    failed, not-capable or expired; ``start`` and ``end`` count from the accept."""

    position: int  # in the channel list
    channel: str
    start: float
    end: float
    outcome: str
    error_code: int | None = None


class FallbackPlan(NamedTuple):
    tries: list[ChannelTry]
    winner: int  # index in the channel list of the channel whose events are sent
    events: list[PlannedEvent]  # already shifted by the winner's start


def rcs_capable(number: str, scenario: Scenario) -> bool:
    rcs = scenario.rcs
    if any(pattern_matches(p, number) for p in rcs.not_capable):
        return False
    if any(pattern_matches(p, number) for p in rcs.numbers):
        return True
    if scenario.magic_numbers and NEVER_RCS.match(number):
        return False
    return rcs.capable


def view(message: Message, item: ChannelItem) -> Message:
    """The message as it goes out on one channel: that channel's sender, application and content."""
    return message.replace(
        channel=item.channel,
        from_=item.from_,
        owner=item.from_,
        application_id=item.application_id,
        text=summary_text(item),
        media=media_urls(item) if item.channel == "MMS" else (),
        recipients=Recipients(),
    )


def _rbm_steps(message: Message, recipient: str, app: Application, scenario: Scenario) -> tuple[Resolved, ...]:
    rule = first_rule(scenario, Subject.of(message), recipient) if scenario.rules else None
    read_after = scenario.rcs.read_after
    steps: list[EventStep]
    if rule is not None:
        if rule.read_after is not None:
            read_after = rule.read_after
        if rule.events is not None:
            steps = list(rule.events)
        elif rule.no_receipt:
            steps = []
        else:
            assert rule.error_code is not None
            steps = _failing(list(scenario.rcs.events), rule.error_code, rule.description)
        if rule.carrier_name is not None:
            steps = [s if s.carrier_name else s.model_copy(update={"carrier_name": rule.carrier_name}) for s in steps]
    else:
        # +1555010EEEE fails on every channel; +1555021EEEE only its RBM attempt.
        magic = RBM_FAILS.match(recipient) if scenario.magic_numbers else None
        code = magic_error_code(recipient) if scenario.magic_numbers else None
        if code is None and magic and lookup(int(magic.group(1))) is not None:
            code = int(magic.group(1))
        steps = _failing(list(scenario.rcs.events), code) if code is not None else list(scenario.rcs.events)
    delivered = [s.after for s in steps if s.event == "message-delivered"]
    if read_after is not None and delivered and not any(s.event == "message-read" for s in steps):
        steps.append(EventStep(event="message-read", after=delivered[0] + read_after))
    # RBM has no MMS delivery receipts to switch off; the message-sent switch and the era's
    # (message-sending decommissioned, docs/scenarios.md, "Bandwidth's timeline") apply.
    steps = _application_switches(steps, "sms", app, era_for(scenario, message.time))
    out = []
    for step in steps:
        code = step.error_code if step.event == "message-failed" else None
        description = step.description or (
            callback_description(code) if code is not None else RBM_DESCRIPTIONS.get(step.event, step.event)
        )
        out.append((step.event, step.after, description, code, step.carrier_name))
    return tuple(out)


def plan_fallback(
    message: Message,
    items: list[ChannelItem],
    application: Application,
    applications: dict[str, Application],
    scenario: Scenario,
) -> FallbackPlan:
    """The attempts of each channel in order, until one wins; ``applications`` by id."""
    recipient = message.to[0]
    start = 0.0
    tries: list[ChannelTry] = []
    for index, item in enumerate(items):
        last = index == len(items) - 1
        app = applications.get(item.application_id, application)
        if item.channel == "RBM" and not rcs_capable(recipient, scenario):
            if not last:
                tries.append(ChannelTry(index, item.channel, start, start, "not-capable"))
                continue
            tries.append(ChannelTry(index, item.channel, start, start, "not-capable", NOT_CAPABLE_CODE))
            event = PlannedEvent(recipient, "message-failed", start, callback_description(NOT_CAPABLE_CODE), NOT_CAPABLE_CODE)
            return FallbackPlan(tries, index, [event])
        on_channel = view(message, item)
        steps = (
            _rbm_steps(on_channel, recipient, app, scenario)
            if item.channel == "RBM"
            else steps_for(on_channel, recipient, app, scenario)
        )
        failed = next((s for s in steps if s[0] == "message-failed"), None)
        terminal = any(s[0] in ("message-delivered", "message-failed") for s in steps)
        if not last and failed is not None:
            end = start + failed[1]
            tries.append(ChannelTry(index, item.channel, start, end, "failed", failed[3]))
            start = end
            continue
        if not last and not terminal and item.channel == "RBM":
            end = start + scenario.rcs.receipt_timeout
            tries.append(ChannelTry(index, item.channel, start, end, "expired"))
            start = end
            continue
        end = start + max((s[1] for s in steps), default=0.0)
        outcome = "failed" if failed is not None else "delivered" if terminal else "sent"
        tries.append(ChannelTry(index, item.channel, start, end, outcome, failed[3] if failed else None))
        events = [PlannedEvent(recipient, s[0], start + s[1], s[2], s[3], s[4]) for s in steps]
        return FallbackPlan(tries, index, events)
    raise AssertionError("a channel list holds at least one channel")
