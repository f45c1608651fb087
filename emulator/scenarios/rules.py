"""Matching messages against a scenario's ``match`` blocks.

Rules, faults and auto-replies all say which messages they are for with the same
:class:`~emulator.scenarios.format.Match`; this module decides whether a message fits one.
Pure functions, no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from emulator.scenarios.format import Match, Pattern, Rule, Scenario
from emulator.scenarios.regex import regex_search
from emulator.state.models import Message


@dataclass(frozen=True)
class Subject:
    """What a match block looks at: a message (or a send not yet accepted)."""

    account_id: str
    application_id: str
    from_: str
    to: tuple[str, ...]
    text: str
    tag: str | None
    kind: str
    # The multi-channel API's channel (RBM, SMS, MMS); None: a plain send, SMS or MMS by kind.
    channel: str | None = None

    @classmethod
    def of(cls, message: Message) -> Subject:
        return cls(
            account_id=message.account_id,
            application_id=message.application_id,
            from_=message.from_,
            to=message.to,
            text=message.text,
            tag=message.tag,
            kind=message.kind,
            channel=message.channel,
        )


def kind_of(to: Sequence[str], media: Sequence[str]) -> str:
    """sms, mms or group, as :attr:`Message.kind` decides it."""
    if len(to) > 1:
        return "group"
    return "mms" if media else "sms"


def pattern_matches(pattern: Pattern, value: str | None) -> bool:
    if value is None:
        return False
    if pattern.exact is not None:
        return value == pattern.exact
    if pattern.prefix is not None:
        return value.startswith(pattern.prefix)
    if pattern.glob is not None:
        return fnmatchcase(value, pattern.glob)
    if pattern.regex is not None:
        # RE2, linear in the text; compiled once, when the scenario was checked.
        return regex_search(pattern.regex, value)
    if pattern.contains is not None:
        return pattern.contains in value
    return False


def matches(match: Match, subject: Subject, recipient: str | None = None) -> bool:
    """Whether ``subject`` fits ``match``.

    With ``recipient``, ``to`` is checked against that recipient only (rules are per
    recipient); without, any recipient of the message will do (faults, auto-replies).
    """
    if match.to is not None:
        candidates = (recipient,) if recipient is not None else subject.to
        if not any(pattern_matches(match.to, number) for number in candidates):
            return False
    if match.from_ is not None and not pattern_matches(match.from_, subject.from_):
        return False
    if match.text is not None and not pattern_matches(match.text, subject.text):
        return False
    if match.tag is not None and not pattern_matches(match.tag, subject.tag):
        return False
    if match.kind is not None and subject.kind not in match.kind:
        return False
    if match.channel is not None:
        channel = subject.channel or ("SMS" if subject.kind == "sms" else "MMS")
        if channel not in match.channel:
            return False
    if match.application_id is not None and not pattern_matches(match.application_id, subject.application_id):
        return False
    return not (match.account_id is not None and not pattern_matches(match.account_id, subject.account_id))


def matching_recipients(match: Match, subject: Subject) -> list[str]:
    """The recipients of ``subject`` for which ``match`` holds."""
    return [number for number in subject.to if matches(match, subject, number)]


def first_rule(scenario: Scenario, subject: Subject, recipient: str) -> Rule | None:
    """The first rule that matches this recipient of the message: first match wins."""
    for rule in scenario.rules:
        if matches(rule.match, subject, recipient):
            return rule
    return None
