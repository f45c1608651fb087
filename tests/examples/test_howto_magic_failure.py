"""How to: make a message fail, with no configuration at all.

A recipient ``+1555010EEEE``, where ``EEEE`` is a Bandwidth error code, gets
``message-failed`` with that code and Bandwidth's description of it.
"""

import pytest

OUR_NUMBER = "+15554443333"
INVALID_DESTINATION = "+15550104720"  # 4720: invalid-destination-address
OPTED_OUT = "+15550104775"  # 4775: the carrier rejected it, the user opted out


def test_magic_number_fails_with_its_error_code(bandwidth_emulator, callback_receiver):
    message = bandwidth_emulator.send(to=INVALID_DESTINATION, from_=OUR_NUMBER, text="Your code is 1234")
    bandwidth_emulator.advance(1)

    bandwidth_emulator.assert_callbacks(message["id"], ["message-failed"])
    [event] = callback_receiver.events
    assert event["errorCode"] == 4720
    assert event["description"] == "invalid-destination-address"
    # The message's status follows, as GET /messages would show it.
    [recipient] = bandwidth_emulator.message(message["id"])["recipients"]
    assert (recipient["status"], recipient["errorCode"]) == ("FAILED", 4720)


# A group gets message-sending first until 2027-01-06 (docs/scenarios.md, "Bandwidth's
# timeline"); the test pins that era so that it does not change with the date it runs on.
@pytest.mark.bandwidth_scenario({"era": "2026-07-06"})
def test_only_the_magic_recipient_of_a_group_fails(bandwidth_emulator, callback_receiver):
    group = bandwidth_emulator.send(to=["+15552221111", OPTED_OUT], from_=OUR_NUMBER, text="Hi both")
    bandwidth_emulator.advance(60)

    bandwidth_emulator.assert_callbacks(group["id"], ["message-sending", "message-delivered"], recipient="+15552221111")
    bandwidth_emulator.assert_callbacks(group["id"], ["message-sending", "message-failed"], recipient=OPTED_OUT)
    failed = [e for e in callback_receiver.events if e["type"] == "message-failed"]
    assert [(e["to"], e["errorCode"]) for e in failed] == [(OPTED_OUT, 4775)]
