"""The planner: rules first, then magic numbers, then defaults; application switches; eras."""

from __future__ import annotations

from emulator.scenarios.eras import era_on
from emulator.scenarios.format import Application, Scenario, parse_scenario
from emulator.scenarios.planner import SequenceMemo, plan
from emulator.state.models import Message, RecipientStatus

APP = Application(id="app")


def message(to: list[str], *, text: str = "hi", media: list[str] | None = None, tag: str | None = None) -> Message:
    return Message(
        id="m1",
        account_id="9900000",
        application_id="app",
        direction="out",
        from_="+15554443333",
        to=tuple(to),
        owner="+15554443333",
        time=0.0,
        segment_count=1,
        text=text,
        media=tuple(media or ()),
        tag=tag,
        recipients={n: RecipientStatus(to=n) for n in to},
    )


def seq(events) -> list[tuple]:
    return [(e.recipient, e.type, e.after, e.error_code) for e in events]


def test_defaults():
    assert seq(plan(message(["+15551230001"]), APP, Scenario())) == [("+15551230001", "message-delivered", 1.0, None)]
    assert seq(plan(message(["+15551230001"], media=["https://x/a.png"]), APP, Scenario())) == [
        ("+15551230001", "message-sending", 0.5, None),
        ("+15551230001", "message-delivered", 2.0, None),
    ]


def test_rule_events_are_played_as_written_with_documented_descriptions():
    scenario = parse_scenario(
        {
            "rules": [
                {
                    "match": {"to": "+1555123*"},
                    "carrierName": "AT&T",
                    "events": [
                        {"event": "message-sending", "after": "1s"},
                        {"event": "message-failed", "after": "30s", "errorCode": 4720},
                    ],
                }
            ]
        }
    )
    events = plan(message(["+15551230001"], media=["https://x/a.png"]), APP, scenario)
    assert seq(events) == [
        ("+15551230001", "message-sending", 1.0, None),
        ("+15551230001", "message-failed", 30.0, 4720),
    ]
    assert events[1].description == "invalid-destination-address"
    assert {e.carrier_name for e in events} == {"AT&T"}


def test_error_code_shorthand_replaces_the_terminal_event_and_keeps_timing():
    scenario = parse_scenario({"rules": [{"match": {"kind": "mms"}, "errorCode": 4432, "description": "custom"}]})
    events = plan(message(["+15551230001"], media=["https://x/a.png"]), APP, scenario)
    assert seq(events) == [("+15551230001", "message-sending", 0.5, None), ("+15551230001", "message-failed", 2.0, 4432)]
    assert events[1].description == "custom"
    # Documented description when not overridden.
    scenario = parse_scenario({"rules": [{"errorCode": 9902}]})
    assert plan(message(["+15551230001"]), APP, scenario)[0].description == "delivery-receipt-expired"


def test_no_receipt_fails_9902_when_the_receipt_window_closes():
    scenario = parse_scenario({"rules": [{"noReceipt": True}]})
    # time 0 is before 2026-07-06: Bandwidth waited 2 h for a receipt.
    assert seq(plan(message(["+15551230001"]), APP, scenario)) == [("+15551230001", "message-failed", 7200.0, 9902)]
    mms = message(["+15551230001"], media=["https://x/a.png"])
    events = plan(mms, APP, scenario)
    assert seq(events) == [("+15551230001", "message-sending", 0.5, None), ("+15551230001", "message-failed", 7200.0, 9902)]
    assert events[-1].description == "delivery-receipt-expired"
    # message-sent, when enabled, comes when the message would have left, not halfway to the expiry.
    sent = [e for e in plan(message(["+15551230001"]), Application(id="app", message_sent=True), scenario) if e.type == "message-sent"]
    assert [e.after for e in sent] == [0.5]
    window = parse_scenario({"rules": [{"noReceipt": True}], "deliveryReceiptWindow": "10m"})
    assert seq(plan(message(["+15551230001"]), APP, window)) == [("+15551230001", "message-failed", 600.0, 9902)]


def test_rules_are_per_recipient_and_others_fall_through_to_defaults():
    scenario = parse_scenario({"rules": [{"match": {"to": "+15551230002"}, "errorCode": 4720}]})
    events = plan(message(["+15551230001", "+15551230002"]), APP, scenario)
    assert ("+15551230002", "message-failed", 2.0, 4720) in seq(events)
    assert ("+15551230001", "message-delivered", 2.0, None) in seq(events)


def test_rules_beat_magic_numbers_and_magic_numbers_beat_defaults():
    scenario = parse_scenario({"rules": [{"match": {"text": "special"}, "errorCode": 4432}]})
    assert seq(plan(message(["+15550104720"], text="special"), APP, scenario))[0][3] == 4432
    assert seq(plan(message(["+15550104720"]), APP, scenario))[0][3] == 4720
    off = parse_scenario({"magicNumbers": False})
    assert seq(plan(message(["+15550104720"]), APP, off))[0][1] == "message-delivered"


def test_application_switches_apply_to_rule_outcomes():
    scenario = parse_scenario(
        {"rules": [{"events": [{"event": "message-sending", "after": 1}, {"event": "message-delivered", "after": 3}]}]}
    )
    mms = message(["+15551230001"], media=["https://x/a.png"])
    no_receipts = Application(id="app", mms_delivery_receipts=False)
    assert seq(plan(mms, no_receipts, scenario)) == [("+15551230001", "message-delivered", 3.0, None)]
    with_sent = Application(id="app", message_sent=True)
    assert [e.type for e in plan(mms, with_sent, scenario)] == ["message-sending", "message-sent", "message-delivered"]


def test_legacy_group_quirk_applies_to_rule_failures_with_invalid_number_codes():
    rules = {"rules": [{"match": {"to": "+15551230002"}, "errorCode": 4720}]}
    group = message(["+15551230001", "+15551230002"])
    legacy = plan(group, APP, parse_scenario({**rules, "groupInvalidNumber": "legacy"}))
    assert [(e.recipient, e.type) for e in legacy if e.recipient == "+15551230002"] == [
        ("+15551230002", "message-sending"),
        ("+15551230002", "message-failed"),
        ("+15551230002", "message-delivered"),
    ]
    correct = plan(group, APP, parse_scenario(rules))
    assert [e.type for e in correct if e.recipient == "+15551230002"] == ["message-sending", "message-failed"]
    # A failure that is not about the number (5xxx) gets no extra event even in legacy mode.
    legacy = {"rules": [{"match": {"to": "+15551230002"}, "errorCode": 5600}], "groupInvalidNumber": "legacy"}
    other = plan(group, APP, parse_scenario(legacy))
    assert [e.type for e in other if e.recipient == "+15551230002"] == ["message-sending", "message-failed"]


def test_a_memo_keeps_default_sequences_without_changing_the_plan() -> None:
    memo = SequenceMemo()
    scenario = Scenario()
    for to in (["+15551230001"], ["+15551230001", "+15551230002"]):
        assert plan(message(to), APP, scenario, memo) == plan(message(to), APP, scenario)
    era = era_on(0.0)
    first = memo.default_sequence("sms", APP, scenario, era)
    assert memo.default_sequence("sms", APP, scenario, era) is first
    # Another scenario (or application) is another entry, never the first one's sequence.
    slow = parse_scenario({"defaults": {"sms": [{"event": "message-delivered", "after": 9}]}})
    assert seq(plan(message(["+15551230001"]), APP, slow, memo)) == [("+15551230001", "message-delivered", 9.0, None)]
    assert SequenceMemo().default_sequence("sms", APP, scenario, era) is not first


# -- MMS and group messages without delivery receipts (docs/scenarios.md) ----------------------

NO_RECEIPTS = Application(id="app", mms_delivery_receipts=False)


def test_mms_without_receipts_turns_carrier_reported_failures_into_delivered():
    mms = message(["+15551230001"], media=["https://x/a.png"])
    for code in (4712, 4775, 5620, 9902, 9999):
        scenario = parse_scenario({"rules": [{"errorCode": code}]})
        events = plan(mms, NO_RECEIPTS, scenario)
        assert seq(events) == [("+15551230001", "message-delivered", 2.0, None)], code
        assert events[0].description == "Message delivered to carrier"
        # With receipts, the same rule fails after message-sending.
        assert seq(plan(mms, APP, scenario))[-1] == ("+15551230001", "message-failed", 2.0, code)
    # The magic numbers follow the same rule.
    assert seq(plan(message(["+15550109902"], media=["https://x/a.png"]), NO_RECEIPTS, Scenario()))[-1][1] == "message-delivered"
    # SMS has no MMS receipts to switch off.
    assert seq(plan(message(["+15550104712"]), NO_RECEIPTS, Scenario())) == [("+15550104712", "message-failed", 1.0, 4712)]


def test_mms_without_receipts_keeps_failures_bandwidth_detects_itself():
    mms = message(["+15551230001"], media=["https://x/a.png"])
    for code in (4432, 4350, 5100, 4720, 4406):
        scenario = parse_scenario({"rules": [{"errorCode": code}]})
        assert seq(plan(mms, NO_RECEIPTS, scenario)) == [("+15551230001", "message-failed", 2.0, code)], code


def test_mms_without_receipts_and_the_group_invalid_number_quirk():
    group = message(["+15551230001", "+15550104720"])
    legacy = plan(group, NO_RECEIPTS, parse_scenario({"groupInvalidNumber": "legacy"}))
    assert [(e.recipient, e.type, e.error_code) for e in legacy] == [
        ("+15551230001", "message-delivered", None),
        ("+15550104720", "message-failed", 4720),
        ("+15550104720", "message-delivered", None),
    ]
    correct = plan(group, NO_RECEIPTS, Scenario())
    assert sorted((e.recipient, e.type) for e in correct) == [
        ("+15550104720", "message-failed"),
        ("+15551230001", "message-delivered"),
    ]
    # A carrier's rejection of a valid number is a receipt the application did not ask for.
    opted_out = plan(message(["+15551230001", "+15550104775"]), NO_RECEIPTS, Scenario())
    assert {e.type for e in opted_out} == {"message-delivered"}


def test_mms_without_receipts_awaits_no_receipt_so_none_expires():
    scenario = parse_scenario({"rules": [{"noReceipt": True}]})
    mms = message(["+15551230001"], media=["https://x/a.png"])
    assert seq(plan(mms, NO_RECEIPTS, scenario)) == [("+15551230001", "message-delivered", 2.0, None)]
    assert seq(plan(mms, APP, scenario))[-1] == ("+15551230001", "message-failed", 7200.0, 9902)
