"""How to: test what happens when your webhook is down, across 24 virtual hours.

Bandwidth retries a callback that does not get a 2xx answer for 24 hours. With the
manual clock, one ``advance`` call plays the whole day back in milliseconds, firing
every retry at its virtual time; the journal then shows every attempt.
"""

OUR_NUMBER = "+15554443333"
HANDSET = "+15552221111"

# The default retry schedule, in seconds after the first attempt (docs/callbacks.md).
SCHEDULE = [0, 60, 300, 900, 3600, 7200, 14400, 28800, 57600, 86400]


def test_callback_is_retried_until_the_webhook_answers(bandwidth_emulator, callback_receiver):
    callback_receiver.fail(times=3, status=503)  # down for a while, then back
    message = bandwidth_emulator.send(to=HANDSET, from_=OUR_NUMBER, text="Hello")

    bandwidth_emulator.advance(24 * 3600)

    bandwidth_emulator.assert_attempts(
        message["id"], [503, 503, 503, 200], type="message-delivered", state="delivered", offsets=SCHEDULE[:4]
    )
    # The same event arrived four times; only the last one got a 2xx.
    assert [r.status for r in callback_receiver.requests] == [503, 503, 503, 200]
    assert all(r.events[0]["message"]["id"] == message["id"] for r in callback_receiver.requests)


def test_callback_is_given_up_after_a_day(bandwidth_emulator, callback_receiver):
    callback_receiver.respond(500)  # down all day
    message = bandwidth_emulator.send(to=HANDSET, from_=OUR_NUMBER, text="Hello")

    bandwidth_emulator.advance(12 * 3600)
    [callback] = bandwidth_emulator.callbacks(message["id"])
    assert callback["state"] == "pending"  # still retrying at hour 12

    bandwidth_emulator.advance(13 * 3600)
    callback = bandwidth_emulator.assert_attempts(message["id"], [500] * 10, state="exhausted", offsets=SCHEDULE)
    assert callback["nextAttemptAt"] is None
    assert bandwidth_emulator.callbacks(message["id"], state="exhausted") == [callback]
