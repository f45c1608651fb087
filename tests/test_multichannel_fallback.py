"""The fallback planner and the request parser as pure functions (emulator/multichannel)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.multichannel.fallback import NOT_CAPABLE_CODE, plan_fallback, rcs_capable
from emulator.multichannel.wire import ChannelItem, parse_request, suggestions_of, summary_text
from emulator.scenarios.format import Application, parse_scenario
from emulator.state.models import Message

TO = "+15552223333"
RBM = ChannelItem("RBM", "Agent", "app", {"text": "hi"})
SMS = ChannelItem("SMS", "+15554443333", "app", {"text": "hi"})
MMS = ChannelItem("MMS", "+15554443333", "app", {"media": [{"fileUrl": "https://e.com/a.png"}]})


def message(to: str = TO) -> Message:
    return Message(
        id="m", account_id="1", application_id="app", direction="out", from_="Agent", to=(to,), owner="Agent",
        time=0.0, segment_count=1, channel="RBM", multichannel={},
    )


def plan(items: list[ChannelItem], to: str = TO, **scenario: Any):
    app = Application(id="app")
    return plan_fallback(message(to), items, app, {"app": app}, parse_scenario(scenario))


def test_rbm_wins_by_default_and_later_channels_are_ignored():
    result = plan([RBM, SMS])
    assert result.winner == 0
    assert [(t.channel, t.outcome) for t in result.tries] == [("RBM", "delivered")]
    assert [(e.type, e.after, e.description) for e in result.events] == [
        ("message-delivered", 1.0, "Message delivered to handset.")
    ]


def test_each_kind_of_rbm_failure_moves_on_at_its_own_time():
    rules = [
        {"match": {"channel": "RBM", "to": "+15550000001"}, "events": [{"event": "message-failed", "after": 3, "errorCode": 4750}]},
        {"match": {"channel": "RBM", "to": "+15550000002"}, "noReceipt": True},
    ]
    failed = plan([RBM, MMS], "+15550000001", rules=rules)
    assert [(t.outcome, t.start, t.end, t.error_code) for t in failed.tries] == [("failed", 0, 3, 4750), ("delivered", 3, 5, None)]
    assert [(e.type, e.after) for e in failed.events] == [("message-sending", 3.5), ("message-delivered", 5.0)]
    silent = plan([RBM, SMS], "+15550000002", rules=rules, rcs={"receiptTimeout": 60})
    assert [(t.outcome, t.end) for t in silent.tries] == [("expired", 60), ("delivered", 61)]
    assert plan([RBM, SMS], "+15550201111").tries[0].outcome == "not-capable"


def test_the_last_channel_keeps_its_failure():
    only_rbm = plan([RBM], "+15550201111")
    assert [(e.type, e.error_code) for e in only_rbm.events] == [("message-failed", NOT_CAPABLE_CODE)]
    everywhere = plan([RBM, SMS], "+15550104720")
    assert [(t.channel, t.outcome, t.error_code) for t in everywhere.tries] == [("RBM", "failed", 4720), ("SMS", "failed", 4720)]
    assert everywhere.events[-1].type == "message-failed" and everywhere.winner == 1


@pytest.mark.parametrize(
    ("rcs", "number", "capable"),
    [
        ({}, TO, True),
        ({}, "+15550209999", False),
        ({"capable": False}, TO, False),
        ({"capable": False, "numbers": ["+1555222*"]}, TO, True),
        ({"numbers": [TO], "notCapable": [{"prefix": "+1555"}]}, TO, False),
    ],
)
def test_rcs_capability(rcs: dict[str, Any], number: str, capable: bool):
    assert rcs_capable(number, parse_scenario({"rcs": rcs})) is capable


def test_magic_ranges_are_off_without_magic_numbers():
    assert rcs_capable("+15550209999", parse_scenario({"magicNumbers": False}))
    result = plan([RBM, SMS], "+15550214720", magicNumbers=False)
    assert result.winner == 0


def test_parser_keeps_known_keys_and_reads_content():
    body = {
        "to": TO,
        "channelList": [
            {
                "from": "Agent", "applicationId": "app", "channel": "RBM", "unknown": 1,
                "content": {
                    "cardWidth": "SMALL",
                    "cardContents": [
                        {"title": "A", "suggestions": [{"type": "REPLY", "text": "Yes", "postbackData": "eWVz", "x": 1}]},
                        {"description": "B"},
                    ],
                    "suggestions": [{"type": "REQUEST_LOCATION", "text": "Where", "postbackData": "d2hlcmU="}],
                },
            }
        ],
    }
    request = parse_request(body, now=0)
    assert not isinstance(request, list)
    [item] = request.channels
    assert summary_text(item) == "A\nB"
    assert [s["text"] for s in suggestions_of(item.content)] == ["Where", "Yes"]
    assert "x" not in item.content["cardContents"][0]["suggestions"][0]
    assert item.to_json()["owner"] == "Agent" and "unknown" not in item.to_json()


@pytest.mark.parametrize(("era", "sending"), [("2026-07-06", True), ("2027-01-06", False)])
def test_the_era_applies_to_rbm_as_to_plain_sends(era: str, sending: bool):
    steps = [{"event": "message-sending", "after": 0.5}, {"event": "message-delivered", "after": 1}]
    result = plan([RBM, SMS], era=era, rcs={"events": steps})
    assert ("message-sending" in [e.type for e in result.events]) is sending
