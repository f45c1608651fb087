"""Callback delivery policy: attempts, retries over 24 virtual hours, and the journal.

Each planned event for one recipient is a :class:`~emulator.state.models.Callback`. Its first
attempt happens at the planned time; a timeout, a connection error or an answer outside
2xx (3xx: per the application's ``redirects`` setting) is a failed attempt, retried at the
offsets of the application's retry schedule, counted from the first attempt, until the
retry window (24 h, as Bandwidth: docs/bandwidth-behaviour.md, 'Callback delivery and retries') has passed; then the callback is
``exhausted``. Every POST is journaled as an :class:`~emulator.state.models.Attempt`, including
the unauthenticated 401 of the challenge flow and the extra deliveries of ``duplicates``.
The rules, with their defaults and reasons, are in docs/callbacks.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from functools import lru_cache
from typing import Any, ClassVar

from emulator.delivery.clock import Clock, isoformat
from emulator.delivery.dispatcher import Dispatcher, Outcome, basic_authorization, receiver_of
from emulator.delivery.internal_errors import InternalErrors, describe
from emulator.delivery.scheduler import Entry, Scheduler
from emulator.logs import log_attempt, log_skipped
from emulator.scenarios.format import Application
from emulator.state.models import Attempt, Callback
from emulator.state.store import Store

log = logging.getLogger("emulator.delivery.callbacks")

class ReplayRefused(Exception):
    """A callback that cannot be replayed: no URL, not attempted yet, or its message is gone."""


class CallbackJob:
    """The scheduler's handle on one pending callback; reused for every retry.

    Each engine makes its jobs from a subclass of its own that names it (``engine``), so that
    a job, one per pending callback, does not carry it (bench/RESULTS.md, 'Memory per stored message').
    """

    __slots__ = ("body", "callback", "entry", "number")
    engine: ClassVar[CallbackEngine]

    def __init__(self, callback: Callback) -> None:
        self.callback = callback
        # Its heap entry while it is planned (the scheduler's: emulator.delivery.scheduler.Job).
        self.entry: Entry | None = None
        # The event array, encoded once at the first attempt and dropped when the callback ends.
        self.body: bytes | None = None
        # The number of the attempt being made, once it is under way (> 0); otherwise 0 until
        # the planned time is reached, -1 after it (``started``). One slot for both: a job
        # per pending callback, and four slots make it 16 bytes smaller than six.
        self.number = 0

    @property
    def cancelled(self) -> bool:
        """No longer its callback's job: cancelled (a reset) or ended (CallbackEngine._drop_job)."""
        return self.callback.job is not self

    @property
    def started(self) -> bool:
        """The planned time has been reached: the event has happened (and may be held)."""
        return self.number != 0

    @property
    def lane(self) -> str:
        """Who receives this callback, so that the scheduler can take turns between receivers."""
        return receiver_of(self.callback.url or "")

    def run(self, due: float) -> Coroutine[Any, Any, None]:
        return self.engine.fire(self, due)


def succeeded(outcome: Outcome, app: Application) -> bool:
    status = outcome.status
    if status is None:
        return False
    if 200 <= status < 300:
        return True
    # docs/bandwidth-behaviour.md, 'Callback delivery and retries': the webhooks page demands 2xx, about.mdx reads as if 3xx were
    # not retried. Default: a failure (the URL is probably wrong); `redirects: success` flips it.
    return 300 <= status < 400 and app.redirects == "success"


def next_attempt_time(callback: Callback, app: Application, now: float) -> float | None:
    """When the next scheduled attempt is due, or None when the schedule or the window is spent."""
    if not callback.attempts:
        return callback.planned_at
    tries = callback.attempts[-1].number
    schedule = app.retry_schedule
    if tries >= len(schedule):
        return None
    offset = schedule[tries]
    if offset > app.retry_window:
        return None
    return max(callback.attempts[0].time + offset, now)


@lru_cache(maxsize=256)
def _authorization(username: str, password: str) -> str:
    return basic_authorization(username, password)


class CallbackEngine:
    """Delivers the callbacks the service plans.

    ``application`` resolves an application id to its settings; ``on_event`` is told when a
    callback's event happens (at its planned time, whether or not it gets through);
    ``event_of`` builds the event's JSON element, None once its message is gone; ``on_change``
    is told of every callback that changed, after each attempt (it wakes long-polls).
    """

    def __init__(
        self,
        *,
        store: Store,
        scheduler: Scheduler,
        dispatcher: Dispatcher,
        clock: Clock,
        application: Callable[[str], Application],
        on_event: Callable[[Callback], None],
        event_of: Callable[[Callback], dict[str, Any] | None],
        on_change: Callable[[Callback], None] = lambda callback: None,
        internal_errors: InternalErrors | None = None,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.dispatcher = dispatcher
        self.clock = clock
        self.application = application
        self.on_event = on_event
        self.event_of = event_of
        # Every pending callback (scheduled, in flight or held): the record is the key.
        # (Callback.job holds each one's job; counted here, not kept in a dict by callback:
        # that was 50 bytes per pending callback.)
        self._pending = 0
        self._job_type: type[CallbackJob] = type("CallbackJob", (CallbackJob,), {"__slots__": (), "engine": self})
        # ordering=hold: held callbacks by message id.
        self._held: dict[str, list[Callback]] = {}
        self.on_change = on_change
        self.internal_errors = internal_errors or InternalErrors()
        # Applications already told about in the log for having no callback URL (a one-time hint).
        self._hinted: set[str] = set()

    # -- observers ------------------------------------------------------------------------

    def changed(self, callback: Callback) -> None:
        """Tell the store (and so --db) and long-polls that a callback, and maybe its
        message's status, changed. Records are mutated in place; this is the one place
        the engine says so."""
        store = self.store
        # Only an observer (--db) hears of changed records: without one the two lookups would
        # be for nothing, once per attempt (bench/RESULTS.md, 'Retry storm').
        if store.observer is not None and store.get_callback(callback.id) is callback:
            store.callback_changed(callback)
            message = store.get_message(callback.message_id)
            if message is not None:
                store.message_changed(message)
        self.on_change(callback)

    # -- planning -------------------------------------------------------------------------

    def enqueue(self, callback: Callback, due: float) -> None:
        job = callback.job
        if job is None:
            job = callback.job = self._job_type(callback)
            self._pending += 1
        callback.next_attempt_at = due
        self.scheduler.schedule(due, job)

    def cancel(self, callbacks: list[Callback]) -> None:
        """Stop delivering these (dropped by a reset); their records are left as they were."""
        for callback in callbacks:
            job = self._drop_job(callback)  # which makes it cancelled
            if job is not None:
                job.body = None
                if job.entry is not None:
                    self.scheduler.cancel(job.entry)
            held = self._held.get(callback.message_id)
            if held is not None and callback in held:
                held.remove(callback)
                if not held:
                    del self._held[callback.message_id]

    def _drop_job(self, callback: Callback) -> CallbackJob | None:
        """The callback is no longer pending here (delivered, ended, cancelled): its job goes."""
        job: CallbackJob | None = callback.job
        if job is not None:
            callback.job = None
            self._pending -= 1
        return job

    def pending(self) -> int:
        return self._pending

    def pending_callbacks(self) -> list[Callback]:
        return [callback for callback in self.store.callbacks() if callback.job is not None]

    def report_pending(self, logger: logging.Logger = log, limit: int = 20, kept_in: object = None) -> int:
        """Log what has not been delivered yet (at shutdown); returns how many."""
        pending = sorted(self.pending_callbacks(), key=lambda c: (c.next_attempt_at or c.planned_at, c.order))
        if not pending:
            return 0
        fate = f"kept in {kept_in}, resumed at the next start" if kept_in else "lost: state is kept in memory only"
        logger.warning("stopping with %d callbacks pending (%s)", len(pending), fate)
        for callback in pending[:limit]:
            next_at = "held by " + callback.held_by if callback.held_by else isoformat(callback.next_attempt_at or callback.planned_at)
            logger.warning(
                "pending callback %s: %s for message %s to %s via %s, %d attempts so far, next: %s",
                callback.id, callback.type, callback.message_id, callback.recipient, callback.url,
                len(callback.attempts), next_at,
            )
        if len(pending) > limit:
            logger.warning("... and %d more pending callbacks", len(pending) - limit)
        return len(pending)

    # -- replay ---------------------------------------------------------------------------

    async def replay(self, callback: Callback) -> Attempt:
        """Deliver the callback's event once more, now (docs/callbacks.md, 'Replay').

        One POST (two in challenge mode), journaled with ``replay=True`` and the number of the
        last scheduled attempt: the retry schedule, the next attempt and the state are left
        as they were. Raises ReplayRefused when there is nothing to deliver."""
        if not callback.url:
            raise ReplayRefused("the callback has no URL (state skipped): there is nowhere to deliver it")
        if not callback.attempts:
            raise ReplayRefused(
                "the callback has not been attempted yet"
                + (" (held until an earlier callback is done)" if callback.held_by else "; advance the clock first")
            )
        event = self.event_of(callback)
        if event is None:
            raise ReplayRefused("its message is gone (reset)")
        app = self.application(callback.application_id)
        body = json.dumps([event], separators=(",", ":")).encode()
        credentials = app.credentials_for(callback.type)
        authorization = _authorization(credentials.username, credentials.password) if credentials else None
        number = callback.attempts[-1].number
        sends = [None, authorization] if authorization and app.callback_auth == "challenge" else [authorization]
        attempt: Attempt | None = None
        for i, sent_authorization in enumerate(sends):
            at = self.clock.now()
            outcome = await self.dispatcher.post(
                callback.url, body, timeout=app.callback_timeout, authorization=sent_authorization
            )
            attempt = Attempt(
                at, outcome.status, outcome.error, outcome.duration_ms,
                authorization=sent_authorization is not None, number=number, replay=True,
            )
            callback.add_attempt(attempt)
            last = i == len(sends) - 1 or not outcome.challenged
            log_attempt(callback, attempt, "replay" if last else "challenged", None)
            if last:
                break
        self.changed(callback)
        assert attempt is not None
        return attempt

    # -- delivery -------------------------------------------------------------------------

    async def fire(self, job: CallbackJob, due: float) -> None:
        if job.number > 0:
            job.number = -1  # started, and no attempt under way yet
        try:
            await self._fire(job, due)
        except Exception as exc:  # a bug of ours: the callback must not stay pending with nothing planned
            self._failed_to_attempt(job, exc)
        finally:
            # An attempt changes the callback and may change its message's status.
            self.changed(job.callback)

    def _failed_to_attempt(self, job: CallbackJob, exc: Exception) -> None:
        """Journal an attempt that could not be made as a failed one, and go on with the retry
        schedule (docs/callbacks.md, 'Delivery rules'); the error shows in /_emulator/health."""
        callback = job.callback
        log.error("callback %s (%s to %s): internal error", callback.id, callback.type, callback.url, exc_info=exc)
        self.internal_errors.record(f"callback {callback.id}", exc)
        if job.cancelled or callback.state != "pending" or job.entry is not None or callback.held_by:
            return  # cancelled, ended or planned again before the error: nothing more to do
        if callback.job is not job:
            return
        number = job.number if job.number > 0 else (callback.attempts[-1].number + 1 if callback.attempts else 1)
        callback.add_attempt(Attempt(self.clock.now(), None, f"internal error: {describe(exc)}", 0.0, number=number))
        try:
            app = self.application(callback.application_id)
        except Exception:
            app = Application(id=callback.application_id)
        following = next_attempt_time(callback, app, self.clock.now())
        if following is None:
            self._finish(job, "exhausted")
        else:
            self.enqueue(callback, following)

    async def _fire(self, job: CallbackJob, due: float) -> None:
        callback = job.callback
        if callback.state != "pending":
            self._drop_job(callback)
            return
        app = self.application(callback.application_id)
        if not job.started and not callback.attempts:
            job.number = -1  # started
            # The event itself happens at its planned time, whether or not its callback gets through.
            self.on_event(callback)
            if app.ordering == "hold" and self._hold(callback):
                return
            callback.held_by = None  # a hold recorded before a restart may have ended meanwhile
        if not callback.url:
            first = callback.application_id not in self._hinted
            self._hinted.add(callback.application_id)
            log_skipped(callback, self.clock.now(), first)
            self._finish(job, "skipped")
            return
        if job.body is None:
            event = self.event_of(callback)
            if event is None:  # its message is gone: a reset came first
                self._finish(job, "cancelled")
                return
            job.body = json.dumps([event], separators=(",", ":")).encode()
        number = job.number = callback.attempts[-1].number + 1 if callback.attempts else 1
        journaled = len(callback.attempts)
        outcome = await self._deliver(job, app, number, duplicate=False)
        if job.cancelled:
            return
        if succeeded(outcome, app):
            self._log_attempts(callback, journaled, "delivered", None)
            for _ in range(app.duplicates):
                # At-least-once (docs/bandwidth-behaviour.md, 'Callback delivery and retries'): the same event again, right away.
                journaled = len(callback.attempts)
                await self._deliver(job, app, number, duplicate=True)
                if job.cancelled:
                    return
                self._log_attempts(callback, journaled, "duplicate", None)
            self._finish(job, "delivered")
            return
        following = next_attempt_time(callback, app, self.clock.now())
        if following is None:
            self._finish(job, "exhausted")
            self._log_attempts(callback, journaled, "exhausted", None)
            return
        self.enqueue(callback, following)
        self._log_attempts(callback, journaled, "retry", following)

    @staticmethod
    def _log_attempts(callback: Callback, journaled: int, outcome: str, next_at: float | None) -> None:
        """The terminal log's lines for the attempts journaled since ``journaled``: the last
        one decides ``outcome``; one before it is the challenge flow's 401 (docs/callbacks.md)."""
        new = [a for a in callback.attempts[journaled:] if not a.replay]  # a replay logs itself
        for attempt in new[:-1]:
            log_attempt(callback, attempt, "challenged", None)
        if new:
            log_attempt(callback, new[-1], outcome, next_at)

    def _deliver(self, job: CallbackJob, app: Application, number: int, *, duplicate: bool) -> Awaitable[Outcome]:
        """One scheduled attempt: one POST, or two in challenge mode. Journals each POST."""
        callback = job.callback
        credentials = app.credentials_for(callback.type)
        authorization = _authorization(credentials.username, credentials.password) if credentials else None
        if authorization and app.callback_auth == "challenge":
            return self._challenge(job, app, authorization, number, duplicate)
        return self._post(job, app, authorization, number, duplicate)

    async def _challenge(
        self, job: CallbackJob, app: Application, authorization: str, number: int, duplicate: bool
    ) -> Outcome:
        # Bandwidth's documented challenge flow (docs/bandwidth-behaviour.md, 'Callback delivery and retries'): send without
        # credentials; only a 401 carrying WWW-Authenticate earns the resend with them.
        outcome = await self._post(job, app, None, number, duplicate)
        if not outcome.challenged or job.cancelled:
            return outcome
        return await self._post(job, app, authorization, number, duplicate)

    async def _post(
        self, job: CallbackJob, app: Application, authorization: str | None, number: int, duplicate: bool
    ) -> Outcome:
        callback = job.callback
        at = self.clock.now()
        assert callback.url is not None and job.body is not None
        outcome = await self.dispatcher.post(
            callback.url, job.body, timeout=app.callback_timeout, authorization=authorization
        )
        if job.cancelled:
            return outcome
        callback.add_attempt(
            Attempt(
                at, outcome.status, outcome.error, outcome.duration_ms,
                authorization=authorization is not None, number=number, duplicate=duplicate,
            )
        )
        return outcome

    def _finish(self, job: CallbackJob, state: str) -> None:
        callback = job.callback
        callback.state = state  # type: ignore[assignment]
        callback.next_attempt_at = None
        job.body = None
        self._drop_job(callback)
        if self._held:
            self._release_after(callback)

    # -- ordering=hold --------------------------------------------------------------------

    def _blocker(self, callback: Callback) -> Callback | None:
        """The nearest earlier callback of the same message and recipient still pending."""
        blocker = None
        for other in self.store.callbacks_for_message(callback.message_id):
            if (
                other.recipient == callback.recipient
                and other.order < callback.order
                and other.state == "pending"
                and (blocker is None or other.order > blocker.order)
            ):
                blocker = other
        return blocker

    def _hold(self, callback: Callback) -> bool:
        blocker = self._blocker(callback)
        if blocker is None:
            return False
        callback.held_by = blocker.id
        callback.next_attempt_at = None
        self._held.setdefault(callback.message_id, []).append(callback)
        return True

    def _release_after(self, finished: Callback) -> None:
        held = self._held.get(finished.message_id)
        if not held:
            return
        for callback in sorted(held, key=lambda c: c.order):
            if callback.recipient != finished.recipient:
                continue
            blocker = self._blocker(callback)
            if blocker is not None:
                callback.held_by = blocker.id
                continue
            held.remove(callback)
            callback.held_by = None
            # Released now: its first attempt is due at once, and the retry schedule and
            # window count from that attempt. The event's own time stays the planned one.
            self.enqueue(callback, self.clock.now())
            self.changed(callback)
        if not held:
            del self._held[finished.message_id]
