"""Durable state for ``--db PATH``: the store's records written through to SQLite.

The in-memory :class:`~emulator.state.store.Store` stays the source of truth while running; this
module is an observer that mirrors every change into one SQLite file and, at start-up,
loads it back. What a client was told (a 202, a media PUT) is committed before the answer
leaves: the app's commit middleware waits for :meth:`Database.committed` after every request
(requests finishing together share one commit).
Changes made by the scheduler (callback attempts, status changes) are committed at the end
of the event-loop iteration that made them, so a ``kill -9`` may forget at most the last
attempt of a callback, which is then delivered again: at least once, as Bandwidth does.

A commit that fails (a full disk) is rolled back whole, and so is what the requests it carried
created in memory: their clients get a 500, and a message that got one is neither stored nor
delivered (README.md, "Durable state"). Changes the scheduler made (attempts that did happen)
stay in memory and are written by the next commit, which is tried again after a second; reads
go on meanwhile, and writing resumes by itself once the disk has room again.

WAL with ``synchronous=NORMAL``: a commit survives the process being killed (the data is in
the WAL file, written before the commit returns) but not necessarily a power cut, which is
the right trade for a test tool.

Records are stored as JSON of their dataclass fields, so a field added to a model later is
simply absent (its default) in older files; media bytes are kept in the same file as BLOBs
(at most a few MB each) so that a message and its media are restored together.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from emulator.delivery.clock import Clock, keeps_own_time
from emulator.state.models import (
    CALLBACK_FIELDS,
    MESSAGE_FIELDS,
    Attempt,
    Callback,
    CallbackState,
    Direction,
    Message,
    Recipients,
    RecipientStatus,
    compact_recipients,
    shared,
)
from emulator.state.store import MediaItem, Store

log = logging.getLogger("emulator.state.persistence")

SCHEMA_VERSION = 1

# Messages forgotten by retention whose rows are deleted together (see Database.message_forgotten).
FORGET_BATCH = 256

# No index on account_id: only a per-account reset needs it, and every index is one more page
# written by the commit that precedes each 202.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS callbacks (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, message_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS media (
    account_id TEXT NOT NULL, media_id TEXT NOT NULL, data TEXT NOT NULL, content BLOB NOT NULL,
    PRIMARY KEY (account_id, media_id));
"""


class DatabaseError(Exception):
    """The file cannot be used as the emulator's database."""


def _stored_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


# A message and a callback are not stored as their slots (emulator/state/models.py folds
# the seldom-set fields into one) but as their fields, as they always were.
_MESSAGE_FIELDS = set(MESSAGE_FIELDS)
_CALLBACK_FIELDS = set(CALLBACK_FIELDS)
_MEDIA_FIELDS = set(_stored_fields(MediaItem)) - {"content"}


# A callback's id is not a field (it is made from its message id and order) but is written
# first, as it always was, so that every row says which callback it is.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {Message: MESSAGE_FIELDS, Callback: ("id", *CALLBACK_FIELDS)}


def _as_dict(obj: Any) -> dict[str, Any]:
    # json calls this for every dataclass it meets (a Message's RecipientStatus, a Callback's
    # Attempts); unlike dataclasses.asdict it copies nothing, which matters on the accept path.
    cls = type(obj)
    if cls is Recipients:  # a message's, kept as the dict by number it reads as
        return {status.to: status for status in obj.values()}
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"cannot store a {cls.__name__}")
        names = _FIELD_NAMES[cls] = _stored_fields(cls)
    return {name: getattr(obj, name) for name in names}


def _dump(obj: Any, skip: frozenset[str] = frozenset()) -> str:
    data = _as_dict(obj)
    for name in skip:
        data.pop(name, None)
    return json.dumps(data, separators=(",", ":"), default=_as_dict)


def _known(data: dict[str, Any], names: set[str]) -> dict[str, Any]:
    # Tolerate files written by another version: unknown keys are dropped, missing ones default.
    return {k: v for k, v in data.items() if k in names}


@dataclasses.dataclass
class _MessageRow:
    """A messages row as it is checked: the fields of models.MESSAGE_FIELDS with their types
    and defaults (a field missing from an older file takes its default)."""

    id: str
    account_id: str
    application_id: str
    direction: Direction
    from_: str
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
    recipients: dict[str, RecipientStatus] = dataclasses.field(default_factory=dict)
    channel: str | None = None
    multichannel: dict[str, Any] | None = None


@dataclasses.dataclass
class _CallbackRow:
    """A callbacks row as it is checked: the fields of models.CALLBACK_FIELDS."""

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
    attempts: tuple[Attempt, ...] = ()
    order: int = 0
    held_by: str | None = None
    channel: str | None = None


# Rows are checked against the models as they load: a row that is not what this version
# wrote (edited by hand, cut short, from another program) is refused at start-up with a line
# naming it (README.md, "Durable state"), instead of failing later requests one by one.
_MESSAGE = TypeAdapter(_MessageRow)
_CALLBACK = TypeAdapter(_CallbackRow)
_MEDIA_ITEM = TypeAdapter(MediaItem)


def _object(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def message_from_json(text: str) -> Message:
    message = Message(**vars(_MESSAGE.validate_python(_known(_object(text), _MESSAGE_FIELDS))))
    # As compact as the records the service makes (emulator/state/models.py).
    message.recipients = compact_recipients(message.recipients)
    message.account_id = shared(message.account_id)
    message.application_id = shared(message.application_id)
    # Our number (the sender of an outbound message), not a handset's (models.shared).
    message.owner = shared(message.owner)
    if message.from_ == message.owner:
        message.from_ = message.owner
    return message


def callback_from_json(text: str) -> Callback:
    raw = _object(text)
    data = _known(raw, _CALLBACK_FIELDS)
    event = raw.get("event")
    if isinstance(event, dict) and "description" not in data:
        # Older files kept the whole event; what it said besides the message is all we need.
        data["description"] = event.get("description", "")
        data["error_code"] = event.get("errorCode")
        data["carrier_name"] = event.get("carrierName")
    callback = Callback(**vars(_CALLBACK.validate_python(data)))
    written = raw.get("id")
    if not isinstance(written, str):
        raise ValueError("id: a callback's id must be a string")
    if written != callback.id:
        callback.other_id = written  # a random id, from before ids named their message
    # The strings every callback of an account repeats, shared (emulator/state/models.py).
    callback.account_id = shared(callback.account_id)
    callback.application_id = shared(callback.application_id)
    callback.type = shared(callback.type)
    callback.description = shared(callback.description)
    if callback.url is not None:
        callback.url = shared(callback.url)
    return callback


def media_from_row(data: str, content: bytes) -> MediaItem:
    return _MEDIA_ITEM.validate_python({**_known(_object(data), _MEDIA_FIELDS), "content": bytes(content)})


def _problem(exc: Exception) -> str:
    """One line saying what is wrong with a row."""
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else error["msg"]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class RequestChanges:
    """What one API request changed, and whether that was committed (see ``request_changes``)."""

    __slots__ = ("keys", "state")

    def __init__(self) -> None:
        self.keys: set[tuple[str, ...]] = set()
        self.state: Literal["pending", "committed", "failed"] = "pending"


_REQUEST: contextvars.ContextVar[RequestChanges | None] = contextvars.ContextVar("request_changes", default=None)


def request_changes() -> tuple[RequestChanges, contextvars.Token[RequestChanges | None]]:
    """Attribute the store changes made from here (in this task) to one request."""
    changes = RequestChanges()
    return changes, _REQUEST.set(changes)


def end_request(token: contextvars.Token[RequestChanges | None]) -> None:
    _REQUEST.reset(token)


def _account_of(key: tuple[str, ...], value: Any) -> str | None:
    if key[0] == "media":
        return key[1]
    return getattr(value, "account_id", None)


class Database:
    """One SQLite file holding messages, callbacks (with their attempts) and media."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            # isolation_level=None: transactions are opened explicitly, so that one API
            # request (a message and all its planned callbacks) is one commit.
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=1.0)
            # One emulator per file: two writing the same state would each miss the other's
            # changes. The exclusive lock is taken now, so a second one fails at start-up.
            # Taken in the normal locking mode, then kept by the exclusive one: in the exclusive
            # mode a start that waits for the lock keeps the shared lock it read with, and two
            # emulators starting together each waited for the other and both gave up.
            self._conn.execute("BEGIN EXCLUSIVE")
            self._conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._conn.execute("COMMIT")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise DatabaseError(f"{self.path}: schema version {row[0]}, this version reads {SCHEMA_VERSION}")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise DatabaseError(f"{self.path} is in use by another running emulator") from None
            raise DatabaseError(f"{self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: {exc}") from None
        self._commit_scheduled = False
        self._clock: Clock | None = None
        self._store: Store | None = None
        self._resume: Callable[[Callback, float], None] = lambda callback, due: None
        self._forget: Callable[[list[Callback]], None] = lambda callbacks: None
        self._saved_clock: float | None = None
        self._group: asyncio.Future[None] | None = None
        # What changed since the last commit, written by the next one: records by key (the
        # live object, dumped when written), and resets in order. Nothing is written before
        # the commit, so a failed one leaves nothing half-done and nothing to clean up.
        self._dirty: dict[tuple[str, ...], Any] = {}
        self._resets: list[str | None] = []
        self._requests: list[RequestChanges] = []  # the requests whose changes are in _dirty
        self._quiet = False  # while undoing: changes made then are the file's own state
        self.failing: str | None = None  # why writing fails, while it does (None: it works)
        # Rows of messages forgotten by retention, deleted FORGET_BATCH messages at a time
        # (README.md, "Retention"): old rows lie side by side, so a batch rewrites a few pages
        # where one message at a time would rewrite a page or two per message.
        self._forgotten: list[tuple[str, list[str]]] = []
        self.forget_batch = FORGET_BATCH
        self._forgotten_written = 0  # how many of them the commit under way deletes
        self._flush_forgotten = False  # at close: whatever the batch holds

    # -- writing (the store's observer) ---------------------------------------------------

    def _touch(self, key: tuple[str, ...], value: Any, *, of_request: bool = True) -> None:
        if self._quiet:
            return
        self._dirty[key] = value
        changes = _REQUEST.get() if of_request else None
        if changes is not None and changes.state != "failed":
            if changes.state == "committed" or not changes.keys:
                # Its first change, or one made after its earlier ones were committed.
                changes.state = "pending"
                self._requests.append(changes)
            changes.keys.add(key)
        if not self._commit_scheduled:
            # Scheduler-driven changes have no request to commit them: commit once the
            # current loop iteration is over, coalescing every change it made.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._commit_scheduled = True
            loop.call_soon(self._scheduled_commit, context=contextvars.Context())

    def _scheduled_commit(self) -> None:
        self._commit_scheduled = False
        try:
            self.commit()
        except DatabaseError:
            pass  # logged, and tried again (see commit)

    def message_saved(self, message: Message) -> None:
        self._touch(("messages", message.id), message)

    def callback_saved(self, callback: Callback) -> None:
        self._touch(("callbacks", callback.id), callback)

    def media_saved(self, item: MediaItem) -> None:
        self._touch(("media", item.account_id, item.media_id), item)

    def media_deleted(self, account_id: str, media_id: str) -> None:
        self._touch(("media", account_id, media_id), None)

    def message_forgotten(self, message: Message, callbacks: list[Callback]) -> None:
        # Retention (emulator.state.retention): the rows go with the commit that follows the
        # batch's last message, so the file stops growing; SQLite reuses the freed pages
        # (README.md, "Retention"). Not part of the request that happened to trigger it. Until
        # then the rows hold the message's last state: after a kill they load back, finished,
        # and the policy forgets them again at start-up.
        if self._quiet:
            return
        self._forgotten.append((message.id, [callback.id for callback in callbacks]))
        if len(self._forgotten) >= self.forget_batch:
            self._touch(("forget", ""), None, of_request=False)  # a commit soon, to write them

    def reset(self, account_id: str | None) -> None:
        if self._quiet:
            return
        # What the reset forgets need not be written first.
        for key, value in list(self._dirty.items()):
            if account_id is None or _account_of(key, value) == account_id:
                del self._dirty[key]
        self._resets.append(account_id)
        self._touch(("reset", account_id or ""), account_id)

    def _write(self) -> None:
        conn = self._conn
        for account_id in self._resets:
            for table in ("messages", "callbacks", "media"):
                if account_id is None:
                    conn.execute(f"DELETE FROM {table}")
                else:
                    conn.execute(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))
        for key, value in self._dirty.items():
            kind = key[0]
            if value is None and kind in ("messages", "callbacks"):
                conn.execute(f"DELETE FROM {kind} WHERE id = ?", key[1:])  # forgotten meanwhile (_undo)
            elif kind == "forget":
                pass  # below
            elif kind == "messages":
                conn.execute(
                    # An upsert, not REPLACE: the row keeps its rowid, so records load back in
                    # the order they were created.
                    "INSERT INTO messages VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    (value.id, value.account_id, _dump(value)),
                )
            elif kind == "callbacks":
                conn.execute(
                    "INSERT INTO callbacks VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    (value.id, value.account_id, value.message_id, _dump(value)),
                )
            elif kind == "media" and value is None:
                conn.execute("DELETE FROM media WHERE account_id = ? AND media_id = ?", key[1:])
            elif kind == "media":
                conn.execute(
                    "INSERT INTO media VALUES (?, ?, ?, ?) ON CONFLICT (account_id, media_id)"
                    " DO UPDATE SET data = excluded.data, content = excluded.content",
                    (value.account_id, value.media_id, _dump(value, frozenset({"content"})), value.content),
                )
            elif kind == "meta":
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key[1], value))
        if len(self._forgotten) >= self.forget_batch or (self._forgotten and self._flush_forgotten):
            conn.executemany("DELETE FROM messages WHERE id = ?", [(mid,) for mid, _ in self._forgotten])
            conn.executemany("DELETE FROM callbacks WHERE id = ?", [(cid,) for _, cids in self._forgotten for cid in cids])
            self._forgotten_written = len(self._forgotten)

    def commit(self) -> None:
        """Write everything changed since the last commit, in one transaction.

        On failure the transaction is rolled back, the requests whose changes it carried are
        told (their clients get a 500) and what they created is forgotten; the rest is kept
        for the next commit. Raises :class:`DatabaseError`.
        """
        if self._clock is not None and keeps_own_time(self._clock):
            # A manual or scaled clock's time is state too: after a restart it continues from here.
            now = self._clock.now()
            if now != self._saved_clock:
                self._dirty[("meta", "clock")] = repr(now)
        requests, self._requests = self._requests, []
        if not self._dirty and not self._resets and not (self._flush_forgotten and self._forgotten):
            for changes in requests:
                changes.state = "committed"
            return
        self._forgotten_written = 0
        try:
            self._conn.execute("BEGIN")
            self._write()
            self._conn.execute("COMMIT")
        except Exception as exc:  # sqlite3.Error (a full disk), or a record that cannot be written
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite may already have rolled it back (SQLITE_FULL, SQLITE_IOERR)
            self._failed(requests, str(exc))
            raise DatabaseError(f"{self.path}: cannot write: {exc}") from None
        clock = self._dirty.get(("meta", "clock"))
        if clock is not None:
            self._saved_clock = float(clock)
        self._dirty.clear()
        self._resets.clear()
        del self._forgotten[: self._forgotten_written]
        for changes in requests:
            changes.state = "committed"
        if self.failing is not None:
            log.warning("writing to %s again", self.path)
            self.failing = None

    def _failed(self, requests: list[RequestChanges], reason: str) -> None:
        if self.failing is None:
            log.error("cannot write to %s: %s; changes are refused (500) until it can be written again", self.path, reason)
        self.failing = reason
        undo: set[tuple[str, ...]] = set()
        for changes in requests:
            changes.state = "failed"
            undo |= changes.keys
        self._quiet = True
        try:
            self._undo(undo)
        finally:
            self._quiet = False
        if self._dirty or self._resets:
            # The scheduler's changes (attempts made, statuses reached) are kept: try again.
            try:
                asyncio.get_running_loop().call_later(1.0, self._scheduled_commit, context=contextvars.Context())
                self._commit_scheduled = True
            except RuntimeError:
                pass

    def _on_disk(self, key: tuple[str, ...]) -> str | None:
        kind = key[0]
        if kind == "media":
            row = self._conn.execute("SELECT data FROM media WHERE account_id = ? AND media_id = ?", key[1:]).fetchone()
        else:
            row = self._conn.execute(f"SELECT data FROM {kind} WHERE id = ?", key[1:]).fetchone()
        return row[0] if row else None

    def _undo(self, keys: set[tuple[str, ...]]) -> None:
        """Forget what the failed requests created, and put back what they reset or replaced,
        so that nothing their clients were told failed is left in memory."""
        store = self._store
        if store is None:
            return
        resets = [key for key in keys if key[0] == "reset"]
        for key in keys:
            self._dirty.pop(key, None)
        for key in resets:
            account_id = key[1] or None
            self._resets = [other for other in self._resets if other != account_id]
            self._reload(account_id)
        dropped = []
        for key in sorted(keys - set(resets), key=lambda k: k[0] != "callbacks"):  # callbacks first
            kind = key[0]
            if kind == "media":
                account_id, media_id = key[1], key[2]
                row = self._conn.execute(
                    "SELECT data, content FROM media WHERE account_id = ? AND media_id = ?", (account_id, media_id)
                ).fetchone()
                if row is None:
                    store.delete_media(account_id, media_id)
                else:
                    store.put_media(media_from_row(*row))
            elif self._on_disk(key) is None:
                # Created by a request that failed: it never happened.
                if kind == "callbacks":
                    callback = store.get_callback(key[1])
                    if callback is not None:
                        dropped.append(callback)
                    store.discard_callback(key[1])
                elif kind == "messages":
                    store.discard_message(key[1])
            else:
                # Already stored and changed since (an attempt made during a clock advance,
                # a status reached): that did happen; it is written by the next commit.
                record = store.get_callback(key[1]) if kind == "callbacks" else store.get_message(key[1])
                # None: forgotten since (retention, a reset): its row goes too.
                self._dirty[key] = record
        self._forget(dropped)

    def _reload(self, account_id: str | None) -> None:
        """Put an account's records back from the file (undoing a reset that failed)."""
        store = self._store
        assert store is not None
        where, args = ("", ()) if account_id is None else (" WHERE account_id = ?", (account_id,))
        for (data,) in self._conn.execute(f"SELECT data FROM messages{where} ORDER BY rowid", args):
            message = message_from_json(data)
            if store.get_message(message.id) is None:
                store.add_message(message)
        for (data,) in self._conn.execute(f"SELECT data FROM callbacks{where} ORDER BY rowid", args):
            callback = callback_from_json(data)
            if store.get_callback(callback.id) is None:
                store.add_callback(callback)
                if callback.state == "pending":
                    due = callback.next_attempt_at if callback.next_attempt_at is not None else callback.planned_at
                    self._resume(callback, due)
        for data, content in self._conn.execute(f"SELECT data, content FROM media{where} ORDER BY rowid", args):
            item = media_from_row(data, content)
            if store.get_media(item.account_id, item.media_id) is None:
                store.put_media(item)

    def committed(self) -> asyncio.Future[None]:
        """A future that resolves once everything written so far is committed (or failed to be).

        Group commit: every request that finishes in the same event-loop iteration waits for
        one shared commit, so concurrent sends cost one commit, not one each.
        """
        if self._group is None:
            loop = asyncio.get_running_loop()
            self._group = loop.create_future()
            loop.call_soon(self._group_commit, context=contextvars.Context())
        return self._group

    def _group_commit(self) -> None:
        group, self._group = self._group, None
        try:
            self.commit()
        except DatabaseError:
            pass  # each request looks at its own RequestChanges
        except Exception:
            # Not a write that failed but a fault of the emulator's own: no request waiting
            # is told it succeeded (their changes are not marked committed).
            log.exception("commit failed")
        finally:
            if group is not None and not group.done():
                group.set_result(None)

    # -- reading --------------------------------------------------------------------------

    def saved_clock(self) -> float | None:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
            return float(row[0]) if row else None
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise DatabaseError(f"{self.path}: the saved clock cannot be read: {_problem(exc)}") from None

    def _rows(self, table: str, columns: str) -> Iterator[tuple[Any, ...]]:
        try:
            # fetchall: a file that is damaged part-way fails here, not half-way through loading.
            rows = self._conn.execute(f"SELECT rowid, {columns} FROM {table} ORDER BY rowid").fetchall()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: table {table} cannot be read: {_problem(exc)}") from None
        return iter(rows)

    def load_into(self, store: Store) -> list[Callback]:
        """Fill an empty store from the file; returns the callbacks still pending.

        Raises :class:`DatabaseError` naming the first row that cannot be read.
        """
        where = ""
        try:
            for rowid, data in self._rows("messages", "data"):
                where = f"messages row {rowid}"
                store.add_message(message_from_json(data))
            pending = []
            for rowid, data in self._rows("callbacks", "data"):
                where = f"callbacks row {rowid}"
                callback = callback_from_json(data)
                store.add_callback(callback)
                if callback.state == "pending":
                    pending.append(callback)
            for rowid, data, content in self._rows("media", "data, content"):
                where = f"media row {rowid}"
                store.put_media(media_from_row(data, content))
        except (ValueError, TypeError) as exc:  # JSON, ValidationError, a BLOB that is not bytes
            raise DatabaseError(f"{self.path}: {where} cannot be read: {_problem(exc)}") from None
        return pending

    # -- lifetime -------------------------------------------------------------------------

    def attach(
        self,
        store: Store,
        *,
        clock: Clock,
        resume: Callable[[Callback, float], None],
        forget: Callable[[list[Callback]], None] = lambda callbacks: None,
    ) -> int:
        """Restore ``store`` from the file, then mirror every later change into it.

        Each pending callback is handed to ``resume`` with its next attempt time, keeping the
        attempts already made, so the retry schedule continues where it stopped. ``clock``'s
        time is saved with every commit when it is its own (manual or scaled). ``forget``
        stops delivering callbacks whose creation failed to be written. Returns how many
        callbacks were pending.
        """
        pending = self.load_into(store)
        for callback in pending:
            due = callback.next_attempt_at if callback.next_attempt_at is not None else callback.planned_at
            resume(callback, due)
        # A seeded id sequence starts over after a restart; the service skips the ids already
        # taken, so the ids stay repeatable for the same history and never collide.
        store.observer = self
        self._clock = clock
        self._store = store
        self._resume = resume
        self._forget = forget
        return len(pending)

    def close(self) -> None:
        self._flush_forgotten = True  # the rows of every message forgotten so far
        try:
            self.commit()
        except DatabaseError as exc:
            # Still failing at shutdown (a full disk): what the scheduler changed since the
            # last commit is lost, as with kill -9; every answered request's changes are kept.
            log.error("%s; the last callback attempts are not saved", exc)
        finally:
            self._clock = None
            self._store = None
            self._conn.close()
