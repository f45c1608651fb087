"""What the control API and the web page read and do, on the domain side.

The HTTP handlers in :mod:`emulator.control` parse and validate requests and turn answers
into responses; the filters, the JSON views of records, and everything that needs the
store, the scheduler or the clock live here (tests/test_layers.py keeps it so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass
from typing import Any, get_args

from emulator import __version__
from emulator.delivery.clock import ManualClock, isoformat
from emulator.scenarios.eras import describe as describe_era
from emulator.scenarios.format import Scenario
from emulator.service import MessagingService
from emulator.state.changes import Change
from emulator.state.models import Attempt, Callback, CallbackState, CallbackType, Direction, Message
from emulator.state.waiters import Family, WaitIndex

# The values the control API's filters accept, from the models' own types.
DIRECTIONS: tuple[str, ...] = get_args(Direction)
CALLBACK_STATES: tuple[str, ...] = get_args(CallbackState)
CALLBACK_TYPES: tuple[str, ...] = get_args(CallbackType)


class ClockIsRealtime(Exception):
    """Only a manual clock can be advanced."""


def _t(t: float | None) -> str | None:
    return None if t is None else isoformat(t)


# -- JSON views ---------------------------------------------------------------------------


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "time": _t(a.time),
        "statusCode": a.status,
        "error": a.error,
        "durationMs": a.duration_ms,
        "authorization": a.authorization,
        "number": a.number,
        "duplicate": a.duplicate,
        "replay": a.replay,
    }


def callback_json(c: Callback, event: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": c.id,
        "accountId": c.account_id,
        "messageId": c.message_id,
        "applicationId": c.application_id,
        "type": c.type,
        "recipient": c.recipient,
        "url": c.url,
        "state": c.state,
        "plannedAt": _t(c.planned_at),
        "nextAttemptAt": _t(c.next_attempt_at),
        "heldBy": c.held_by,
        "channel": c.channel,
        "attempts": [attempt_json(a) for a in c.attempts],
        "event": event,
    }


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "accountId": m.account_id,
        "applicationId": m.application_id,
        "direction": m.direction,
        "kind": m.kind,
        "messageType": m.message_type,
        "channel": m.channel,
        "from": m.from_,
        "to": list(m.to),
        "owner": m.owner,
        "time": _t(m.time),
        "text": m.text,
        "media": list(m.media),
        "tag": m.tag,
        "priority": m.priority,
        "expiration": m.expiration,
        "segmentCount": m.segment_count,
        "encoding": m.encoding,
        "recipients": [
            {
                "to": r.to,
                "status": r.status,
                "errorCode": r.error_code,
                "description": r.description,
                "carrierName": r.carrier_name,
                "updatedAt": _t(r.updated_at),
            }
            for r in m.recipients.values()
        ],
        # Multi-channel messages (docs/multichannel.md): channel list, attempts, read time, answers.
        "multichannel": m.multichannel,
    }


def scenario_json(scenario: Scenario) -> dict[str, Any]:
    return scenario.model_dump(mode="json", by_alias=True, exclude_none=True)


# -- filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageFilter:
    """``GET /_emulator/messages``: every given field must match."""

    account_id: str | None = None
    direction: str | None = None
    from_: str | None = None
    to: str | None = None  # one of the message's recipients
    tag: str | None = None

    def matches(self, m: Message) -> bool:
        return (
            (self.direction is None or m.direction == self.direction)
            and (self.from_ is None or m.from_ == self.from_)
            and (self.to is None or self.to in m.to)
            and (self.tag is None or m.tag == self.tag)
        )


@dataclass(frozen=True)
class CallbackFilter:
    """``GET /_emulator/callbacks``: every given field must match."""

    account_id: str | None = None
    message_id: str | None = None
    type: str | None = None
    state: str | None = None
    recipient: str | None = None

    def matches(self, c: Callback) -> bool:
        return (
            (self.account_id is None or c.account_id == self.account_id)
            and (self.type is None or c.type == self.type)
            and (self.state is None or c.state == self.state)
            and (self.recipient is None or c.recipient == self.recipient)
        )


def _callback_order(c: Callback) -> tuple[float, int]:
    return (c.planned_at, c.order)


# -- the queries --------------------------------------------------------------------------


class Queries:
    """Read (and, for the clock and resets, drive) one service, for the control API and page."""

    def __init__(self, service: MessagingService) -> None:
        self._service = service
        # Open long-polls, indexed by what they wait for (docs/control-api.md,
        # 'Long-polling: waiting without sleeping').
        self.waits = WaitIndex(
            service.changes, {"messages": self._message_family(), "callbacks": self._callback_family()}
        )

    def health(self) -> dict[str, Any]:
        service = self._service
        return {
            "status": "ok",
            "version": __version__,
            "clock": "manual" if service.clock.manual else "realtime",
            "now": _t(service.clock.now()),
            "scenario": service.scenario.name,
            "pendingCallbacks": service.callbacks.pending(),
            # Long-polls waiting now (docs/control-api.md, 'Long-polling: waiting without sleeping').
            "openWaits": self.waits.open,
            # Bugs of the emulator's own that it survived (docs/testing.md, 'Internal errors').
            "internalErrors": service.internal_errors.summary(),
            # What a message sent now gets (docs/scenarios.md, "Bandwidth's timeline").
            "era": describe_era(service.scenario, service.clock.now()),
            # What retention keeps and has forgotten so far (README.md, "Retention").
            "retention": service.retention.summary(),
        }

    # -- messages and callbacks ----------------------------------------------------------

    def find_messages(self, where: MessageFilter) -> list[Message]:
        found = [m for m in self._service.store.messages(where.account_id) if where.matches(m)]
        found.sort(key=lambda m: m.time)
        return found

    def message(self, message_id: str, account_id: str | None = None) -> Message | None:
        message = self._service.store.get_message(message_id)
        if message is None or (account_id is not None and message.account_id != account_id):
            return None
        return message

    def message_detail(self, message: Message) -> dict[str, Any]:
        """A message's JSON with its callbacks, in the order they are planned."""
        body = message_json(message)
        callbacks = sorted(self._service.store.callbacks_for_message(message.id), key=_callback_order)
        body["callbacks"] = [self.callback_json(c) for c in callbacks]
        return body

    def find_callbacks(self, where: CallbackFilter) -> list[Callback]:
        store = self._service.store
        if where.message_id is not None:
            candidates: list[Callback] = store.callbacks_for_message(where.message_id)
        else:
            candidates = list(store.callbacks(where.account_id))
        found = [c for c in candidates if where.matches(c)]
        found.sort(key=_callback_order)
        return found

    def callback_json(self, callback: Callback) -> dict[str, Any]:
        return callback_json(callback, self._service.event(callback))

    # -- waiting -------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The change counter: it moves whenever anything a client may watch changed."""
        return self._service.changes.version

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds, at most ``timeout`` real seconds; False on timeout."""
        return await self._service.changes.wait_until(condition, timeout)

    async def wait_for_messages(
        self, where: MessageFilter, count: int, timeout: float, gone: asyncio.Future[None] | None = None
    ) -> tuple[list[Message], bool]:
        """Until at least ``count`` messages match, at most ``timeout`` real seconds or until
        ``gone`` is resolved (the client left); the messages and whether they were enough."""
        return await self.waits.wait("messages", astuple(where), count, timeout, gone)

    async def wait_for_callbacks(
        self, where: CallbackFilter, count: int, timeout: float, gone: asyncio.Future[None] | None = None
    ) -> tuple[list[Callback], bool]:
        """As :meth:`wait_for_messages`, for callbacks."""
        return await self.waits.wait("callbacks", astuple(where), count, timeout, gone)

    def _message_family(self) -> Family:
        store = self._service.store

        def values(m: Message) -> tuple[object, ...]:
            # In MessageFilter's field order; ``to`` matches any one of the recipients.
            return (m.account_id, m.direction, m.from_, m.to, m.tag)

        def records(change: Change) -> Iterable[Message]:
            # A message's filtered fields never change: only its arrival matters.
            if change.kind == "message" and change.message_id is not None:
                message = store.get_message(change.message_id)
                if message is not None:
                    return (message,)
            return ()

        return Family(
            fields=("account_id", "direction", "from_", "to", "tag"),
            values=values,
            several=frozenset({3}),  # to
            mutable=frozenset(),
            ident=lambda m: m.id,
            records=records,
            find=lambda key: self.find_messages(MessageFilter(*key)),
            exists=lambda message_id: store.get_message(message_id) is not None,
        )

    def _callback_family(self) -> Family:
        store = self._service.store

        def values(c: Callback) -> tuple[object, ...]:
            # In CallbackFilter's field order.
            return (c.account_id, c.message_id, c.type, c.state, c.recipient)

        def records(change: Change) -> Iterable[Callback]:
            if change.kind == "callback" and change.callback_id is not None:
                callback = store.get_callback(change.callback_id)
                return () if callback is None else (callback,)
            if change.kind == "message" and change.message_id is not None:
                # A message's callbacks are planned with it and announced by its change.
                return store.callbacks_for_message(change.message_id)
            return ()

        return Family(
            fields=("account_id", "message_id", "type", "state", "recipient"),
            values=values,
            several=frozenset(),
            mutable=frozenset({3}),  # state
            ident=lambda c: c.id,
            records=records,
            find=lambda key: self.find_callbacks(CallbackFilter(*key)),
            exists=lambda callback_id: store.get_callback(callback_id) is not None,
        )

    # -- clock ---------------------------------------------------------------------------

    def clock_state(self) -> dict[str, Any]:
        service = self._service
        clock = service.clock
        return {
            "mode": "manual" if clock.manual else "realtime",
            "now": _t(clock.now()),
            "epoch": clock.now(),
            "timeScale": getattr(clock, "scale", None),
            "nextDue": _t(service.scheduler.next_due()),
            "pending": service.scheduler.pending(),
            "era": describe_era(service.scenario, clock.now()),
        }

    def check_manual(self) -> None:
        """Raises :class:`ClockIsRealtime` unless the clock can be advanced."""
        if not isinstance(self._service.clock, ManualClock):
            raise ClockIsRealtime()

    async def advance(self, seconds: float) -> dict[str, Any]:
        """Move virtual time on, firing everything that falls due; the clock afterwards."""
        self.check_manual()
        await self._service.scheduler.advance(seconds)
        return self.clock_state()

    # -- state ---------------------------------------------------------------------------

    def reset(self, account_id: str | None) -> dict[str, Any]:
        service = self._service
        messages = sum(1 for _ in service.store.messages(account_id))
        dropped = service.reset(account_id)
        return {
            "reset": account_id or "all",
            "messages": messages,
            "callbacks": len(dropped),
            "cancelled": sum(1 for c in dropped if c.state == "pending"),
        }

    def scenario(self) -> Scenario:
        return self._service.scenario
