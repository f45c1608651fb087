"""The emulator's own records: plain typed objects, no I/O.

Wire formats (what Bandwidth sends and accepts) live in :mod:`emulator.messaging.wire`; these are
what the store keeps and the control API shows.

A million messages with their callbacks must fit in well under a gigabyte, so the records are
kept small (bench/RESULTS.md, 'Memory per stored message'): slotted dataclasses, tuples rather
than lists and dicts for what is short (a message's recipients, a callback's attempts), and the
strings every message repeats (account, application, sender) shared through :func:`shared`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, overload

Direction = Literal["in", "out"]
# Per-recipient status, in the list-messages API's words (docs/bandwidth-behaviour.md, 'Listing messages').
RecipientState = Literal["QUEUED", "SENDING", "SENT", "DELIVERED", "FAILED", "RECEIVED"]
CallbackState = Literal["pending", "delivered", "exhausted", "skipped", "cancelled"]
# The events of a message's life, as callbacks name them (docs/callbacks.md).
CallbackType = Literal[
    "message-sending",
    "message-sent",
    "message-delivered",
    "message-failed",
    "message-read",
    "message-received",
    "suggestion-response",
    "requested-location-response",
]
MessageKind = Literal["sms", "mms", "group"]


T = TypeVar("T")


class _Rare(Generic[T]):
    """A seldom-set field of a record, kept in the record's ``_rare`` object (a
    :class:`MessageRare` or :class:`CallbackRare`, None while all of them are at their defaults):
    reads ``default`` when the record has none, and writes through the record's ``_set_rare``
    (bench/RESULTS.md, 'Memory per stored message')."""

    __slots__ = ("default", "name")

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, record: None, owner: type | None = None) -> _Rare[T]: ...

    @overload
    def __get__(self, record: object, owner: type | None = None) -> T: ...

    def __get__(self, record: Any, owner: type | None = None) -> T | _Rare[T]:
        if record is None:
            return self
        rare = record._rare
        return self.default if rare is None else getattr(rare, self.name)

    def __set__(self, record: Any, value: T) -> None:
        record._set_rare(self.name, value)


def shared(text: str) -> str:
    """One string object for every equal one (``sys.intern``): account ids, application ids and
    the numbers messages are sent from repeat across messages, and every request's JSON gives
    them a new copy (50 to 90 bytes each per message otherwise). Only for such bounded sets:
    not for texts, the numbers sent to, or handsets' numbers (scheduled traffic makes new ones
    without end, and interned strings outlive their messages on some Python versions)."""
    return sys.intern(text)


@dataclass(slots=True)
class RecipientStatus:
    to: str
    status: RecipientState = "QUEUED"
    error_code: int | None = None
    description: str | None = None
    carrier_name: str | None = None
    updated_at: float | None = None


class Recipients(Mapping[str, RecipientStatus]):
    """A message's statuses by recipient number, in the order of its ``to``.

    A read-only mapping over the statuses themselves: a dict of one entry costs about 270
    bytes, and most messages have one recipient (a group a few, so a lookup by scanning is as
    quick as hashing). Statuses change in place; the recipients never do. A message keeps
    only the statuses, and ``Message.recipients`` wraps them in one of these when read.
    """

    __slots__ = ("_statuses",)

    def __init__(self, statuses: Iterable[RecipientStatus] = ()) -> None:
        every = tuple(statuses)
        # One status is held as it is, not in a tuple of one (48 bytes more).
        self._statuses: RecipientStatus | tuple[RecipientStatus, ...] = every[0] if len(every) == 1 else every

    @classmethod
    def _of(cls, statuses: RecipientStatus | tuple[RecipientStatus, ...]) -> Recipients:
        recipients = cls.__new__(cls)
        recipients._statuses = statuses
        return recipients

    def _all(self) -> tuple[RecipientStatus, ...]:
        statuses = self._statuses
        return (statuses,) if isinstance(statuses, RecipientStatus) else statuses

    def __getitem__(self, to: str) -> RecipientStatus:
        for status in self._all():
            if status.to == to:
                return status
        raise KeyError(to)

    def get(self, to: str, default: Any = None) -> Any:
        statuses = self._statuses
        if isinstance(statuses, RecipientStatus):
            return statuses if statuses.to == to else default
        for status in statuses:
            if status.to == to:
                return status
        return default

    def __iter__(self) -> Iterator[str]:
        return (status.to for status in self._all())

    def __len__(self) -> int:
        return 1 if isinstance(self._statuses, RecipientStatus) else len(self._statuses)

    def values(self) -> ValuesView[RecipientStatus]:
        return _Statuses(self)

    def __repr__(self) -> str:
        return f"Recipients({list(self._all())!r})"


class _Statuses(ValuesView[RecipientStatus]):
    """``Recipients.values()`` straight from the statuses, without a lookup per number."""

    __slots__ = ()
    _mapping: Recipients

    def __iter__(self) -> Iterator[RecipientStatus]:
        return iter(self._mapping._all())


def compact_recipients(recipients: Mapping[str, RecipientStatus]) -> Recipients:
    """The statuses of a plain dict (a record read back from --db, a test's) as :class:`Recipients`."""
    return recipients if isinstance(recipients, Recipients) else Recipients(recipients.values())


@dataclass(slots=True)
class MessageRare:
    """The fields of a :class:`Message` that most messages leave at their defaults, in one
    object that such a message does not have (bench/RESULTS.md, 'Memory per stored message')."""

    media: tuple[str, ...] = ()
    tag: str | None = None
    priority: str = "default"
    expiration: str | None = None
    channel: str | None = None
    multichannel: dict[str, Any] | None = None


_NO_MESSAGE_RARE = MessageRare()

# What a message is, field by field, as the constructor takes it and --db stores it
# (emulator.state.persistence), in this order.
MESSAGE_FIELDS = (
    "id", "account_id", "application_id", "direction", "from_", "to", "owner", "time", "segment_count",
    "text", "media", "tag", "priority", "expiration", "encoding", "recipients", "channel", "multichannel",
)


@dataclass(slots=True, init=False)
class Message:
    """A stored message. Every field of :data:`MESSAGE_FIELDS` reads and writes as an attribute;
    a million of them are kept, so a single recipient is held without its tuple, the statuses
    without their mapping, and the seldom-set fields (media, tag, priority, expiration, the
    multi-channel ones) share one slot that is None when they are all at their defaults
    (bench/RESULTS.md, 'Memory per stored message')."""

    id: str
    account_id: str
    application_id: str
    direction: Direction
    from_: str
    # The recipients' numbers: one as it is, several as a tuple (``to`` reads a tuple).
    _to: str | tuple[str, ...]
    owner: str
    time: float
    segment_count: int
    text: str
    encoding: str
    # The statuses by recipient (``recipients`` reads them as a mapping by number): one as it is.
    _statuses: RecipientStatus | tuple[RecipientStatus, ...]
    _rare: MessageRare | None
    # Its callbacks in the order they were planned, a single one as it is: the store's index
    # of them (Store.callbacks_for_message), rather than a dict by message id. Not part of
    # the record: --db keeps callbacks in rows of their own.
    callbacks: Callback | tuple[Callback, ...] = field(compare=False, repr=False)

    def __init__(
        self,
        id: str,
        account_id: str,
        application_id: str,
        direction: Direction,
        from_: str,
        # Tuples: a stored message never changes them, and the garbage collector stops tracking
        # a tuple of strings, which matters with hundreds of thousands of messages held.
        to: tuple[str, ...],
        owner: str,
        time: float,
        segment_count: int,
        text: str = "",
        media: tuple[str, ...] = (),
        tag: str | None = None,
        priority: str = "default",
        expiration: str | None = None,
        encoding: str = "GSM-7",
        recipients: Mapping[str, RecipientStatus] | None = None,
        # Messages of the multi-channel API (docs/multichannel.md): the channel it went out on
        # (or came in on) - RBM, SMS or MMS - and its details as JSON: the request's channel
        # list, every channel attempt of the fallback, the read time; for a handset's RBM
        # answer, its content, suggestion response or location. None for plain messaging.
        channel: str | None = None,
        multichannel: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.account_id = account_id
        self.application_id = application_id
        self.direction = direction
        self.from_ = from_
        self.to = to
        self.owner = owner
        self.time = time
        self.segment_count = segment_count
        self.text = text
        self.encoding = encoding
        # Read-only; a plain dict is accepted too (emulator.state.persistence passes one).
        if recipients is None:
            self._statuses = ()
        else:
            self._statuses = (recipients if isinstance(recipients, Recipients) else compact_recipients(recipients))._statuses
        if not media and tag is None and priority == "default" and expiration is None and channel is None and multichannel is None:
            self._rare = None
        else:
            self._rare = MessageRare(media, tag, priority, expiration, channel, multichannel)
        self.callbacks = ()

    @property
    def to(self) -> tuple[str, ...]:
        to = self._to
        return (to,) if isinstance(to, str) else to

    @to.setter
    def to(self, to: tuple[str, ...]) -> None:
        self._to = to[0] if len(to) == 1 else tuple(to)

    def _set_rare(self, name: str, value: Any) -> None:
        rare = self._rare
        if rare is None:
            if value == getattr(_NO_MESSAGE_RARE, name):
                return
            rare = self._rare = MessageRare()
        setattr(rare, name, value)
        if rare == _NO_MESSAGE_RARE:
            self._rare = None

    @property
    def recipients(self) -> Mapping[str, RecipientStatus]:
        """The statuses by recipient number (a :class:`Recipients`)."""
        return Recipients._of(self._statuses)

    @recipients.setter
    def recipients(self, recipients: Mapping[str, RecipientStatus]) -> None:
        self._statuses = compact_recipients(recipients)._statuses

    media = _Rare[tuple[str, ...]](())
    tag = _Rare[str | None](None)
    priority = _Rare[str]("default")
    expiration = _Rare[str | None](None)
    channel = _Rare[str | None](None)
    multichannel = _Rare[dict[str, Any] | None](None)

    def replace(self, **changes: Any) -> Message:
        """A copy with ``changes`` (``dataclasses.replace`` for the fields of :data:`MESSAGE_FIELDS`)."""
        return Message(**{**{name: getattr(self, name) for name in MESSAGE_FIELDS}, **changes})

    @property
    def kind(self) -> MessageKind:
        to = self._to
        if not isinstance(to, str) and len(to) > 1:
            return "group"
        rare = self._rare
        return "mms" if rare is not None and rare.media else "sms"

    @property
    def message_type(self) -> Literal["sms", "mms", "rcs"]:
        if self.channel == "RBM":  # messageType rcs (docs/multichannel.md, 'Listing')
            return "rcs"
        # A group message goes out as MMS whatever its content (docs/bandwidth-behaviour.md, 'Sending').
        return "sms" if self.kind == "sms" else "mms"


@dataclass(slots=True)
class Attempt:
    """One POST to a webhook. Every POST is journaled, including challenge-mode 401s and duplicates."""

    time: float
    status: int | None
    error: str | None
    duration_ms: float
    authorization: bool = False
    # Which scheduled attempt this POST belongs to (1 = the first). A challenge-mode pair
    # (401 without credentials, then the resend with them) shares one number.
    number: int = 1
    # An extra delivery of an already delivered event (the application's ``duplicates``).
    duplicate: bool = False
    # Made on demand (POST /_emulator/callbacks/{id}/replay), outside the retry schedule; it
    # shares the number of the scheduled attempt before it, so the schedule is not disturbed.
    replay: bool = False


@dataclass(slots=True)
class CallbackRare:
    """The fields of a :class:`Callback` that most callbacks leave at None, in one object that
    such a callback does not have (bench/RESULTS.md, 'Memory per stored message')."""

    error_code: int | None = None
    carrier_name: str | None = None
    held_by: str | None = None
    channel: str | None = None
    other_id: str | None = None


_NO_CALLBACK_RARE = CallbackRare()

# What a callback is, field by field, as the constructor takes it and --db stores it
# (emulator.state.persistence, which writes its id first and keeps ``other_id`` as that id).
CALLBACK_FIELDS = (
    "account_id", "message_id", "application_id", "type", "recipient", "url", "planned_at", "description",
    "error_code", "carrier_name", "state", "next_attempt_at", "attempts", "order", "held_by", "channel",
)


# eq=False: a callback is itself (the delivery engine keys its jobs by the record), and
# two records of one event are never compared field by field.
@dataclass(slots=True, eq=False, init=False)
class Callback:
    """One planned event for one recipient, and every attempt to deliver it.

    The event's JSON is not kept: it is built from the message when it is sent or shown
    (``MessagingService.event``), from the fields here; its ``time`` is ``planned_at``.
    Its id is not kept either: it is ``cb-{messageId}-{order}`` (:attr:`id`). The fields that
    are None for most callbacks (error code, carrier, hold, channel, an old id) share one
    slot, None while they all are (bench/RESULTS.md, 'Memory per stored message').
    """

    account_id: str
    message_id: str
    application_id: str
    type: str
    recipient: str
    url: str | None
    planned_at: float
    description: str
    state: CallbackState
    next_attempt_at: float | None
    # A tuple, grown by add_attempt: most callbacks end with one attempt, or none yet, and the
    # empty tuple is shared where an empty list would cost 56 bytes per callback.
    attempts: tuple[Attempt, ...]
    # Sequence number of this event within its message and recipient (0 = first).
    order: int
    _rare: CallbackRare | None
    # While it is pending, the delivery engine's handle on it (emulator.delivery.callbacks.CallbackJob);
    # not part of the record.
    job: Any

    def __init__(
        self,
        account_id: str,
        message_id: str,
        application_id: str,
        type: str,
        recipient: str,
        url: str | None,
        planned_at: float,
        description: str = "",
        error_code: int | None = None,
        carrier_name: str | None = None,
        state: CallbackState = "pending",
        next_attempt_at: float | None = None,
        attempts: tuple[Attempt, ...] = (),
        order: int = 0,
        # ordering=hold: the id of the earlier callback (same message and recipient) this one waits for.
        held_by: str | None = None,
        # Multi-channel messages: the channel this event is about (RBM, SMS or MMS).
        channel: str | None = None,
        # The id, only when it is not cb-{messageId}-{order}: callbacks read from --db files
        # written when callback ids were random. Kept under "id" there (emulator.state.persistence).
        other_id: str | None = None,
    ) -> None:
        self.account_id = account_id
        self.message_id = message_id
        self.application_id = application_id
        self.type = type
        self.recipient = recipient
        self.url = url
        self.planned_at = planned_at
        self.description = description
        self.state = state
        self.next_attempt_at = next_attempt_at
        self.attempts = attempts
        self.order = order
        if error_code is None and carrier_name is None and held_by is None and channel is None and other_id is None:
            self._rare = None
        else:
            self._rare = CallbackRare(error_code, carrier_name, held_by, channel, other_id)
        self.job = None

    def _set_rare(self, name: str, value: Any) -> None:
        rare = self._rare
        if rare is None:
            if value is None:
                return
            rare = self._rare = CallbackRare()
        setattr(rare, name, value)
        if rare == _NO_CALLBACK_RARE:
            self._rare = None

    error_code = _Rare[int | None](None)
    carrier_name = _Rare[str | None](None)
    held_by = _Rare[str | None](None)
    channel = _Rare[str | None](None)
    other_id = _Rare[str | None](None)

    @property
    def id(self) -> str:
        """``cb-{messageId}-{order}``: unique as message ids are, as a message plans each order once."""
        rare = self._rare
        return (rare is not None and rare.other_id) or f"cb-{self.message_id}-{self.order}"

    def add_attempt(self, attempt: Attempt) -> None:
        """Journal one more POST (a copy of a handful of references: callbacks make few)."""
        self.attempts = (*self.attempts, attempt)


@dataclass
class InboundRequest:
    """A handset texting one or more of our numbers (the control API's inbound, scheduled
    traffic, auto-replies): what the service turns into received messages."""

    from_: str
    to: list[str]
    text: str = ""
    media: list[Any] | None = None  # URLs or media.InlineFile
    application_id: str | None = None
    account_id: str | None = None
    # Where the emulator is reached, for the URLs of inbound media it stores.
    base_url: str | None = None
