"""What the control API and the web page read and do, on the domain side.

The HTTP handlers in :mod:`emulator.control` parse and validate requests and turn answers
into responses; the filters, the JSON views of records, and everything that needs the
store, the scheduler or the clock live here (tests/test_layers.py keeps it so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from typing import Any, get_args

from emulator import __version__
from emulator.delivery.clock import ManualClock, isoformat
from emulator.live import BUILD_SLICE, Batch, Conversation, ConversationIndex, LiveFeed, PageFilter, Stream
from emulator.scenarios.eras import describe as describe_era
from emulator.scenarios.format import Scenario
from emulator.service import MessagingService
from emulator.state.changes import Change
from emulator.state.models import Attempt, Callback, CallbackState, CallbackType, Direction, Message, RecipientState
from emulator.state.waiters import Family, WaitIndex

# The values the control API's filters accept, from the models' own types.
DIRECTIONS: tuple[str, ...] = get_args(Direction)
CALLBACK_STATES: tuple[str, ...] = get_args(CallbackState)
CALLBACK_TYPES: tuple[str, ...] = get_args(CallbackType)
# The web page's state filter: a recipient status, or cb:STATE for a callback state.
PAGE_STATES: tuple[str, ...] = (*get_args(RecipientState), *("cb:" + s for s in CALLBACK_STATES))


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
        self._index: ConversationIndex | None = None
        self.live_build_slice = BUILD_SLICE  # messages indexed per slice (tests make it small)
        self._feed = LiveFeed(service.changes, self._conversations)

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

    # -- the live web page (docs/ui.md, 'Live updates') ---------------------------------

    async def live_index(self) -> ConversationIndex:
        """The conversation index the page reads, once it has caught up with the store. The
        first call builds it, in slices that let sends and callbacks run meanwhile
        (docs/ui.md, 'Live updates'); concurrent first calls share that one build. The
        ``page_*`` methods, :meth:`open_stream` and :meth:`describe` need it ready: await
        this first."""
        if self._index is None:
            index = self._index = ConversationIndex(self._service.store)
            # Listening from before the snapshot: what changes meanwhile waits in the index.
            self._service.changes.listen(index.apply)
            self._service.retention.on_forget(index.forget)
        changes = self._service.changes
        await self._index.built(self.live_build_slice, lambda: changes.closed)
        return self._index

    @property
    def conversation_index(self) -> ConversationIndex | None:
        """The index, ready or being built; None until a page first read it."""
        return self._index

    def _conversations(self) -> ConversationIndex:
        if self._index is None or not (self._index.ready or self._service.changes.closed):
            raise RuntimeError("the conversation index is not built: await Queries.live_index() first")
        return self._index

    def _conversation_row(self, conv: Conversation, where: PageFilter) -> dict[str, Any]:
        index = self._conversations()
        last = None
        for mid in reversed(conv.ids):
            last = self._service.store.get_message(mid)
            if last is not None:
                break
        return {
            "key": conv.key,
            "accountId": conv.account_id,
            "ours": conv.ours,
            "others": list(conv.others),
            "seq": conv.seq,
            "messages": len(conv.ids),
            "matching": index.matching_messages(conv, where),
            "failed": conv.tokens["FAILED"],
            "exhausted": conv.tokens["cb:exhausted"],
            "last": None if last is None else message_json(last),
        }

    def page_totals(self, where: PageFilter, count: bool) -> dict[str, Any]:
        """How many messages and conversations there are; with ``count``, also how many
        messages match (a pass over the conversations, or over their messages for a text
        search: the page asks for it when its filters change, not on every change)."""
        index = self._conversations()
        totals: dict[str, Any] = {"messages": index.message_count, "conversations": index.conversation_count}
        if count:
            totals["matching"] = (
                index.message_count
                if where.empty
                else sum(index.matching_messages(c, where) for c in index.recent(where, None))
            )
        return totals

    def page_conversations(
        self, where: PageFilter, limit: int, before: int | None, count: bool, tags: int
    ) -> dict[str, Any]:
        """A page of matching conversations, most recently active first."""
        index = self._conversations()
        rows: list[dict[str, Any]] = []
        more = None
        for conv in index.recent(where, before):
            if len(rows) == limit:
                more = rows[-1]["seq"]
                break
            rows.append(self._conversation_row(conv, where))
        return {
            "conversations": rows,
            "next": more,
            "totals": self.page_totals(where, count),
            "accounts": index.accounts(),
            "tags": index.tags(tags),
        }

    def page_conversation_rows(self, where: PageFilter, keys: list[str]) -> dict[str, Any]:
        """The rows of these conversations that exist and match; the others are in ``gone``."""
        index = self._conversations()
        rows: list[dict[str, Any]] = []
        gone: list[str] = []
        for key in keys:
            conv = index.get(key)
            if conv is not None and index.matches(conv, where):
                rows.append(self._conversation_row(conv, where))
            else:
                gone.append(key)
        return {"conversations": rows, "gone": gone, "totals": self.page_totals(where, False)}

    def page_thread(self, key: str, where: PageFilter, before: str | None, limit: int) -> dict[str, Any] | None:
        """The latest ``limit`` matching messages of a conversation (before message ``before``),
        oldest first, each with its callbacks; None for an unknown conversation."""
        index = self._conversations()
        conv = index.get(key)
        if conv is None:
            return None
        messages, more = index.thread(conv, where, before, limit)
        return {"messages": [self.page_message(m) for m in messages], "before": more}

    def page_message(self, message: Message) -> dict[str, Any]:
        body = self.message_detail(message)
        body["conversation"] = self._conversations().conversation_of(message.id)
        return body

    def page_messages(self, ids: list[str], where: PageFilter) -> dict[str, Any]:
        """These messages with their callbacks, those that exist and match; the others in ``gone``."""
        index = self._conversations()
        found: list[dict[str, Any]] = []
        gone: list[str] = []
        for mid in ids:
            m = self._service.store.get_message(mid)
            if m is None or (not where.empty and not where.message_matches(m, index.tokens(mid))):
                gone.append(mid)
            else:
                found.append(self.page_message(m))
        return {"messages": found, "gone": gone}

    async def open_stream(self) -> Stream:
        """A new event stream for a page, once the index is ready; raises
        :class:`emulator.live.TooManyStreams`."""
        await self.live_index()
        return self._feed.open()

    async def wait_streams(self, at_most: int, timeout: float) -> bool:
        """Wait until at most ``at_most`` event streams are open (False after ``timeout`` s)."""
        return await self._feed.wait_streams(at_most, timeout)

    def describe(self, batch: Batch) -> dict[str, Any]:
        """An event's data: the changed messages with their conversations, the resets."""
        index = self._conversations()
        return {
            "version": self.version,
            "messages": [{"id": mid, "conversation": index.conversation_of(mid)} for mid in batch.messages],
            "resets": batch.resets,
            "resync": batch.resync,
        }
