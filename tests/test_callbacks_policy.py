"""The retry policy of emulator/delivery/callbacks.py as pure functions: what counts as
delivered, and when the next attempt is due (docs/callbacks.md). The same rules end to end,
through the journal: test_callbacks.py."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.delivery.callbacks import next_attempt_time, succeeded
from emulator.delivery.dispatcher import Outcome
from emulator.scenarios.format import DEFAULT_RETRY_SCHEDULE, Application
from emulator.state.models import Attempt, Callback

T0 = 1_767_322_800.0


def application(**settings: Any) -> Application:
    return Application.model_validate({"id": "app", **settings})


def callback(*attempts: tuple[float, int]) -> Callback:
    """A callback planned at T0 with attempts given as (time, number)."""
    cb = Callback(
        account_id="9900000", message_id="m1", application_id="app", type="message-delivered",
        recipient="+15552221111", url="http://127.0.0.1:9/cb", planned_at=T0,
    )  # fmt: skip
    cb.attempts = tuple(Attempt(time=t, status=500, error=None, duration_ms=1.0, number=n) for t, n in attempts)
    return cb


@pytest.mark.parametrize(("status", "delivered"), [(200, True), (204, True), (299, True), (199, False), (301, False),
                                                   (308, False), (400, False), (401, False), (500, False)])  # fmt: skip
def test_only_2xx_is_delivered_by_default(status: int, delivered: bool) -> None:
    assert succeeded(Outcome(status, None, 1.0), application()) is delivered


@pytest.mark.parametrize(("status", "delivered"), [(200, True), (302, True), (399, True), (400, False), (199, False)])
def test_redirects_success_counts_3xx_as_delivered(status: int, delivered: bool) -> None:
    assert succeeded(Outcome(status, None, 1.0), application(redirects="success")) is delivered


@pytest.mark.parametrize("error", ["timeout", "connection refused"])
def test_no_answer_is_never_delivered(error: str) -> None:
    assert succeeded(Outcome(None, error, 10_000.0), application(redirects="success")) is False


def test_the_first_attempt_is_at_the_planned_time() -> None:
    assert next_attempt_time(callback(), application(), now=T0 + 500) == T0


def test_retries_follow_the_default_schedule_from_the_first_attempt() -> None:
    app = application()
    # The first attempt happened 2 s late (a busy receiver): offsets count from it, not from planned_at.
    first = T0 + 2
    for tries in range(1, len(DEFAULT_RETRY_SCHEDULE)):
        attempts = [(first + DEFAULT_RETRY_SCHEDULE[i], i + 1) for i in range(tries)]
        now = attempts[-1][0]
        assert next_attempt_time(callback(*attempts), app, now) == first + DEFAULT_RETRY_SCHEDULE[tries]


def test_the_schedule_spent_means_no_more_attempts() -> None:
    app = application(retrySchedule=[0, 60])
    assert next_attempt_time(callback((T0, 1)), app, T0) == T0 + 60
    assert next_attempt_time(callback((T0, 1), (T0 + 60, 2)), app, T0 + 60) is None


def test_an_offset_beyond_the_retry_window_is_not_attempted() -> None:
    app = application(retrySchedule=[0, 60, 3600, 7200], retryWindow=3600)
    assert next_attempt_time(callback((T0, 1), (T0 + 60, 2)), app, T0 + 60) == T0 + 3600  # at the edge: still in
    assert next_attempt_time(callback((T0, 1), (T0 + 60, 2), (T0 + 3600, 3)), app, T0 + 3600) is None


def test_a_retry_already_overdue_is_due_now() -> None:
    # A late attempt (slow webhook, stopped emulator) never schedules the next one in the past.
    app = application(retrySchedule=[0, 60, 300])
    assert next_attempt_time(callback((T0, 1)), app, now=T0 + 1000) == T0 + 1000


def test_the_attempt_number_counts_not_the_journal_length() -> None:
    # Duplicate deliveries and the unauthenticated 401 of the challenge flow are journaled too,
    # with the number of the scheduled attempt they belong to.
    app = application(retrySchedule=[0, 60, 300])
    assert next_attempt_time(callback((T0, 1), (T0, 1)), app, T0) == T0 + 60
    assert next_attempt_time(callback((T0, 1), (T0 + 60, 2), (T0 + 60, 2)), app, T0 + 60) == T0 + 300
