"""Durable state for ``--db PATH``: the store's records written through to SQLite.

The in-memory :class:`~emulator.state.store.Store` stays the source of truth while running; this
module is an observer that mirrors every change into one SQLite file and, at start-up,
loads it back. What a client was told (a 202, a media PUT) is committed before the answer
leaves: the app's commit middleware waits for :meth:`Database.committed` after every request
(requests finishing together share one commit).
Changes made by the scheduler (callback attempts, status changes) are committed at the end
of the event-loop iteration that made them, so a ``kill -9`` may forget at most the last
attempt of a callback, which is then delivered again: at least once, as Bandwidth does.

WAL with ``synchronous=NORMAL``: a commit survives the process being killed (the data is in
the WAL file, written before the commit returns) but not necessarily a power cut, which is
the right trade for a test tool.

Records are stored as JSON of their dataclass fields, so a field added to a model later is
simply absent (its default) in older files; media bytes are kept in the same file as BLOBs
(at most a few MB each) so that a message and its media are restored together.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from emulator.delivery.clock import Clock, keeps_own_time
from emulator.state.models import Callback, Message
from emulator.state.store import MediaItem, Store

log = logging.getLogger("emulator.state.persistence")

SCHEMA_VERSION = 1

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


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


_MESSAGE_FIELDS = _fields(Message)
_CALLBACK_FIELDS = _fields(Callback)
_MEDIA_FIELDS = _fields(MediaItem) - {"content"}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _as_dict(obj: Any) -> dict[str, Any]:
    # json calls this for every dataclass it meets (a Message's RecipientStatus, a Callback's
    # Attempts); unlike dataclasses.asdict it copies nothing, which matters on the accept path.
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"cannot store a {cls.__name__}")
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return {name: getattr(obj, name) for name in names}


def _dump(obj: Any, skip: frozenset[str] = frozenset()) -> str:
    data = _as_dict(obj)
    for name in skip:
        data.pop(name, None)
    return json.dumps(data, separators=(",", ":"), default=_as_dict)


def _known(data: dict[str, Any], names: set[str]) -> dict[str, Any]:
    # Tolerate files written by another version: unknown keys are dropped, missing ones default.
    return {k: v for k, v in data.items() if k in names}


# Rows are checked against the models as they load: a row that is not what this version
# wrote (edited by hand, cut short, from another program) is refused at start-up with a line
# naming it (README.md, "Durable state"), instead of failing later requests one by one.
_MESSAGE = TypeAdapter(Message)
_CALLBACK = TypeAdapter(Callback)
_MEDIA_ITEM = TypeAdapter(MediaItem)


def _object(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def message_from_json(text: str) -> Message:
    return _MESSAGE.validate_python(_known(_object(text), _MESSAGE_FIELDS))


def callback_from_json(text: str) -> Callback:
    raw = _object(text)
    data = _known(raw, _CALLBACK_FIELDS)
    event = raw.get("event")
    if isinstance(event, dict) and "description" not in data:
        # Older files kept the whole event; what it said besides the message is all we need.
        data["description"] = event.get("description", "")
        data["error_code"] = event.get("errorCode")
        data["carrier_name"] = event.get("carrierName")
    return _CALLBACK.validate_python(data)


def media_from_row(data: str, content: bytes) -> MediaItem:
    return _MEDIA_ITEM.validate_python({**_known(_object(data), _MEDIA_FIELDS), "content": bytes(content)})


def _problem(exc: Exception) -> str:
    """One line saying what is wrong with a row."""
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else error["msg"]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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
            self._conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._conn.execute("BEGIN IMMEDIATE")
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
        self._in_transaction = False
        self._commit_scheduled = False
        self._clock: Clock | None = None
        self._saved_clock: float | None = None
        self._group: asyncio.Future[None] | None = None

    # -- writing (the store's observer) ---------------------------------------------------

    def _begin(self) -> None:
        if not self._in_transaction:
            self._conn.execute("BEGIN")
            self._in_transaction = True
        if not self._commit_scheduled:
            # Scheduler-driven changes have no request to commit them: commit once the
            # current loop iteration is over, coalescing every change it made.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._commit_scheduled = True
            loop.call_soon(self._scheduled_commit)

    def _scheduled_commit(self) -> None:
        self._commit_scheduled = False
        self.commit()

    def message_saved(self, message: Message) -> None:
        self._begin()
        self._conn.execute(
            # An upsert, not REPLACE: the row keeps its rowid, so records load back in the
            # order they were created.
            "INSERT INTO messages VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            (message.id, message.account_id, _dump(message)),
        )

    def callback_saved(self, callback: Callback) -> None:
        self._begin()
        self._conn.execute(
            "INSERT INTO callbacks VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            (callback.id, callback.account_id, callback.message_id, _dump(callback)),
        )

    def media_saved(self, item: MediaItem) -> None:
        self._begin()
        self._conn.execute(
            "INSERT INTO media VALUES (?, ?, ?, ?) ON CONFLICT (account_id, media_id)"
            " DO UPDATE SET data = excluded.data, content = excluded.content",
            (item.account_id, item.media_id, _dump(item, frozenset({"content"})), item.content),
        )

    def media_deleted(self, account_id: str, media_id: str) -> None:
        self._begin()
        self._conn.execute("DELETE FROM media WHERE account_id = ? AND media_id = ?", (account_id, media_id))

    def reset(self, account_id: str | None) -> None:
        self._begin()
        for table in ("messages", "callbacks", "media"):
            if account_id is None:
                self._conn.execute(f"DELETE FROM {table}")
            else:
                self._conn.execute(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))

    def commit(self) -> None:
        if self._clock is not None and keeps_own_time(self._clock):
            # A manual or scaled clock's time is state too: after a restart it continues from here.
            now = self._clock.now()
            if now != self._saved_clock:
                self._begin_quiet()
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('clock', ?)", (repr(now),))
                self._saved_clock = now
        if self._in_transaction:
            self._conn.execute("COMMIT")
            self._in_transaction = False

    def committed(self) -> asyncio.Future[None]:
        """A future that resolves once everything written so far is committed.

        Group commit: every request that finishes in the same event-loop iteration waits for
        one shared commit, so concurrent sends cost one commit, not one each.
        """
        if self._group is None:
            loop = asyncio.get_running_loop()
            self._group = loop.create_future()
            loop.call_soon(self._group_commit)
        return self._group

    def _group_commit(self) -> None:
        group, self._group = self._group, None
        try:
            self.commit()
        except Exception as exc:
            if group is not None and not group.done():
                group.set_exception(exc)
            return
        if group is not None and not group.done():
            group.set_result(None)

    def _begin_quiet(self) -> None:
        if not self._in_transaction:
            self._conn.execute("BEGIN")
            self._in_transaction = True

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

    def attach(self, store: Store, *, clock: Clock, resume: Callable[[Callback, float], None]) -> int:
        """Restore ``store`` from the file, then mirror every later change into it.

        Each pending callback is handed to ``resume`` with its next attempt time, keeping the
        attempts already made, so the retry schedule continues where it stopped. ``clock``'s
        time is saved with every commit when it is its own (manual or scaled). Returns how
        many callbacks were pending.
        """
        pending = self.load_into(store)
        for callback in pending:
            due = callback.next_attempt_at if callback.next_attempt_at is not None else callback.planned_at
            resume(callback, due)
        # A seeded id sequence starts over after a restart; the service skips the ids already
        # taken, so the ids stay repeatable for the same history and never collide.
        store.observer = self
        self._clock = clock
        return len(pending)

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._clock = None
            self._conn.close()
