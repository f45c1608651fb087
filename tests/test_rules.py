"""Matching messages against match blocks: every kind of pattern and every key."""

from __future__ import annotations

import pytest

from emulator.scenarios.format import Match, Pattern, parse_scenario
from emulator.scenarios.rules import Subject, first_rule, kind_of, matches, matching_recipients, pattern_matches


def subject(**overrides) -> Subject:
    base = dict(
        account_id="9900000",
        application_id="app-1",
        from_="+15554443333",
        to=("+15551230001",),
        text="Your code is 1234",
        tag="otp",
        kind="sms",
    )
    base.update(overrides)
    return Subject(**base)


@pytest.mark.parametrize(
    "pattern, value, expected",
    [
        ({"exact": "+15551230001"}, "+15551230001", True),
        ({"exact": "+15551230001"}, "+155512300011", False),
        ({"prefix": "+1555123"}, "+15551230001", True),
        ({"prefix": "+44"}, "+15551230001", False),
        ({"glob": "+1555123????"}, "+15551230001", True),
        ({"glob": "+1555123[5-9]*"}, "+15551230001", False),
        ({"regex": r"^\+1555\d{7}$"}, "+15551230001", True),
        ({"regex": r"0001"}, "+15551230001", True),  # searched, not anchored
        ({"regex": r"^0001"}, "+15551230001", False),
        ({"contains": "code"}, "Your code is 1234", True),
        ({"contains": "Code"}, "Your code is 1234", False),
    ],
)
def test_patterns(pattern, value, expected):
    assert pattern_matches(Pattern(**pattern), value) is expected


def test_missing_value_never_matches():
    assert not pattern_matches(Pattern(glob="*"), None)


def test_empty_match_matches_everything():
    assert matches(Match(), subject())


@pytest.mark.parametrize(
    "match, expected",
    [
        ({"from": "+15554443333"}, True),
        ({"from": "+15554440000"}, False),
        ({"text": "code"}, True),
        ({"text": {"regex": r"\b\d{4}$"}}, True),
        ({"text": "STOP"}, False),
        ({"tag": "otp"}, True),
        ({"tag": "o*"}, True),
        ({"tag": "marketing"}, False),
        ({"kind": "sms"}, True),
        ({"kind": ["mms", "group"]}, False),
        ({"applicationId": "app-*"}, True),
        ({"accountId": "9900001"}, False),
        ({"to": "+1555123*", "text": "code", "kind": "sms"}, True),
        ({"to": "+1555123*", "text": "STOP"}, False),  # every key must match
    ],
)
def test_match_keys(match, expected):
    assert matches(parse_scenario({"rules": [{"match": match, "noReceipt": True}]}).rules[0].match, subject()) is expected


def test_message_without_tag_does_not_match_a_tag_pattern():
    assert not matches(Match.model_validate({"tag": "*"}), subject(tag=None))


def test_to_is_per_recipient_for_rules_and_any_recipient_otherwise():
    group = subject(to=("+15551230001", "+15559990000"), kind="group")
    match = Match.model_validate({"to": "+1555999*"})
    assert matches(match, group)  # any recipient
    assert not matches(match, group, "+15551230001")
    assert matches(match, group, "+15559990000")
    assert matching_recipients(match, group) == ["+15559990000"]


def test_first_matching_rule_wins():
    scenario = parse_scenario(
        {
            "rules": [
                {"name": "a", "match": {"to": "+15551230001", "text": "never"}, "errorCode": 4720},
                {"name": "b", "match": {"to": "+1555123*"}, "errorCode": 4721},
                {"name": "c", "match": {"to": "+15551230001"}, "errorCode": 4432},
            ]
        }
    )
    assert first_rule(scenario, subject(), "+15551230001").name == "b"
    assert first_rule(scenario, subject(), "+15559990000") is None


def test_kind_of():
    assert kind_of(["+1"], []) == "sms"
    assert kind_of(["+1"], ["https://x/y.png"]) == "mms"
    assert kind_of(["+1", "+2"], []) == "group"
