"""Retention: forget finished messages and their callbacks, so an all-day run stays bounded.

A message is *finished* when none of its callbacks is pending (scheduled, in flight or held
by ``ordering: hold``) and no auto-reply to it is still to come. Per account, finished messages
wait in the order they finished; the oldest go first, with their callbacks and attempts, once
the account holds more than ``messages`` messages, or once they finished more than ``age``
virtual seconds ago. A message that is not finished is never forgotten, however old: it joins
the queue when it finishes (README.md, "Retention"). Each message enters the queue once and
leaves it once, so the cost is O(1) amortised per message, whatever the number held; nothing
scans the store, except once when the policy changes or a --db file is loaded.

The queue is fed by :class:`~emulator.state.changes.Changes`: every callback attempt and every
stored message is announced there, and that is when a message may have finished. Whatever
changes in an account is also when its too-old messages are looked at.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.delivery.clock import Clock
from emulator.state.changes import Change
from emulator.state.models import Message
from emulator.state.store import Store

log = logging.getLogger("emulator.state.retention")

# The count kept per account with the realtime clock when --retain-messages is not given
# (README.md, "Retention"): no CI run sends that many to one account, and an all-day run at
# 50 messages per second stays within a few hundred MB instead of growing all day.
REALTIME_DEFAULT_MESSAGES = 100_000


@dataclass(frozen=True, slots=True)
class Policy:
    """``messages``: at most this many per account (0: no limit); ``age``: virtual seconds a
    message is kept after it finished (0: no limit)."""

    messages: int = 0
    age: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.messages or self.age)

    def json(self) -> dict[str, Any]:
        return {"messages": self.messages, "forSeconds": self.age}


class Retention:
    """Forgets finished messages per the :class:`Policy`. ``busy(message_id)`` says whether
    something other than its callbacks is still to come for a message (an auto-reply)."""

    def __init__(self, store: Store, clock: Clock, busy: Callable[[str], bool] = lambda message_id: False) -> None:
        self.store = store
        self.clock = clock
        self.busy = busy
        self.policy = Policy()  # for every account the scenario gives no policy of its own
        # Accounts with their own (docs/scenarios.md, 'Retention'): asked once per account.
        self._policy_of: Callable[[str], Policy] | None = None
        self._policies: dict[str, Policy] = {}
        self.active = False
        # Per account: finished message ids, oldest first, with the virtual time they finished.
        self._finished: dict[str, OrderedDict[str, float]] = {}
        self.forgotten_messages = 0
        self.forgotten_callbacks = 0
        # Told of each message forgotten, e.g. the web page's index (emulator/live.py).
        self._on_forget: list[Callable[[Message], None]] = []

    # -- policy ---------------------------------------------------------------------------

    def configure(self, policy: Policy, policy_of: Callable[[str], Policy] | None = None) -> None:
        """Apply ``policy`` from now on (at start-up, and when a scenario is replaced), or
        ``policy_of(account_id)`` for the accounts it gives their own."""
        if policy == self.policy and policy_of is None and self._policy_of is None:
            return
        self.policy = policy
        self._policy_of = policy_of
        self._policies = {}
        self.active = policy.active or policy_of is not None
        self.rescan()

    def policy_for(self, account_id: str) -> Policy:
        if self._policy_of is None:
            return self.policy
        policy = self._policies.get(account_id)
        if policy is None:
            policy = self._policies[account_id] = self._policy_of(account_id)
        return policy

    def rescan(self) -> None:
        """Queue every finished message held: once, when the policy changes or a --db file
        has been loaded. Their finishing time is their last activity."""
        self._finished.clear()
        if not self.active:
            return
        by_account: dict[str, list[tuple[float, str]]] = {}
        for message in self.store.messages():
            if self.policy_for(message.account_id).active and self.finished(message.id):
                by_account.setdefault(message.account_id, []).append((self._last_activity(message), message.id))
        for account_id, done in by_account.items():
            done.sort()
            self._finished[account_id] = OrderedDict((message_id, at) for at, message_id in done)
            self._evict(account_id)

    def _last_activity(self, message: Message) -> float:
        last = message.time
        for callback in self.store.callbacks_for_message(message.id):
            last = max(last, callback.planned_at, *(attempt.time for attempt in callback.attempts))
        return last

    # -- what finished --------------------------------------------------------------------

    def finished(self, message_id: str) -> bool:
        """No callback of the message is pending and nothing else is to come for it."""
        return not self.store.has_pending_callback(message_id) and not self.busy(message_id)

    def on_change(self, change: Change) -> None:
        """A :class:`~emulator.state.changes.Changes` listener: told of every send and every
        callback attempt, so it is kept short for the common case, a message still pending."""
        if not self.active:
            return
        if change.kind == "reset":
            if change.account_id is None:
                self._finished.clear()
            else:
                self._finished.pop(change.account_id, None)
        elif change.account_id is not None and change.message_id is not None:
            self.consider(change.account_id, change.message_id)

    def consider(self, account_id: str, message_id: str) -> None:
        """Something happened to this message: queue it if it has finished, and forget what
        the policy no longer keeps in its account."""
        if not self.active:
            return
        if self._policy_of is not None and not self.policy_for(account_id).active:
            return
        queue = self._finished.get(account_id)
        if (
            (queue is None or message_id not in queue)
            and self.finished(message_id)
            and self.store.get_message(message_id) is not None
        ):
            if queue is None:
                queue = self._finished[account_id] = OrderedDict()
            queue[message_id] = self.clock.now()
        if queue:
            self._evict(account_id)

    # -- forgetting -----------------------------------------------------------------------

    def _evict(self, account_id: str) -> None:
        queue = self._finished[account_id]
        policy = self.policy_for(account_id)
        limit, age = policy.messages, policy.age
        held = self.store.message_count(account_id)
        cutoff = self.clock.now() - age if age else None
        while queue:
            message_id, finished_at = next(iter(queue.items()))
            if not ((limit and held > limit) or (cutoff is not None and finished_at <= cutoff)):
                break
            queue.popitem(last=False)
            message = self.store.get_message(message_id)
            if message is None:  # gone meanwhile (a failed write undone)
                continue
            if not self.finished(message_id):
                # Busy again (a handset read an RBM message: a new callback): it joins the
                # queue again when that one ends.
                continue
            callbacks = self.store.forget_message(message_id)
            for listener in self._on_forget:
                listener(message)
            held -= 1
            if not self.forgotten_messages:
                log.info(
                    "retention: forgetting finished messages of account %s and their callbacks "
                    "(keeping %s per account, %s after they finish); counted in /_emulator/health",
                    account_id,
                    limit or "any number",
                    f"{age:g} s" if age else "for ever",
                )
            self.forgotten_messages += 1
            self.forgotten_callbacks += len(callbacks)
        if not queue:
            del self._finished[account_id]

    def on_forget(self, listener: Callable[[Message], None]) -> None:
        """Call ``listener`` with every message forgotten from now on."""
        self._on_forget.append(listener)

    def summary(self) -> dict[str, Any]:
        """For /_emulator/health: the policy of accounts without their own, and what was forgotten."""
        return {
            **self.policy.json(),
            "forgottenMessages": self.forgotten_messages,
            "forgottenCallbacks": self.forgotten_callbacks,
        }
