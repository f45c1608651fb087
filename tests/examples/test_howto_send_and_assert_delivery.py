"""How to: send a message and assert that its callbacks arrived.

Copy this file into your own tests: installing the package (docs/testing.md, 'Install')
provides the ``bandwidth_emulator`` and ``bandwidth_callback_receiver`` fixtures (the latter
also as ``callback_receiver``).
"""

import pytest

OUR_NUMBER = "+15554443333"
HANDSET = "+15552221111"


def test_sms_is_delivered(bandwidth_emulator, callback_receiver):
    # Your application would make this call; the emulator answers 202 like Bandwidth.
    message = bandwidth_emulator.send(to=HANDSET, from_=OUR_NUMBER, text="Your code is 1234")

    # The clock is manual: nothing happens until the test moves it.
    bandwidth_emulator.advance(1)

    # The emulator's journal: which callbacks happened, and how each attempt went.
    bandwidth_emulator.assert_callbacks(message["id"], ["message-delivered"])
    bandwidth_emulator.assert_attempts(message["id"], [200], type="message-delivered", state="delivered")

    # What your webhook received, exactly as Bandwidth would send it.
    [event] = callback_receiver.events
    assert event["type"] == "message-delivered"
    assert event["to"] == HANDSET
    assert event["message"]["id"] == message["id"]


# MMS gets message-sending first until 2027-01-06 (docs/scenarios.md, "Bandwidth's timeline"):
# pin the era you test, or your suite changes outcome on that date.
@pytest.mark.bandwidth_scenario({"era": "2026-07-06"})
def test_mms_gets_sending_then_delivered(bandwidth_emulator, callback_receiver):
    message = bandwidth_emulator.send(
        to=HANDSET, from_=OUR_NUMBER, text="A picture", media=["https://example.com/cat.png"]
    )
    bandwidth_emulator.advance(60)
    bandwidth_emulator.assert_callbacks(message["id"], ["message-sending", "message-delivered"])
    assert callback_receiver.types(message["id"]) == ["message-sending", "message-delivered"]
    # The message's per-recipient status follows the callbacks.
    [recipient] = bandwidth_emulator.message(message["id"])["recipients"]
    assert recipient["status"] == "DELIVERED"
