"""How to: test an RBM (RCS) conversation: send rich content with suggested replies, be the
handset that taps one, and check what your inbound webhook gets (docs/multichannel.md).

The emulator's default webhook here is the plugin's ``callback_receiver``; in your own
tests it is your application's URL.
"""

import pytest

HANDSET = "+15552223333"
AGENT = "BandwidthRBM"
OUR_NUMBER = "+15554443333"

TABLE_READY = {
    "from": AGENT,
    "channel": "RBM",
    "content": {
        "text": "Your table is ready. Coming?",
        "suggestions": [
            {"type": "REPLY", "text": "Confirm", "postbackData": "Y29uZmlybQ=="},
            {"type": "REPLY", "text": "Cancel", "postbackData": "Y2FuY2Vs"},
        ],
    },
}
SMS_FALLBACK = {"from": OUR_NUMBER, "channel": "SMS", "content": {"text": "Your table is ready. Reply Y to confirm."}}


def test_tapping_a_suggestion_reaches_the_inbound_webhook(bandwidth_emulator, callback_receiver):
    sent = bandwidth_emulator.send_multichannel(to=HANDSET, channels=[TABLE_READY, SMS_FALLBACK], tag="table-42")
    bandwidth_emulator.advance(5)
    bandwidth_emulator.assert_callbacks(sent["id"], ["message-delivered"])
    assert bandwidth_emulator.message(sent["id"])["channel"] == "RBM"

    # Be the handset: read the message, then tap "Confirm".
    bandwidth_emulator.read_message(sent["id"])
    answer = bandwidth_emulator.tap_suggestion(sent["id"], "Confirm")
    bandwidth_emulator.advance(0)

    [tapped] = [e for e in callback_receiver.events if e["type"] == "suggestion-response"]
    assert tapped["message"]["id"] == answer["id"]
    assert tapped["message"]["suggestionResponse"] == {
        "text": "Confirm",
        "postbackData": "Y29uZmlybQ==",
        "pairedMessageId": sent["id"],
    }
    assert "message-read" in callback_receiver.types(sent["id"])


@pytest.mark.bandwidth_scenario({"rcs": {"notCapable": [HANDSET]}})
def test_a_handset_without_rcs_gets_the_sms(bandwidth_emulator):
    sent = bandwidth_emulator.send_multichannel(to=HANDSET, channels=[TABLE_READY, SMS_FALLBACK])
    bandwidth_emulator.advance(5)
    shown = bandwidth_emulator.message(sent["id"])
    assert shown["channel"] == "SMS" and shown["from"] == OUR_NUMBER
    assert [a["outcome"] for a in shown["multichannel"]["attempts"]] == ["not-capable", "delivered"]
