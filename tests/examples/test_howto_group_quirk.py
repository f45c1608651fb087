"""How to: test your handling of Bandwidth's group-message quirk.

Bandwidth documents that, in a group message, an invalid recipient gets ``message-failed``
*and then* ``message-delivered`` like everyone else. A webhook that treats the last event
as the truth marks that number as delivered. The scenario switch ``groupInvalidNumber``
chooses between that documented behaviour (``legacy``) and exactly one terminal callback
per recipient (``correct``, the default).
"""

import pytest

# message-sending is no longer sent from 2027-01-06 (docs/scenarios.md, "Bandwidth's timeline"):
# these tests expect it, so they pin the era they mean rather than follow the calendar.
ERA = "2026-07-06"

OUR_NUMBER = "+15554443333"
FRIEND = "+15552221111"
INVALID = "+15550104720"  # magic number: fails with 4720 invalid-destination-address


@pytest.mark.bandwidth_scenario({"groupInvalidNumber": "legacy", "era": ERA})
def test_invalid_group_recipient_gets_failed_then_delivered(bandwidth_emulator, callback_receiver):
    group = bandwidth_emulator.send(to=[FRIEND, INVALID], from_=OUR_NUMBER, text="Dinner at 8?")
    bandwidth_emulator.advance(60)

    bandwidth_emulator.assert_callbacks(
        group["id"], ["message-sending", "message-failed", "message-delivered"], recipient=INVALID
    )
    # Your webhook sees both terminal events for the invalid number...
    about_invalid = [e["type"] for e in callback_receiver.events if e["to"] == INVALID]
    assert about_invalid[-2:] == ["message-failed", "message-delivered"]
    # ...but the message's status keeps the failure, as Bandwidth's GET /messages does.
    statuses = {r["to"]: r["status"] for r in bandwidth_emulator.message(group["id"])["recipients"]}
    assert statuses == {FRIEND: "DELIVERED", INVALID: "FAILED"}


@pytest.mark.bandwidth_scenario({"era": ERA})
def test_by_default_each_recipient_gets_one_terminal_callback(bandwidth_emulator, callback_receiver):
    group = bandwidth_emulator.send(to=[FRIEND, INVALID], from_=OUR_NUMBER, text="Dinner at 8?")
    bandwidth_emulator.advance(60)

    bandwidth_emulator.assert_callbacks(group["id"], ["message-sending", "message-failed"], recipient=INVALID)
    bandwidth_emulator.assert_callbacks(group["id"], ["message-sending", "message-delivered"], recipient=FRIEND)
