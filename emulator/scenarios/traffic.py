"""Scheduled inbound traffic and auto-replies, on the scheduler's virtual clock.

A scenario's ``inbound`` entries become jobs on the one scheduler heap (an ``every``
entry reschedules itself after each message), and its ``autoReplies`` turn an outbound
message into a delayed inbound one, so a developer offline can hold a conversation.
Generated numbers and texts come from Faker driven by the service's seeded random source.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from emulator.delivery.clock import Clock
from emulator.delivery.scheduler import Entry, Scheduler
from emulator.messaging.wire import MAX_INBOUND_TEXT
from emulator.scenarios.format import AutoReply, InboundTraffic, Scenario
from emulator.scenarios.rules import Subject, matching_recipients
from emulator.state.models import InboundRequest, Message

log = logging.getLogger("emulator.traffic")

if TYPE_CHECKING:
    from faker import Faker



def reply_text(template: str, answered: str) -> str:
    """An auto-reply's text: ``{text}`` replaced by the text answered, cut to the longest text a
    handset sends (docs/scenarios.md, 'Auto-replies'), and never built longer than that."""
    parts: list[str] = []
    size = 0
    for n, part in enumerate(template.split("{text}")):
        if n:
            parts.append(answered)
            size += len(answered)
        parts.append(part)
        size += len(part)
        if size >= MAX_INBOUND_TEXT:
            break
    return "".join(parts)[:MAX_INBOUND_TEXT]

def _ran(due: float) -> None:
    raise RuntimeError("a traffic job runs once")


class _Job:
    __slots__ = ("_run", "cancelled", "entry", "message")

    def __init__(self, run: Callable[[float], None], message: Message | None = None) -> None:
        self.cancelled = False
        self.entry: Entry | None = None  # the scheduler's
        self._run = run
        # A reply: the message it answers, which retention keeps until then.
        self.message = message

    async def run(self, due: float) -> None:
        run, self._run = self._run, _ran
        # The closure refers to this job: dropping it here frees both without waiting for the
        # garbage collector.
        run(due)


class Traffic:
    """Plans inbound messages on the scheduler and hands them, when due, to ``inbound``
    (the service's), or, for replies to RBM messages, to ``rbm_reply``. ``scenario`` and ``rng`` are asked each time: both change when a
    scenario is replaced."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        clock: Clock,
        scenario: Callable[[], Scenario],
        rng: Callable[[], random.Random],
        inbound: Callable[[InboundRequest], list[Message]],
        rbm_reply: Callable[..., object],
        replied: Callable[[Message], None] = lambda message: None,
    ) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self._scenario = scenario
        self._rng = rng
        self._inbound = inbound
        # The handset's answer to an RBM message (emulator.multichannel.service.reply).
        self._rbm_reply = rbm_reply
        self._faker: Faker | None = None
        # Pending jobs as insertion-ordered sets, so that a job that runs leaves in O(1).
        self._schedule_jobs: dict[_Job, None] = {}
        self._reply_jobs: dict[str, dict[_Job, None]] = {}  # account -> pending replies
        # Messages with a reply still to come, and how many: retention keeps them
        # (emulator.state.retention); ``replied`` is told when the last one came.
        self._replying: dict[str, int] = {}
        self._replied = replied

    @property
    def rng(self) -> random.Random:
        return self._rng()

    # -- generated content ----------------------------------------------------------------

    def _fake(self) -> Faker:
        if self._faker is None:
            # Imported on first use: Faker takes a quarter of a second to import, which
            # every start-up would pay whether or not the scenario generates traffic.
            from faker import Faker

            self._faker = Faker("en_US")
        # One random source for everything, so a seed repeats the whole run.
        self._faker.random = self.rng  # type: ignore[attr-defined]  # Faker's proxy sets it on every locale
        return self._faker

    def phone_number(self) -> str:
        # A NANP number: area code and exchange never start with 0 or 1.
        fake = self._fake()
        return f"+1{fake.random_int(2, 9)}{fake.numerify('##')}{fake.random_int(2, 9)}{fake.numerify('######')}"

    def sentence(self) -> str:
        return self._fake().sentence()

    # -- scheduled inbound ----------------------------------------------------------------

    def start(self, scenario: Scenario) -> None:
        """Plan the scenario's inbound traffic from now on, replacing any earlier plan."""
        self.stop()
        now = self.clock.now()
        for entry in scenario.inbound:
            if entry.at is not None:
                for offset in entry.at:
                    self._plan(entry, now + offset, remaining=None)
            else:
                assert entry.every is not None
                first = entry.start if entry.start is not None else entry.every
                self._plan(entry, now + first, remaining=entry.count)

    def stop(self) -> None:
        for job in self._schedule_jobs:
            job.cancelled = True
        self._schedule_jobs.clear()
        self.cancel_replies()
        self.scheduler.purge_cancelled()

    def _plan(self, entry: InboundTraffic, due: float, remaining: int | None) -> None:
        def run(at: float) -> None:
            del self._schedule_jobs[job]
            self._arrive(entry)
            if entry.every is not None and (remaining is None or remaining > 1):
                self._plan(entry, at + entry.every, None if remaining is None else remaining - 1)

        job = _Job(run)
        self._schedule_jobs[job] = None
        self.scheduler.schedule(due, job)

    def _arrive(self, entry: InboundTraffic) -> list[Message]:
        request = InboundRequest(
            from_=entry.from_ or self.phone_number(),
            to=list(entry.to),
            text=entry.text if entry.text is not None else self.sentence(),
            media=list(entry.media),
            application_id=entry.application_id,
            account_id=entry.account_id,
        )
        return self._inbound(request)

    # -- auto-replies ---------------------------------------------------------------------

    def after_send(self, message: Message) -> None:
        """Plan the replies of the handsets an outbound message reaches, if any entry matches."""
        auto_replies = self._scenario().auto_replies
        if not auto_replies:
            return
        replied: set[str] = set()
        subject = Subject.of(message)
        for auto in auto_replies:
            for handset in matching_recipients(auto.match, subject):
                if handset in replied:
                    continue  # the first matching entry answers
                replied.add(handset)
                self._plan_reply(auto, message, handset)

    def _plan_reply(self, auto: AutoReply, message: Message, handset: str) -> None:
        if message.channel == "RBM":
            self._plan_rbm_reply(auto, message)
            return
        if auto.reply is None:
            text = self.sentence()
        else:
            text = reply_text(auto.reply, message.text)
        request = InboundRequest(
            from_=handset,
            to=[message.from_],
            text=text,
            media=list(auto.media),
            application_id=message.application_id,
            account_id=message.account_id,
        )
        pending = self._reply_jobs.setdefault(message.account_id, {})

        def run(at: float) -> None:
            del pending[job]
            try:
                self._inbound(request)
            finally:
                self._unpin(message)

        job = _Job(run, message)
        pending[job] = None
        self._pin(message.id)
        self.scheduler.schedule(message.time + auto.after, job)

    def _plan_rbm_reply(self, auto: AutoReply, message: Message) -> None:
        """The handset answers over RBM: taps a suggestion, shares its location or types
        (docs/multichannel.md, 'Handset replies')."""
        from emulator.multichannel import service as multichannel

        location = (str(auto.location.latitude), str(auto.location.longitude)) if auto.location else None
        text = None
        if auto.tap is None and location is None:
            text = self.sentence() if auto.reply is None else reply_text(auto.reply, message.text)
        pending = self._reply_jobs.setdefault(message.account_id, {})

        def run(at: float) -> None:
            del pending[job]
            try:
                self._rbm_reply(message.id, suggestion=auto.tap, location=location, text=text)
            except multichannel.HandsetError as exc:
                # The scenario names a suggestion this message does not offer: nothing to tap.
                log.warning("auto-reply to %s not sent: %s", message.id, exc.message)
            finally:
                self._unpin(message)

        job = _Job(run, message)
        pending[job] = None
        self._pin(message.id)
        self.scheduler.schedule(message.time + auto.after, job)

    def _pin(self, message_id: str) -> None:
        self._replying[message_id] = self._replying.get(message_id, 0) + 1

    def _unpin(self, message: Message) -> None:
        left = self._replying.get(message.id, 0) - 1
        if left > 0:
            self._replying[message.id] = left
            return
        self._replying.pop(message.id, None)
        self._replied(message)

    def replying(self, message_id: str) -> bool:
        """Whether a reply to this message is still to come."""
        return message_id in self._replying

    def cancel_replies(self, account_id: str | None = None) -> None:
        accounts = list(self._reply_jobs) if account_id is None else [account_id]
        for account in accounts:
            for job in self._reply_jobs.pop(account, {}):
                job.cancelled = True
                if job.message is not None:
                    self._unpin(job.message)  # no reply to come any more: retention may take it

    def pending(self) -> int:
        return len(self._schedule_jobs) + sum(len(jobs) for jobs in self._reply_jobs.values())
