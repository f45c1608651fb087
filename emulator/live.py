"""What the live web page reads (docs/ui.md, 'Live updates'): conversations indexed as
messages arrive, pages of them and of their messages, and the change feeds its event
streams are made of.

The index is built on first use, from one pass over the store in slices that let the event loop
run between them (sends and callbacks go on meanwhile), so a server whose page is never opened
pays nothing for it; from then on it follows :class:`~emulator.state.changes.Changes`.
Each change costs it O(1) plus the message's own recipients and callbacks, never a pass over
every message, and so does everything the page asks when it is told of a change.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from emulator.state.changes import Change, Changes
from emulator.state.models import Message
from emulator.state.store import Store

# The most changed messages a stream remembers between two flushes; beyond it the page is told
# to read everything again ("resync"), so a page that reads slowly never grows memory.
STREAM_BACKLOG = 1000
# The most event streams open at once (each is a page, or a tab).
MAX_STREAMS = 32
# A stream flushes at most this often (seconds): a burst of sends is one event.
FLUSH_INTERVAL = 0.05
# Messages indexed between two yields to the event loop while the index is built.
BUILD_SLICE = 1000


def conversation_key(m: Message) -> tuple[str, str, tuple[str, ...]]:
    """The conversation a message belongs to: one of our numbers with the set of handsets on
    the other side, per account (docs/ui.md, 'What it shows'). Inbound: ``owner`` received it."""
    if m.direction == "out":
        ours = m.from_
        others: tuple[str, ...] = m.to
    else:
        ours = m.owner
        others = (m.from_, *(n for n in m.to if n != m.owner))
    others = tuple(sorted(set(others)))
    return f"{m.account_id}|{ours}|{','.join(others)}", ours, others


def message_tokens(m: Message, callback_states: Iterator[str]) -> frozenset[str]:
    """What the page's state filter matches: the recipients' statuses and ``cb:STATE`` for
    each of the message's callbacks."""
    return frozenset((*(r.status for r in m.recipients.values()), *("cb:" + s for s in callback_states)))


@dataclass(slots=True)
class Conversation:
    key: str
    account_id: str
    ours: str
    others: tuple[str, ...]
    seq: int = 0  # activity order: larger is more recent
    ids: dict[str, None] = field(default_factory=dict)  # message ids, oldest first
    tokens: Counter[str] = field(default_factory=Counter)  # messages per status token
    tags: Counter[str] = field(default_factory=Counter)  # messages per tag


@dataclass(frozen=True)
class PageFilter:
    """The page's filters: every given one must match (docs/ui.md, 'What you can do')."""

    account_id: str | None = None
    number: str | None = None  # any part of one of the conversation's numbers
    tag: str | None = None
    state: str | None = None  # a recipient status, or cb:STATE for a callback state
    text: str | None = None  # any part of the message's text, ignoring case

    @property
    def empty(self) -> bool:
        return not (self.account_id or self.number or self.tag or self.state or self.text)

    def conversation_may_match(self, c: Conversation) -> bool:
        if self.account_id is not None and c.account_id != self.account_id:
            return False
        if self.number is not None and not any(self.number in n for n in (c.ours, *c.others)):
            return False
        if self.tag is not None and not c.tags[self.tag]:
            return False
        return self.state is None or bool(c.tokens[self.state])

    @property
    def per_message(self) -> bool:
        """Whether matching needs each message: text search, or tag and state together
        (the counters say only that some message has each)."""
        return self.text is not None or (self.tag is not None and self.state is not None)

    def message_matches(self, m: Message, tokens: frozenset[str]) -> bool:
        return (
            (self.tag is None or m.tag == self.tag)
            and (self.state is None or self.state in tokens)
            and (self.text is None or self.text.casefold() in m.text.casefold())
        )


class ConversationIndex:
    """Conversations by latest activity, their messages in order, and per-conversation counts
    of statuses and tags, kept up to date from the change announcements."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._conversations: OrderedDict[str, Conversation] = OrderedDict()  # least recent first
        self._of: dict[str, str] = {}  # message id -> conversation key
        self._tokens: dict[str, frozenset[str]] = {}  # message id -> its status tokens
        self._interned: dict[frozenset[str], frozenset[str]] = {}
        self._tags: Counter[str] = Counter()
        self._accounts: Counter[str] = Counter()
        self._seq = 0
        # Until :meth:`build` has caught up, changes wait here, in the order they came:
        # a Change, or a message forgotten by retention.
        self._pending: deque[Change | Message] | None = deque()
        self._build: asyncio.Task[None] | None = None
        self.slices = 0  # slices of the build so far (tests watch it)

    # -- building ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the index has caught up with the store (:meth:`build` has ended)."""
        return self._pending is None

    async def built(self, slice_size: int = BUILD_SLICE, stopped: Callable[[], bool] = lambda: False) -> None:
        """Wait until the index is ready; the first call starts the build, in a task of its
        own that later callers share, so a request that goes away does not stop it."""
        if self._pending is None:
            return
        if self._build is None:
            self._build = asyncio.ensure_future(self.build(slice_size, stopped))
        await asyncio.shield(self._build)

    async def build(self, slice_size: int = BUILD_SLICE, stopped: Callable[[], bool] = lambda: False) -> None:
        """Index every stored message, ``slice_size`` at a time, letting the event loop run
        between slices, so sends and callbacks go on while a page opens on a large store
        (docs/ui.md, 'Live updates'). Changes announced meanwhile are applied once the
        snapshot is indexed. Ends early, leaving the index not ready, once ``stopped()``
        (the server stops)."""
        snapshot = sorted(self._store.messages(), key=lambda m: m.time)
        await asyncio.sleep(0)
        for start in range(0, len(snapshot), slice_size):
            if stopped():
                return
            for m in snapshot[start : start + slice_size]:
                # Gone since the snapshot (reset, forgotten), or already indexed: skip it.
                if m.id not in self._of and self._store.get_message(m.id) is not None:
                    self._add(m)
            self.slices += 1
            await asyncio.sleep(0)
        del snapshot
        pending = self._pending
        assert pending is not None
        while pending:
            if stopped():
                return
            for _ in range(min(slice_size, len(pending))):
                item = pending.popleft()
                if isinstance(item, Change):
                    self._apply(item)
                else:
                    self._remove(item.id, item)
            if pending:
                self.slices += 1
                await asyncio.sleep(0)
        self._pending = None

    # -- keeping up ----------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        if self._pending is not None:
            self._pending.append(change)
        else:
            self._apply(change)

    def _apply(self, change: Change) -> None:
        if change.kind == "reset":
            self._reset(change.account_id)
            return
        if change.message_id is None:
            return
        message = self._store.get_message(change.message_id)
        if message is None:
            self._remove(change.message_id)
        elif change.message_id in self._of:
            self._update(message)
        else:
            self._add(message)

    def _tokens_of(self, m: Message) -> frozenset[str]:
        tokens = message_tokens(m, (c.state for c in self._store.callbacks_for_message(m.id)))
        return self._interned.setdefault(tokens, tokens)

    def _add(self, m: Message) -> None:
        key, ours, others = conversation_key(m)
        conv = self._conversations.get(key)
        if conv is None:
            conv = self._conversations[key] = Conversation(key, m.account_id, ours, others)
        else:
            self._conversations.move_to_end(key)
        self._seq += 1
        conv.seq = self._seq
        conv.ids[m.id] = None
        tokens = self._tokens_of(m)
        self._of[m.id] = key
        self._tokens[m.id] = tokens
        conv.tokens.update(tokens)
        if m.tag is not None:
            conv.tags[m.tag] += 1
            self._tags[m.tag] += 1
        self._accounts[m.account_id] += 1

    def _update(self, m: Message) -> None:
        tokens = self._tokens_of(m)
        old = self._tokens[m.id]
        if tokens is not old:
            conv = self._conversations[self._of[m.id]]
            _drop(conv.tokens, old)
            conv.tokens.update(tokens)
            self._tokens[m.id] = tokens

    def forget(self, message: Message) -> None:
        """A message forgotten by retention (README.md, "Retention")."""
        if self._pending is not None:
            self._pending.append(message)
        else:
            self._remove(message.id, message)

    def _remove(self, message_id: str, message: Message | None = None) -> None:
        """A message gone from the store: forgotten (``message``), or found missing on a change."""
        key = self._of.pop(message_id, None)
        if key is None:
            return
        tokens = self._tokens.pop(message_id)
        conv = self._conversations[key]
        del conv.ids[message_id]
        _drop(conv.tokens, tokens)
        _drop(self._accounts, (conv.account_id,))
        if message is not None:
            if message.tag is not None:
                _drop(conv.tags, (message.tag,))
                _drop(self._tags, (message.tag,))
        else:
            # Which tag it had is gone with it: count the conversation's again.
            _drop(self._tags, conv.tags.elements())
            conv.tags = Counter(m.tag for m in self._messages(conv) if m.tag is not None)
            self._tags.update(conv.tags)
        if not conv.ids:
            del self._conversations[key]

    def _reset(self, account_id: str | None) -> None:
        if account_id is None:
            self._conversations.clear()
            self._of.clear()
            self._tokens.clear()
            self._tags.clear()
            self._accounts.clear()
            return
        for key in [k for k, c in self._conversations.items() if c.account_id == account_id]:
            conv = self._conversations.pop(key)
            for mid in conv.ids:
                self._of.pop(mid, None)
                self._tokens.pop(mid, None)
            _drop(self._tags, conv.tags.elements())
        self._accounts.pop(account_id, None)

    # -- reading -------------------------------------------------------------------------

    def _messages(self, conv: Conversation) -> Iterator[Message]:
        for mid in conv.ids:
            m = self._store.get_message(mid)
            if m is not None:
                yield m

    @property
    def message_count(self) -> int:
        return len(self._of)

    @property
    def conversation_count(self) -> int:
        return len(self._conversations)

    def accounts(self) -> list[str]:
        return sorted(self._accounts)

    def tags(self, limit: int) -> list[str]:
        return sorted(self._tags)[:limit]

    def conversation_of(self, message_id: str) -> str | None:
        return self._of.get(message_id)

    def get(self, key: str) -> Conversation | None:
        return self._conversations.get(key)

    def matches(self, conv: Conversation, where: PageFilter) -> bool:
        if not where.conversation_may_match(conv):
            return False
        if not where.per_message:
            return True
        return any(where.message_matches(m, self._tokens[m.id]) for m in self._messages(conv))

    def matching_messages(self, conv: Conversation, where: PageFilter) -> int:
        """How many of the conversation's messages match (0 when the conversation does not)."""
        if not where.conversation_may_match(conv):
            return 0
        if where.per_message:
            return sum(1 for m in self._messages(conv) if where.message_matches(m, self._tokens[m.id]))
        if where.tag is not None:
            return conv.tags[where.tag]
        if where.state is not None:
            return conv.tokens[where.state]
        return len(conv.ids)

    def recent(self, where: PageFilter, before: int | None) -> Iterator[Conversation]:
        """Matching conversations, most recently active first, older than ``before`` (a seq)."""
        for conv in reversed(self._conversations.values()):
            if before is not None and conv.seq >= before:
                continue
            if self.matches(conv, where):
                yield conv

    def thread(self, conv: Conversation, where: PageFilter, before: str | None, limit: int) -> tuple[list[Message], str | None]:
        """Up to ``limit`` matching messages of a conversation older than message ``before``,
        oldest first, and the cursor for the page before them (None: there is none)."""
        found: list[Message] = []
        skipping = before is not None
        for mid in reversed(conv.ids):
            if skipping:
                skipping = mid != before
                continue
            m = self._store.get_message(mid)
            if m is None or (not where.empty and not where.message_matches(m, self._tokens[mid])):
                continue
            if len(found) == limit:
                return found[::-1], found[-1].id
            found.append(m)
        return found[::-1], None

    def tokens(self, message_id: str) -> frozenset[str]:
        return self._tokens.get(message_id, frozenset())


def _drop(counter: Counter[str], keys: Iterable[str]) -> None:
    """One less of each key; a key at zero leaves the counter (its lists show what is there)."""
    for k in list(keys):
        counter[k] -= 1
        if counter[k] <= 0:
            del counter[k]


# -- event streams ------------------------------------------------------------------------


class TooManyStreams(Exception):
    """More than MAX_STREAMS pages are open."""


@dataclass
class Batch:
    """What one event of the stream says: messages changed (with their conversations),
    accounts reset, or "read everything again"."""

    messages: list[str] = field(default_factory=list)
    resets: list[str | None] = field(default_factory=list)
    resync: bool = False


class Stream:
    """One open page's queue of changes: a bounded set of changed message ids, coalesced until
    the page's stream takes them."""

    def __init__(self, feed: LiveFeed) -> None:
        self._feed = feed
        self._dirty: dict[str, None] = {}
        self._resets: list[str | None] = []
        self._resync = False
        self._wake = asyncio.Event()
        self._last_flush = 0.0
        self.closed = False

    def push(self, change: Change) -> None:
        if self._resync:
            return
        if change.kind == "reset":
            self._resets.append(change.account_id)
            if change.account_id is None:
                self._dirty.clear()  # everything is gone anyway
        elif change.message_id is not None:
            self._dirty[change.message_id] = None
        if len(self._dirty) + len(self._resets) > STREAM_BACKLOG:
            self._resync = True
            self._dirty.clear()
            self._resets.clear()
        self._wake.set()

    def end(self) -> None:
        self.closed = True
        self._wake.set()

    async def next(self, heartbeat: float) -> Batch | None:
        """The next batch of changes; None after ``heartbeat`` seconds of quiet, or once the
        stream is closed (check :attr:`closed`)."""
        if self.closed:
            return None
        try:
            await asyncio.wait_for(self._wake.wait(), heartbeat)
        except TimeoutError:
            return None
        loop = asyncio.get_running_loop()
        # At most one event per FLUSH_INTERVAL: what comes meanwhile joins this one.
        wait = self._last_flush + FLUSH_INTERVAL - loop.time()
        if wait > 0 and not self.closed:
            await asyncio.sleep(wait)
        self._last_flush = loop.time()
        self._wake.clear()
        if self.closed:
            return None
        batch = Batch(list(self._dirty), self._resets, self._resync)
        self._dirty = {}
        self._resets = []
        self._resync = False
        return batch

    def close(self) -> None:
        self.closed = True
        self._feed.forget(self)


class LiveFeed:
    """The open streams, fed by one listener on the changes; ended when the server stops."""

    def __init__(self, changes: Changes, index: Callable[[], ConversationIndex]) -> None:
        self._changes = changes
        self._index = index
        self._streams: list[Stream] = []
        self._stop: Callable[[], None] | None = None
        changes.when_closed(self.close)  # the server stops: so do the streams
        self._closed_one = asyncio.Event()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def open(self) -> Stream:
        if len(self._streams) >= MAX_STREAMS:
            raise TooManyStreams()
        self._index()  # built (and listening) before the first stream hears of a change
        stream = Stream(self)
        if self._changes.closed:  # the server is stopping already
            stream.end()
        self._streams.append(stream)
        if self._stop is None:
            self._stop = self._changes.listen(self._push)
        return stream

    def _push(self, change: Change) -> None:
        for stream in self._streams:
            stream.push(change)

    async def wait_streams(self, at_most: int, timeout: float) -> bool:
        """Wait until at most ``at_most`` streams are open; False after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._streams) > at_most:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._closed_one.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def forget(self, stream: Stream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
            self._closed_one.set()
            self._closed_one = asyncio.Event()
        if not self._streams and self._stop is not None:
            self._stop()  # sends cost nothing more once the last page is closed
            self._stop = None

    def close(self) -> None:
        """The server is stopping: every stream ends now."""
        for stream in list(self._streams):
            stream.end()
