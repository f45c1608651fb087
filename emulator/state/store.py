"""In-memory state, scoped by account.

Every record belongs to one Bandwidth account, so parallel tests that each use their own
accountId never see each other, and ``reset(account_id)`` forgets one account only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from emulator.state.models import Callback, Message


@dataclass
class MediaItem:
    account_id: str
    media_id: str
    content: bytes
    content_type: str
    cache_control: str | None
    created_at: float


@dataclass
class AccountState:
    messages: dict[str, Message] = field(default_factory=dict)
    media: dict[str, MediaItem] = field(default_factory=dict)


def message_id_in(callback_id: str) -> str | None:
    """The message id a callback id names: callback ids are ``cb-{messageId}-{n}`` (emulator.service)."""
    if not callback_id.startswith("cb-"):
        return None
    message_id, dash, _ = callback_id.partition("-")[2].rpartition("-")
    return message_id if dash else None


def _each(callbacks: Callback | tuple[Callback, ...]) -> tuple[Callback, ...]:
    """A message's callbacks (Message.callbacks holds a single one as it is)."""
    return (callbacks,) if isinstance(callbacks, Callback) else callbacks


# Up to this many accounts, a message is looked up in each account's dict in turn (Store).
FEW_ACCOUNTS = 4


class StoreObserver(Protocol):
    """Told of every change, e.g. to write it through to disk (:mod:`emulator.state.persistence`)."""

    def message_saved(self, message: Message) -> None: ...
    def callback_saved(self, callback: Callback) -> None: ...
    def media_saved(self, item: MediaItem) -> None: ...
    def media_deleted(self, account_id: str, media_id: str) -> None: ...
    def message_forgotten(self, message: Message, callbacks: list[Callback]) -> None: ...
    def reset(self, account_id: str | None) -> None: ...


class Store:
    def __init__(self) -> None:
        self.observer: StoreObserver | None = None
        self._accounts: dict[str, AccountState] = {}
        # Message ids are unique across accounts. With a few accounts a message is found by
        # asking each account's dict in turn, as quick as one global index, which would cost a
        # second dict entry per message (30 to 40 bytes); past FEW_ACCOUNTS this global
        # index (id -> account id) is built, and kept from then on.
        self._message_account: dict[str, str] | None = None
        # A message holds its callbacks (Message.callbacks), and a callback's id names its
        # message, so callbacks need no index of their own (a million of them would cost
        # about 100 MB in two dicts). Except these, by id: callbacks from --db files written
        # before the ids named their message, or whose message is not (or no longer) here.
        self._loose_callbacks: dict[str, Callback] = {}
        self._loose_by_message: dict[str, list[Callback]] = {}
        # The latest outbound message sent from each number, per account: the conversation an
        # inbound message that names no account or application joins (docs/control-api.md,
        # 'Inbound messages'). One entry per sending number and account, not per message.
        self._last_out: dict[str, dict[str, Message]] = {}

    def account(self, account_id: str) -> AccountState:
        state = self._accounts.get(account_id)
        if state is None:
            state = self._accounts[account_id] = AccountState()
            if self._message_account is None and len(self._accounts) > FEW_ACCOUNTS:
                self._message_account = {
                    mid: aid for aid, each in self._accounts.items() for mid in each.messages
                }
        return state

    def _account_of(self, message_id: str) -> AccountState | None:
        """The account holding this message id, if any."""
        index = self._message_account
        if index is not None:
            account_id = index.get(message_id)
            return None if account_id is None else self._accounts.get(account_id)
        for state in self._accounts.values():
            if message_id in state.messages:
                return state
        return None

    def _scope(self, account_id: str | None) -> Iterable[AccountState]:
        if account_id is None:
            return list(self._accounts.values())
        state = self._accounts.get(account_id)
        return [state] if state else []

    # -- messages -------------------------------------------------------------------------

    def add_message(self, message: Message) -> None:
        self.account(message.account_id).messages[message.id] = message
        if self._message_account is not None:
            self._message_account[message.id] = message.account_id
        if message.direction == "out":
            self._note_outbound(message)
        if self.observer is not None:
            self.observer.message_saved(message)

    def message_changed(self, message: Message) -> None:
        """Records are mutated in place; whoever changes one says so here."""
        if self.observer is not None:
            self.observer.message_saved(message)

    def discard_message(self, message_id: str) -> None:
        """Forget one message without telling the observer (its write failed: emulator.state.persistence)."""
        state = self._account_of(message_id)
        message = state.messages.pop(message_id, None) if state is not None else None
        if self._message_account is not None:
            self._message_account.pop(message_id, None)
        if message is not None and self._unindex_outbound(message) and state is not None:
            # The send never happened: its number's conversation is again the latest message
            # before it. A scan of the account, on this error path only (a failed write).
            for other in state.messages.values():
                if other.direction == "out" and other.from_ == message.from_:
                    self._note_outbound(other)

    def get_message(self, message_id: str) -> Message | None:
        index = self._message_account
        if index is not None:
            account_id = index.get(message_id)
            return None if account_id is None else self._accounts[account_id].messages.get(message_id)
        for state in self._accounts.values():
            message = state.messages.get(message_id)
            if message is not None:
                return message
        return None

    def messages(self, account_id: str | None = None) -> Iterator[Message]:
        for state in self._scope(account_id):
            yield from state.messages.values()

    def message_count(self, account_id: str) -> int:
        state = self._accounts.get(account_id)
        return len(state.messages) if state else 0

    def forget_message(self, message_id: str) -> list[Callback]:
        """Forget one message and its callbacks, on disk too (retention: emulator.state.retention);
        returns the callbacks forgotten. The caller makes sure none of them is pending."""
        callbacks = self.callbacks_for_message(message_id)
        state = self._account_of(message_id)
        if state is None:
            return []
        message = state.messages.pop(message_id)
        if self._message_account is not None:
            self._message_account.pop(message_id, None)
        # Forgotten by retention: its number has no conversation in this account any more,
        # even if older messages from it are still held (docs/control-api.md, 'Inbound messages').
        self._unindex_outbound(message)
        if self._loose_callbacks:
            self._drop_loose(callbacks)
        if self.observer is not None:
            self.observer.message_forgotten(message, callbacks)
        return callbacks

    def last_outbound_from(self, number: str) -> Message | None:
        """The latest outbound message held that was sent from ``number``, in any account; of
        two sent at the same virtual time, the one stored last."""
        by_account = self._last_out.get(number)
        if not by_account:
            return None
        latest: Message | None = None
        for message in by_account.values():  # in the order they were noted, the last one last
            if latest is None or message.time >= latest.time:
                latest = message
        return latest

    def _note_outbound(self, message: Message) -> None:
        by_account = self._last_out.get(message.from_)
        if by_account is None:
            self._last_out[message.from_] = {message.account_id: message}
            return
        known = by_account.pop(message.account_id, None)
        # Put back last, so that of two accounts' messages with the same time the later wins.
        by_account[message.account_id] = message if known is None or message.time >= known.time else known

    def _unindex_outbound(self, message: Message) -> bool:
        """Drop ``message`` from the conversations if it is its number's latest in its account."""
        if message.direction != "out":
            return False
        by_account = self._last_out.get(message.from_)
        if by_account is None or by_account.get(message.account_id) is not message:
            return False
        del by_account[message.account_id]
        if not by_account:
            del self._last_out[message.from_]
        return True

    # -- callbacks ------------------------------------------------------------------------

    def add_callback(self, callback: Callback) -> None:
        message = self.get_message(callback.message_id)
        if message is not None and message_id_in(callback.id) == message.id:
            held = message.callbacks
            message.callbacks = callback if not held else (*_each(held), callback)
        else:
            self._loose_callbacks[callback.id] = callback
            self._loose_by_message.setdefault(callback.message_id, []).append(callback)
        if self.observer is not None:
            self.observer.callback_saved(callback)

    def callback_changed(self, callback: Callback) -> None:
        if self.observer is not None:
            self.observer.callback_saved(callback)

    def discard_callback(self, callback_id: str) -> None:
        """Forget one callback without telling the observer (its write failed)."""
        loose = self._loose_callbacks.pop(callback_id, None)
        if loose is not None:
            self._drop_loose([loose])
            return
        message = self._message_of(callback_id)
        if message is not None:
            kept = tuple(c for c in _each(message.callbacks) if c.id != callback_id)
            message.callbacks = kept[0] if len(kept) == 1 else kept

    def _drop_loose(self, callbacks: Iterable[Callback]) -> None:
        for callback in callbacks:
            self._loose_callbacks.pop(callback.id, None)
            siblings = self._loose_by_message.get(callback.message_id)
            if siblings is not None and callback in siblings:
                siblings.remove(callback)
                if not siblings:
                    del self._loose_by_message[callback.message_id]

    def _message_of(self, callback_id: str) -> Message | None:
        message_id = message_id_in(callback_id)
        return None if message_id is None else self.get_message(message_id)

    def get_callback(self, callback_id: str) -> Callback | None:
        message = self._message_of(callback_id)
        if message is not None:
            for callback in _each(message.callbacks):
                if callback.id == callback_id:
                    return callback
        return self._loose_callbacks.get(callback_id)

    def callbacks(self, account_id: str | None = None) -> Iterator[Callback]:
        """The callbacks of the account (of all with None), message by message."""
        for state in self._scope(account_id):
            for message in state.messages.values():
                yield from _each(message.callbacks)
        if self._loose_callbacks:
            for callback in list(self._loose_callbacks.values()):
                if account_id is None or callback.account_id == account_id:
                    yield callback

    def callbacks_for_message(self, message_id: str) -> list[Callback]:
        message = self.get_message(message_id)
        found = list(_each(message.callbacks)) if message is not None else []
        if self._loose_by_message:
            found += self._loose_by_message.get(message_id, ())
        return found

    def has_pending_callback(self, message_id: str) -> bool:
        """Whether a callback of this message is still pending (scheduled, in flight or held)."""
        message = self.get_message(message_id)
        if message is not None:
            held = message.callbacks
            if isinstance(held, Callback):
                if held.state == "pending":
                    return True
            elif any(callback.state == "pending" for callback in held):
                return True
        loose = self._loose_by_message.get(message_id) if self._loose_by_message else None
        return loose is not None and any(callback.state == "pending" for callback in loose)

    # -- media ----------------------------------------------------------------------------

    def put_media(self, item: MediaItem) -> None:
        self.account(item.account_id).media[item.media_id] = item
        if self.observer is not None:
            self.observer.media_saved(item)

    def get_media(self, account_id: str, media_id: str) -> MediaItem | None:
        state = self._accounts.get(account_id)
        return state.media.get(media_id) if state else None

    def delete_media(self, account_id: str, media_id: str) -> bool:
        state = self._accounts.get(account_id)
        deleted = bool(state and state.media.pop(media_id, None))
        if deleted and self.observer is not None:
            self.observer.media_deleted(account_id, media_id)
        return deleted

    def media(self, account_id: str) -> list[MediaItem]:
        state = self._accounts.get(account_id)
        return list(state.media.values()) if state else []

    # -- lifetime -------------------------------------------------------------------------

    def reset(self, account_id: str | None = None) -> list[Callback]:
        """Forget messages, callbacks and media; returns the callbacks that were dropped."""
        dropped = list(self.callbacks(account_id))
        if account_id is None:
            self._accounts.clear()
            self._message_account = None
            self._last_out.clear()
            self._loose_callbacks.clear()
            self._loose_by_message.clear()
        else:
            if account_id in self._accounts:
                state = self._accounts.pop(account_id)
                if self._message_account is not None:
                    for mid in state.messages:
                        self._message_account.pop(mid, None)
            if self._loose_callbacks:
                self._drop_loose(dropped)
            for number, by_account in list(self._last_out.items()):
                if by_account.pop(account_id, None) is not None and not by_account:
                    del self._last_out[number]
        if self.observer is not None:
            self.observer.reset(account_id)
        return dropped
