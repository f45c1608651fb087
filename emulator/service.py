"""The messaging domain: accept sends and inbound messages, plan their callbacks.

HTTP handlers call this; it owns the rules and talks to the store, the planner and the
callback engine. Nothing here touches the network or the wall clock.
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.delivery.callbacks import CallbackEngine
from emulator.delivery.callbacks import ReplayRefused as ReplayRefused  # for the control API
from emulator.delivery.clock import Clock, isoformat
from emulator.delivery.dispatcher import Dispatcher
from emulator.delivery.internal_errors import InternalErrors
from emulator.delivery.scheduler import Scheduler
from emulator.delivery.urls import callback_url_problem
from emulator.logs import log_inbound, log_send
from emulator.messaging.listing import ListPage, ListQuery, list_messages
from emulator.messaging.preflight import failed_plan, send_failure
from emulator.messaging.segments import count_segments
from emulator.messaging.wire import FieldError, callback_event, parse_send_request
from emulator.multichannel.wire import callback_event as multichannel_event
from emulator.scenarios.faults import FaultInjector
from emulator.scenarios.format import Application, Scenario
from emulator.scenarios.format import Retention as RetentionSettings
from emulator.scenarios.planner import PlannedEvent, SequenceMemo, default_description, plan
from emulator.scenarios.rules import Subject, kind_of
from emulator.scenarios.traffic import Traffic
from emulator.state.changes import Change, Changes
from emulator.state.ids import IdFactory
from emulator.state.media import MediaLibrary
from emulator.state.models import Callback, InboundRequest, Message, Recipients, RecipientStatus, shared
from emulator.state.retention import Policy, Retention
from emulator.state.store import Store

# The message status a callback event moves its recipient to (list-messages enums).
EVENT_STATUS = {
    "message-sending": "SENDING",
    "message-sent": "SENT",
    "message-delivered": "DELIVERED",
    "message-failed": "FAILED",
    "message-received": "RECEIVED",
}
FINAL = ("DELIVERED", "FAILED", "RECEIVED")


def _overlay(policy: Policy, chosen: RetentionSettings | None) -> Policy:
    """``policy`` with what a scenario's ``retention`` sets instead."""
    if chosen is None:
        return policy
    return Policy(
        messages=policy.messages if chosen.messages is None else chosen.messages,
        age=policy.age if chosen.for_ is None else chosen.for_,
    )


class MessagingService:
    def __init__(
        self,
        *,
        clock: Clock,
        scenario: Scenario,
        callback_url: str | None = None,
        default_account: str = "9900000",
        store: Store | None = None,
        scheduler: Scheduler | None = None,
        dispatcher: Dispatcher | None = None,
        retention: Policy | None = None,
    ) -> None:
        self.clock = clock
        self.callback_url = callback_url
        self.default_account = default_account
        self.store = store or Store()
        self.scheduler = scheduler or Scheduler(clock)
        self.dispatcher = dispatcher or Dispatcher()
        self.scheduler.lane_limit = self.dispatcher.per_receiver
        self.changes = Changes()
        # Bugs survived, for /_emulator/health (docs/testing.md, 'Internal errors').
        self.internal_errors = InternalErrors(lambda: isoformat(self.clock.now()))
        self.scheduler.internal_errors = self.internal_errors
        self.callbacks = CallbackEngine(
            store=self.store,
            scheduler=self.scheduler,
            dispatcher=self.dispatcher,
            clock=clock,
            application=self.application,
            on_event=self._apply_event,
            event_of=self.event,
            on_change=self._callback_changed,
            internal_errors=self.internal_errors,
        )
        self.scenario = scenario
        self.ids = IdFactory(scenario.seed)
        self._applications_of: Scenario | None = None
        self._applications_url: str | None = None
        self._applications: dict[str, Application] = {}
        self._sequences = SequenceMemo()
        self.media = MediaLibrary(self.store, clock, lambda: self.scenario.media_size_limit)
        # Where the emulator is served, once known: the URLs of inbound media it stores use
        # it when the inbound message did not come through an HTTP request.
        self.base_url: str | None = None
        self.faults = FaultInjector(lambda: self.scenario, lambda: self.ids.rng)
        self.traffic = Traffic(
            scheduler=self.scheduler,
            clock=clock,
            scenario=lambda: self.scenario,
            rng=lambda: self.ids.rng,
            inbound=self.inbound,
            rbm_reply=self._rbm_reply,
            replied=lambda message: self.retention.consider(message.account_id, message.id),
        )
        # Forgets finished messages (README.md, "Retention"): the policy of the command line
        # (--retain-messages, --retain-for), unless the scenario sets its own.
        self.retention_default = retention or Policy()
        self.retention = Retention(self.store, clock, lambda message_id: self.traffic.replying(message_id))
        self._configure_retention()
        self.changes.listen(self.retention.on_change)
        self.traffic.start(scenario)

    # -- scenario -------------------------------------------------------------------------

    def application(self, application_id: str) -> Application:
        # Resolved applications are kept per scenario: building one is a pydantic
        # validation, and every send and every callback attempt asks for one.
        # The fallback URL can change at runtime (the in-process runner's set_callback_url).
        if self._applications_of is not self.scenario or self._applications_url != self.callback_url:
            self._applications_of = self.scenario
            self._applications_url = self.callback_url
            self._applications = {}
        app = self._applications.get(application_id)
        if app is None:
            app = self._applications[application_id] = self.scenario.application(application_id, self.callback_url)
        return app

    def set_callback_url(self, url: str | None) -> None:
        """Where callbacks go for applications without URLs of their own (--callback-url);
        ValueError saying what is wrong with one that cannot be a callback URL (checked as
        --callback-url is: docs/compatibility.md, 'What the emulator refuses')."""
        if url is not None:
            problem = callback_url_problem(url)
            if problem is not None:
                raise ValueError(problem)
        self.callback_url = url

    def now(self) -> float:
        """The current virtual time (for handlers, which never hold the clock)."""
        return self.clock.now()

    def replace_scenario(self, scenario: Scenario) -> None:
        self.scenario = scenario
        if scenario.seed is not None:
            self.ids = IdFactory(scenario.seed)
        self.faults.reset()
        self.traffic.start(scenario)
        self._configure_retention()

    def _configure_retention(self) -> None:
        """What an account's ``retention`` sets, else the scenario's, else the command line's
        (docs/scenarios.md, 'Retention')."""
        scenario = self.scenario
        policy = _overlay(self.retention_default, scenario.retention)
        if not any(account.retention is not None for account in scenario.accounts):
            self.retention.configure(policy)
            return

        def policy_of(account_id: str) -> Policy:
            account = scenario.account(account_id)
            return _overlay(policy, account.retention if account is not None else None)

        self.retention.configure(policy, policy_of)

    def _new_message_id(self, now: float) -> str:
        # A reloaded seed replays the same random draws: skip ids already taken, so nothing
        # accepted is overwritten, and the run stays repeatable.
        while True:
            message_id = self.ids.message_id(now)
            if self.store.get_message(message_id) is None:
                return message_id


    # -- outbound -------------------------------------------------------------------------

    def send(self, account_id: str, body: object) -> Message | list[FieldError]:
        now = self.clock.now()
        request = parse_send_request(body, now)
        if isinstance(request, list):
            return request
        mms = bool(request.media) or len(request.to) > 1
        segments = count_segments(request.text, mms=mms)
        # Raises SendRejected for a scripted fault or a full queue; else the queue wait. Without
        # faults there is nothing to match, and the subject is not worth building on every send.
        if not self.scenario.faults:
            queued = self.faults.queue_wait(account_id, segments.segments, now)
        else:
            queued = self.faults.admit(
                Subject(
                    account_id=account_id,
                    application_id=request.application_id,
                    from_=request.from_,
                    to=request.to,
                    text=request.text,
                    tag=request.tag,
                    kind=kind_of(request.to, request.media),
                ),
                segments.segments,
                now,
            )
        sender = shared(request.from_)
        message = Message(
            id=self._new_message_id(now),
            account_id=shared(account_id),
            application_id=shared(request.application_id),
            direction="out",
            from_=sender,
            to=request.to,
            owner=sender,
            time=now,
            segment_count=segments.segments,
            text=request.text,
            media=request.media,
            tag=request.tag,
            priority=request.priority,
            expiration=request.expiration,
            encoding=segments.encoding,
            recipients=Recipients([RecipientStatus(to=to, updated_at=now) for to in request.to]),
        )
        self.store.add_message(message)
        app = self.application(request.application_id)
        planned_events = plan(message, app, self.scenario, self._sequences)
        _, went_out = self.plan_status_callbacks(
            message, app, planned_events, expiration_at=request.expiration_at, now=now, queued=queued
        )
        log_send(message, app.status_callback_url)
        if went_out:  # a message that never left gets no reply
            self.traffic.after_send(message)
        self.changes.bump(Change("message", message.account_id, message.id))
        return message

    # -- inbound --------------------------------------------------------------------------

    def inbound(self, request: InboundRequest) -> list[Message]:
        """A handset texts one or more of our numbers: one message per owned number (docs/bandwidth-behaviour.md, 'Callbacks')."""
        now = self.clock.now()
        owned = [n for n in request.to if self.scenario.application_for_number(n) is not None]
        # With no application claiming any of the numbers, every recipient is ours.
        recipients = owned or list(request.to)
        media = tuple(request.media or ())
        segments = count_segments(request.text, mms=bool(media) or len(request.to) > 1)
        messages = []
        for number in recipients:
            app_for_number = self.scenario.application_for_number(number)
            application_id = request.application_id or (app_for_number.id if app_for_number else None)
            account_id = request.account_id
            if application_id is None or account_id is None:
                # The conversation: the latest message sent from this number (docs/control-api.md,
                # 'Inbound messages'), kept by the store as messages come and go.
                conversation = self.store.last_outbound_from(number)
                if conversation is not None:
                    application_id = application_id or conversation.application_id
                    account_id = account_id or conversation.account_id
            application_id = application_id or "emulator-application"
            account_id = account_id or self.default_account
            message = Message(
                id=self._new_message_id(now),
                account_id=shared(account_id),
                application_id=shared(application_id),
                direction="in",
                from_=request.from_,  # a handset's: generated traffic makes ever new ones
                to=tuple(request.to),
                owner=number,
                time=now,
                segment_count=segments.segments,
                text=request.text,
                media=media,
                encoding=segments.encoding,
                recipients=Recipients([RecipientStatus(to=number, status="RECEIVED", updated_at=now)]),
            )
            if media:
                message.media = tuple(
                    self.media.store_inbound(account_id, message.id, list(media), request.base_url or self.base_url)
                )
            self.store.add_message(message)
            app = self.application(application_id)
            self._plan_callback(
                message,
                app.inbound_callback_url,
                "message-received",
                number,
                now + self.scenario.defaults.inbound_delay,
                0,
                description=default_description("message-received", message.kind),
            )
            log_inbound(message, app.inbound_callback_url)
            messages.append(message)
            self.changes.bump(Change("message", message.account_id, message.id))
        return messages

    def _rbm_reply(self, message_id: str, **what: Any) -> Message:
        # Imported here: the multi-channel domain builds on this service.
        from emulator.multichannel import service as multichannel

        return multichannel.reply(self, message_id, **what)

    def admit_list(self, account_id: str) -> None:
        """Raises SendRejected when a scripted fault refuses the account's list request."""
        self.faults.admit_list(account_id)

    def list_messages(self, account_id: str, query: ListQuery) -> ListPage:
        return list_messages(self.store.messages(account_id), query, lambda m: self.media.size_of(account_id, m.media))

    # -- callbacks ------------------------------------------------------------------------

    def plan_status_callbacks(
        self,
        message: Message,
        app: Application,
        events: list[PlannedEvent],
        *,
        expiration_at: float | None,
        now: float,
        queued: float,
        channel: str | None = None,
    ) -> tuple[list[PlannedEvent], bool]:
        """Plan an accepted outbound message's status callbacks, ``queued`` seconds after ``now``.

        What stops the message when it would go out (messaging/preflight.py) replaces the planned
        events by its failure. Returns the events planned and whether the message went out.
        """
        failure = send_failure(message, expiration_at, events, self.media, queued)
        if failure is not None:
            events = failed_plan(message, *failure)
        for order, planned in enumerate(events):
            self._plan_callback(
                message,
                app.status_callback_url,
                planned.type,
                planned.recipient,
                now + queued + planned.after,
                order,
                description=planned.description,
                error_code=planned.error_code,
                carrier_name=planned.carrier_name,
                channel=channel,
            )
        return events, failure is None

    def _plan_callback(
        self,
        message: Message,
        url: str | None,
        type: str,
        recipient: str,
        due: float,
        order: int,
        *,
        description: str,
        error_code: int | None = None,
        carrier_name: str | None = None,
        channel: str | None = None,
    ) -> Callback:
        callback = Callback(
            account_id=message.account_id,
            message_id=message.id,
            application_id=message.application_id,
            type=type,
            recipient=recipient,
            url=url,
            planned_at=due,
            description=description,
            error_code=error_code,
            carrier_name=carrier_name,
            order=order,
            channel=channel,
        )
        self.store.add_callback(callback)
        self.callbacks.enqueue(callback, due)
        return callback

    async def replay_callback(self, callback_id: str) -> Callback:
        """Deliver a callback again now (docs/callbacks.md, 'Replay'); KeyError when there is no
        such callback, ReplayRefused when there is nothing to deliver."""
        callback = self.store.get_callback(callback_id)
        if callback is None:
            raise KeyError(callback_id)
        await self.callbacks.replay(callback)
        return callback

    def event(self, callback: Callback) -> dict[str, Any] | None:
        """The callback's element of the JSON array POSTed to the webhook; None once its
        message is gone (a reset)."""
        message = self.store.get_message(callback.message_id)
        if message is None:
            return None
        if message.multichannel is not None:
            return multichannel_event(message, callback)
        return callback_event(
            message,
            type=callback.type,
            to=callback.recipient,
            time=callback.planned_at,
            description=callback.description,
            error_code=callback.error_code,
            carrier_name=callback.carrier_name,
        )

    def _apply_event(self, callback: Callback) -> None:
        message = self.store.get_message(callback.message_id)
        if message is None:
            return
        if callback.type == "message-read" and message.multichannel is not None:
            # The handset read it (RBM): the list API has no status for that, the control API shows it.
            message.multichannel.setdefault("readAt", isoformat(callback.planned_at))
            return
        status = message.recipients.get(callback.recipient)
        new = EVENT_STATUS.get(callback.type)
        if status is None or new is None or status.status in FINAL:
            # A terminal status stays: in the legacy group quirk a failed recipient also
            # gets message-delivered, but it stays FAILED.
            return
        status.status = new  # type: ignore[assignment]
        status.updated_at = self.clock.now()
        if callback.type == "message-failed":
            status.error_code = callback.error_code
        status.description = callback.description
        status.carrier_name = callback.carrier_name

    # -- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering: the callback client and the scheduler's timer."""
        await self.dispatcher.start()
        self.scheduler.start()

    def close_waits(self) -> None:
        """The server is stopping: open long-polls answer now with what they have."""
        self.changes.close()

    async def stop(self, logger: logging.Logger, kept_in: str | None = None) -> None:
        """Stop delivering; say what will not be delivered (or is kept in ``kept_in``)."""
        self.callbacks.report_pending(logger, kept_in=kept_in)
        await self.scheduler.stop()
        await self.dispatcher.close()

    def _callback_changed(self, callback: Callback) -> None:
        self.changes.bump(Change("callback", callback.account_id, callback.message_id, callback.id))

    def forget_callbacks(self, callbacks: list[Callback]) -> None:
        """Stop delivering these: their creation could not be written (--db, a full disk)."""
        self.callbacks.cancel(callbacks)
        for callback in callbacks:
            self._callback_changed(callback)

    def reset(self, account_id: str | None = None) -> list[Callback]:
        """Forget one account's state (or everyone's); returns the callbacks dropped."""
        dropped = self.store.reset(account_id)
        self.callbacks.cancel(dropped)
        self.faults.reset(account_id)
        self.traffic.cancel_replies(account_id)
        self.changes.bump(Change("reset", account_id))
        return dropped
