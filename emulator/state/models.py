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
from typing import Any, Literal

# The metadata of a field that is an index, not part of the record (emulator.state.persistence skips it).
NOT_STORED = {"stored": False}

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
    bytes, this 40, and most messages have one recipient (a group a few, so a lookup by
    scanning is as quick as hashing). Statuses change in place; the recipients never do.
    """

    __slots__ = ("_statuses", "callbacks")

    def __init__(self, statuses: Iterable[RecipientStatus] = ()) -> None:
        every = tuple(statuses)
        # One status is held as it is, not in a tuple of one (48 bytes more).
        self._statuses: RecipientStatus | tuple[RecipientStatus, ...] = every[0] if len(every) == 1 else every
        # The message's callbacks (Message.callbacks): a second slot here costs nothing (the
        # object takes 48 bytes with one slot or two), where the message's own would cost 16.
        self.callbacks: Callback | tuple[Callback, ...] = ()

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
class Message:
    id: str
    account_id: str
    application_id: str
    direction: Direction
    from_: str
    # Tuples: a stored message never changes them, and the garbage collector stops tracking
    # a tuple of strings, which matters with hundreds of thousands of messages held.
    to: tuple[str, ...]
    owner: str
    time: float
    segment_count: int
    text: str = ""
    media: tuple[str, ...] = ()
    tag: str | None = None
    priority: str = "default"
    expiration: str | None = None
    encoding: str = "GSM-7"
    # Read-only; a plain dict is accepted too (emulator.state.persistence turns it into Recipients).
    recipients: Mapping[str, RecipientStatus] = field(default_factory=Recipients)
    # Messages of the multi-channel API (docs/multichannel.md): the channel it went out on
    # (or came in on) - RBM, SMS or MMS - and its details as JSON: the request's channel
    # list, every channel attempt of the fallback, the read time; for a handset's RBM
    # answer, its content, suggestion response or location. None for plain messaging.
    channel: str | None = None
    multichannel: dict[str, Any] | None = None

    @property
    def callbacks(self) -> Callback | tuple[Callback, ...]:
        """Its callbacks in the order they were planned, a single one as it is: the store's index
        of them (Store.callbacks_for_message), rather than a dict by message id. Held by its
        recipients (each callback is for one of them), which saves the message a slot; not
        part of the record: --db keeps callbacks in rows of their own."""
        recipients = self.recipients
        return recipients.callbacks if isinstance(recipients, Recipients) else ()

    @callbacks.setter
    def callbacks(self, callbacks: Callback | tuple[Callback, ...]) -> None:
        recipients = self.recipients
        if not isinstance(recipients, Recipients):
            recipients = self.recipients = compact_recipients(recipients)
        recipients.callbacks = callbacks

    @property
    def kind(self) -> MessageKind:
        if len(self.to) > 1:
            return "group"
        return "mms" if self.media else "sms"

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


# eq=False: a callback is itself (the delivery engine keys its jobs by the record), and
# two records of one event are never compared field by field.
@dataclass(slots=True, eq=False)
class Callback:
    """One planned event for one recipient, and every attempt to deliver it.

    The event's JSON is not kept: it is built from the message when it is sent or shown
    (``MessagingService.event``), from the fields here; its ``time`` is ``planned_at``.
    Its id is not kept either: it is ``cb-{messageId}-{order}`` (:attr:`id`).
    """

    account_id: str
    message_id: str
    application_id: str
    type: str
    recipient: str
    url: str | None
    planned_at: float
    description: str = ""
    error_code: int | None = None
    carrier_name: str | None = None
    state: CallbackState = "pending"
    next_attempt_at: float | None = None
    # A tuple, grown by add_attempt: most callbacks end with one attempt, or none yet, and the
    # empty tuple is shared where an empty list would cost 56 bytes per callback.
    attempts: tuple[Attempt, ...] = ()
    # Sequence number of this event within its message and recipient (0 = first).
    order: int = 0
    # ordering=hold: the id of the earlier callback (same message and recipient) this one waits for.
    held_by: str | None = None
    # Multi-channel messages: the channel this event is about (RBM, SMS or MMS).
    channel: str | None = None
    # The id, only when it is not cb-{messageId}-{order}: callbacks read from --db files
    # written when callback ids were random. Kept under "id" there (emulator.state.persistence).
    other_id: str | None = field(default=None, metadata=NOT_STORED)
    # While it is pending, the delivery engine's handle on it (emulator.delivery.callbacks.CallbackJob);
    # not part of the record.
    job: Any = field(default=None, init=False, repr=False, metadata=NOT_STORED)

    @property
    def id(self) -> str:
        """``cb-{messageId}-{order}``: unique as message ids are, as a message plans each order once."""
        return self.other_id or f"cb-{self.message_id}-{self.order}"

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
