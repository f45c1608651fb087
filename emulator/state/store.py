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
    callbacks: dict[str, Callback] = field(default_factory=dict)
    media: dict[str, MediaItem] = field(default_factory=dict)


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
        # Global indexes by id: ids are unique across accounts.
        self._message_account: dict[str, str] = {}
        self._callback_account: dict[str, str] = {}
        self._message_callbacks: dict[str, list[Callback]] = {}

    def account(self, account_id: str) -> AccountState:
        state = self._accounts.get(account_id)
        if state is None:
            state = self._accounts[account_id] = AccountState()
        return state

    def _scope(self, account_id: str | None) -> Iterable[AccountState]:
        if account_id is None:
            return list(self._accounts.values())
        state = self._accounts.get(account_id)
        return [state] if state else []

    # -- messages -------------------------------------------------------------------------

    def add_message(self, message: Message) -> None:
        self.account(message.account_id).messages[message.id] = message
        self._message_account[message.id] = message.account_id
        if self.observer is not None:
            self.observer.message_saved(message)

    def message_changed(self, message: Message) -> None:
        """Records are mutated in place; whoever changes one says so here."""
        if self.observer is not None:
            self.observer.message_saved(message)

    def discard_message(self, message_id: str) -> None:
        """Forget one message without telling the observer (its write failed: emulator.state.persistence)."""
        account_id = self._message_account.pop(message_id, None)
        if account_id is not None and account_id in self._accounts:
            self._accounts[account_id].messages.pop(message_id, None)

    def get_message(self, message_id: str) -> Message | None:
        account_id = self._message_account.get(message_id)
        if account_id is None:
            return None
        return self._accounts[account_id].messages.get(message_id)

    def messages(self, account_id: str | None = None) -> Iterator[Message]:
        for state in self._scope(account_id):
            yield from state.messages.values()

    def message_count(self, account_id: str) -> int:
        state = self._accounts.get(account_id)
        return len(state.messages) if state else 0

    def forget_message(self, message_id: str) -> list[Callback]:
        """Forget one message and its callbacks, on disk too (retention: emulator.state.retention);
        returns the callbacks forgotten. The caller makes sure none of them is pending."""
        account_id = self._message_account.pop(message_id, None)
        if account_id is None:
            return []
        state = self._accounts[account_id]
        message = state.messages.pop(message_id)
        callbacks = self._message_callbacks.pop(message_id, [])
        for callback in callbacks:
            state.callbacks.pop(callback.id, None)
            self._callback_account.pop(callback.id, None)
        if self.observer is not None:
            self.observer.message_forgotten(message, callbacks)
        return callbacks

    # -- callbacks ------------------------------------------------------------------------

    def add_callback(self, callback: Callback) -> None:
        self.account(callback.account_id).callbacks[callback.id] = callback
        self._callback_account[callback.id] = callback.account_id
        self._message_callbacks.setdefault(callback.message_id, []).append(callback)
        if self.observer is not None:
            self.observer.callback_saved(callback)

    def callback_changed(self, callback: Callback) -> None:
        if self.observer is not None:
            self.observer.callback_saved(callback)

    def discard_callback(self, callback_id: str) -> None:
        """Forget one callback without telling the observer (its write failed)."""
        account_id = self._callback_account.pop(callback_id, None)
        if account_id is None or account_id not in self._accounts:
            return
        callback = self._accounts[account_id].callbacks.pop(callback_id, None)
        siblings = self._message_callbacks.get(callback.message_id) if callback is not None else None
        if siblings is not None and callback in siblings:
            siblings.remove(callback)
            if not siblings:
                del self._message_callbacks[callback.message_id]

    def get_callback(self, callback_id: str) -> Callback | None:
        account_id = self._callback_account.get(callback_id)
        if account_id is None:
            return None
        return self._accounts[account_id].callbacks.get(callback_id)

    def callbacks(self, account_id: str | None = None) -> Iterator[Callback]:
        for state in self._scope(account_id):
            yield from state.callbacks.values()

    def callbacks_for_message(self, message_id: str) -> list[Callback]:
        return list(self._message_callbacks.get(message_id, ()))

    def has_pending_callback(self, message_id: str) -> bool:
        """Whether a callback of this message is still pending (scheduled, in flight or held)."""
        return any(callback.state == "pending" for callback in self._message_callbacks.get(message_id, ()))

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
        dropped: list[Callback] = []
        for state in self._scope(account_id):
            dropped.extend(state.callbacks.values())
        if account_id is None:
            self._accounts.clear()
            self._message_account.clear()
            self._callback_account.clear()
            self._message_callbacks.clear()
        elif account_id in self._accounts:
            state = self._accounts.pop(account_id)
            for mid in state.messages:
                self._message_account.pop(mid, None)
                self._message_callbacks.pop(mid, None)
            for cid in state.callbacks:
                self._callback_account.pop(cid, None)
        if self.observer is not None:
            self.observer.reset(account_id)
        return dropped
