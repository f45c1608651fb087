"""Callback delivery policy: attempts, retries over 24 virtual hours, and the journal.

Each planned event for one recipient is a :class:`~emulator.models.Callback`. Its first
attempt happens at the planned time; a timeout, a connection error or an answer outside
2xx (3xx: per the application's ``redirects`` setting) is a failed attempt, retried at the
offsets of the application's retry schedule until the retry window (24 h, as Bandwidth:
bandwidth-facts §8.1) has passed, after which the callback is ``exhausted``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .clock import Clock
from .dispatcher import Dispatcher
from .models import Attempt, Callback
from .scenario import Application
from .scheduler import Scheduler
from .store import Store

log = logging.getLogger("emulator.callbacks")


class CallbackJob:
    __slots__ = ("engine", "callback_id", "cancelled")

    def __init__(self, engine: CallbackEngine, callback_id: str) -> None:
        self.engine = engine
        self.callback_id = callback_id
        self.cancelled = False

    async def run(self, due: float) -> None:
        try:
            await self.engine.fire(self.callback_id, due)
        finally:
            # An attempt changes the callback and may change its message's status.
            store = self.engine.store
            callback = store.get_callback(self.callback_id)
            if callback is not None:
                store.callback_changed(callback)
                message = store.get_message(callback.message_id)
                if message is not None:
                    store.message_changed(message)
            self.engine.on_change()


def attempt_succeeded(attempt: Attempt, app: Application) -> bool:
    if attempt.status is None:
        return False
    if 200 <= attempt.status < 300:
        return True
    return 300 <= attempt.status < 400 and app.redirects == "success"


def next_attempt_time(callback: Callback, app: Application) -> float | None:
    """When the next attempt is due, or None when the schedule or the window is spent."""
    if not callback.attempts:
        return callback.planned_at
    first = callback.attempts[0].time
    n = len(callback.attempts)
    if n >= len(app.retry_schedule):
        return None
    offset = app.retry_schedule[n]
    if offset > app.retry_window:
        return None
    return max(first + offset, callback.attempts[-1].time)


class CallbackEngine:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        dispatcher: Dispatcher,
        clock: Clock,
        application: Callable[[str], Application],
        on_event: Callable[[Callback], None],
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.dispatcher = dispatcher
        self.clock = clock
        self.application = application
        self.on_event = on_event
        self._jobs: dict[str, CallbackJob] = {}
        self.on_change: Callable[[], None] = lambda: None  # wakes long-polls (emulator.changes)

    def enqueue(self, callback: Callback, due: float) -> None:
        callback.next_attempt_at = due
        job = CallbackJob(self, callback.id)
        self._jobs[callback.id] = job
        self.scheduler.schedule(due, job)

    def cancel(self, callbacks: list[Callback]) -> None:
        for callback in callbacks:
            job = self._jobs.pop(callback.id, None)
            if job is not None:
                job.cancelled = True
        self.scheduler.purge_cancelled()

    def pending(self) -> int:
        return len(self._jobs)

    async def fire(self, callback_id: str, due: float) -> None:
        self._jobs.pop(callback_id, None)
        callback = self.store.get_callback(callback_id)
        if callback is None or callback.state != "pending":
            return
        app = self.application(callback.application_id)
        if not callback.attempts:
            # The event itself happens now, whether or not its callback gets through.
            self.on_event(callback)
        if not callback.url:
            callback.state = "skipped"
            callback.next_attempt_at = None
            return
        attempt = await self._attempt(callback, app, due)
        callback.attempts.append(attempt)
        if attempt_succeeded(attempt, app):
            callback.state = "delivered"
            callback.next_attempt_at = None
            return
        following = next_attempt_time(callback, app)
        if following is None:
            callback.state = "exhausted"
            callback.next_attempt_at = None
            log.info("callback %s (%s to %s) exhausted after %d attempts", callback.id, callback.type, callback.url, len(callback.attempts))
            return
        self.enqueue(callback, following)

    async def _attempt(self, callback: Callback, app: Application, due: float) -> Attempt:
        creds = app.callback_credentials
        auth = (creds.username, creds.password) if creds else None
        events: list[dict[str, Any]] = [callback.event]
        if auth and app.callback_auth == "challenge":
            # Bandwidth's documented challenge flow (bandwidth-facts §8.2): send without
            # credentials first, resend with them on 401 + WWW-Authenticate.
            attempt, headers = await self.dispatcher.post(callback.url, events, at=due, timeout=app.callback_timeout)
            if attempt.status != 401 or not any(k.lower() == "www-authenticate" for k in headers):
                return attempt
        attempt, _ = await self.dispatcher.post(
            callback.url, events, at=due, timeout=app.callback_timeout, auth=auth
        )
        return attempt
