"""Durable state with --db: what was accepted survives a restart, and a kill -9."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from processes import EmulatorDidNotStart, EmulatorProcess
from support import ACCOUNT, AUTH, Receiver, advance, pin_era, send

from emulator.app import create_app
from emulator.config import Settings
from emulator.state.persistence import Database, DatabaseError
from emulator.state.store import MediaItem, Store

SMS = {"applicationId": "app-1", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}


async def start(db: Path, receiver: Receiver, **settings: Any) -> TestClient:
    settings.setdefault("clock", "manual")
    scenario = None if "scenario" in settings else pin_era(None)
    app = create_app(Settings(db=str(db), callback_url=receiver.url, **settings), scenario=scenario)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def callbacks(client: TestClient, **query: str) -> list[dict[str, Any]]:
    resp = await client.get("/_emulator/callbacks", params=query)
    assert resp.status == 200
    return (await resp.json())["callbacks"]


async def test_messages_and_callbacks_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    client = await start(db, receiver)
    resp = await send(client, {**SMS, "to": ["+15552221111", "+15552221112"], "tag": "t1"})
    assert resp.status == 202
    message_id = (await resp.json())["id"]
    before = await client.get(f"/_emulator/messages/{message_id}")
    before_body = await before.json()
    clock_before = (await (await client.get("/_emulator/clock")).json())
    await client.close()

    client = await start(db, receiver)
    try:
        after = await client.get(f"/_emulator/messages/{message_id}")
        assert after.status == 200
        assert await after.json() == before_body
        # The manual clock continues from where it stood, not from the wall clock.
        assert (await (await client.get("/_emulator/clock")).json()) == clock_before
        # The planned callbacks are still pending and fire when their time comes.
        assert len(await callbacks(client, state="pending")) == 4
        await advance(client, 5)
        events = await receiver.wait_for(4)
        await client.close()
        client = await start(db, receiver)  # the statuses the callbacks set are durable too
        assert sorted((e["type"], e["to"]) for e in events) == [
            ("message-delivered", "+15552221111"),
            ("message-delivered", "+15552221112"),
            ("message-sending", "+15552221111"),
            ("message-sending", "+15552221112"),
        ]
        assert {e["message"]["id"] for e in events} == {message_id}
        status = await (await client.get(f"/_emulator/messages/{message_id}")).json()
        assert [r["status"] for r in status["recipients"]] == ["DELIVERED", "DELIVERED"]
    finally:
        await client.close()

    # Delivered state is durable too: nothing fires again after another restart.
    client = await start(db, receiver)
    try:
        assert await callbacks(client, state="pending") == []
        assert len(await callbacks(client, state="delivered")) == 4
        await advance(client, 86400 * 2)
        assert len(receiver.requests) == 4
    finally:
        await client.close()


async def test_pending_callback_resumes_from_its_next_attempt(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    receiver.statuses = [500, 503]
    client = await start(db, receiver)
    assert (await send(client, SMS)).status == 202
    await advance(client, 1)  # first attempt: 500
    await advance(client, 60)  # retry at +1 min: 503
    await receiver.wait_for(2)
    [before] = await callbacks(client)
    assert [a["statusCode"] for a in before["attempts"]] == [500, 503]
    assert before["state"] == "pending"
    await client.close()

    client = await start(db, receiver)
    try:
        [after] = await callbacks(client)
        assert after["attempts"] == before["attempts"]
        assert after["nextAttemptAt"] == before["nextAttemptAt"]
        # Nothing is re-sent early: the next attempt is 5 min after the first one.
        await advance(client, 200)
        assert len(receiver.requests) == 2
        await advance(client, 40)
        await receiver.wait_for(3)
        [done] = await callbacks(client)
        assert done["state"] == "delivered"
        assert [a["statusCode"] for a in done["attempts"]] == [500, 503, 200]
    finally:
        await client.close()


async def test_realtime_callbacks_planned_before_a_restart_are_delivered_after_it(
    tmp_path: Path, receiver: Receiver
) -> None:
    from emulator.scenarios.format import parse_scenario

    db = tmp_path / "state.db"
    # Due an hour after the send: the first emulator surely stops before that, however slow
    # the machine; the second runs its realtime clock 36,000 times as fast (the hour is 0.1 s).
    scenario = parse_scenario({"defaults": {"sms": [{"event": "message-delivered", "after": 3600}]}})

    async def start_realtime(time_scale: float = 1.0) -> TestClient:
        settings = Settings(db=str(db), callback_url=receiver.url, clock="realtime", time_scale=time_scale)
        client = TestClient(TestServer(create_app(settings, scenario=scenario)))
        await client.start_server()
        return client

    client = await start_realtime()
    resp = await send(client, SMS)
    assert resp.status == 202
    message_id = (await resp.json())["id"]
    await client.close()  # stopped before the callback was due
    assert receiver.requests == []

    client = await start_realtime(time_scale=36000)
    try:
        [event] = await receiver.wait_for(1)
        assert event["message"]["id"] == message_id
        # The receiver answers before the emulator journals the attempt: long-poll for it.
        await callbacks(client, state="delivered", wait="30")
        [callback] = await callbacks(client)
        assert callback["state"] == "delivered" and len(callback["attempts"]) == 1
    finally:
        await client.close()


async def test_a_scaled_clock_carries_on_from_where_it_stopped(tmp_path: Path, receiver: Receiver) -> None:
    # At --time-scale 3600 virtual time runs an hour per real second, far ahead of the wall
    # clock; a restart must not send it back to the wall clock's time.
    db = tmp_path / "state.db"

    async def epoch(client: TestClient) -> float:
        return (await (await client.get("/_emulator/clock")).json())["epoch"]

    client = await start(db, receiver, clock="realtime", time_scale=3600)
    assert (await send(client, SMS)).status == 202
    before = await epoch(client)
    await client.close()
    assert before > time.time() + 1  # the ahead-of-the-wall-clock premise of this test

    client = await start(db, receiver, clock="realtime", time_scale=3600)
    try:
        assert await epoch(client) >= before
    finally:
        await client.close()

    client = await start(db, receiver, clock="realtime")  # unscaled: the wall clock again
    try:
        assert abs(await epoch(client) - time.time()) < 60
    finally:
        await client.close()


async def test_reset_of_one_account_is_durable(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    client = await start(db, receiver)
    assert (await send(client, SMS, account="1111111")).status == 202
    assert (await send(client, SMS, account="2222222")).status == 202
    assert (await client.post("/_emulator/reset", params={"accountId": "1111111"})).status < 300
    await client.close()

    client = await start(db, receiver)
    try:
        messages = (await (await client.get("/_emulator/messages")).json())["messages"]
        assert [m["accountId"] for m in messages] == ["2222222"]
        assert {c["accountId"] for c in await callbacks(client)} == {"2222222"}
    finally:
        await client.close()


def test_media_bytes_and_metadata_survive_reopening(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = Store()
    store.observer = db
    content = bytes(range(256)) * 10
    store.put_media(MediaItem(ACCOUNT, "dir/cat.png", content, "image/png", "no-cache", 1700000000.5))
    store.put_media(MediaItem(ACCOUNT, "gone.txt", b"x", "text/plain", None, 1700000001.0))
    store.put_media(MediaItem("other", "dir/cat.png", b"other", "image/png", None, 1700000002.0))
    assert store.delete_media(ACCOUNT, "gone.txt")
    db.close()

    reopened = Database(tmp_path / "state.db")
    restored = Store()
    reopened.load_into(restored)
    reopened.close()
    item = restored.get_media(ACCOUNT, "dir/cat.png")
    assert item == MediaItem(ACCOUNT, "dir/cat.png", content, "image/png", "no-cache", 1700000000.5)
    assert restored.get_media(ACCOUNT, "gone.txt") is None
    assert restored.get_media("other", "dir/cat.png").content == b"other"


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--db", str(bad)], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 2
    assert "--db" in result.stderr and "Traceback" not in result.stderr


def test_a_file_in_use_by_another_emulator_is_refused(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "emulator", "--port", "0", "--db", str(tmp_path / "state.db")],
            capture_output=True, text=True, timeout=20,
        )
    finally:
        db.close()
    assert result.returncode == 2
    assert "in use by another running emulator" in result.stderr and "Traceback" not in result.stderr


async def test_everything_acknowledged_survives_kill_9_mid_burst(tmp_path: Path, receiver: Receiver, start_cli: Any) -> None:
    db = tmp_path / "state.db"
    args = ("--clock", "manual", "--db", str(db), "--callback-url", receiver.url)
    emulator = await asyncio.to_thread(start_cli, *args)
    base = emulator.base_url
    accepted: list[str] = []
    killed = asyncio.Event()
    progress = asyncio.Event()  # 300 acknowledged, or every sender stopped
    senders: list[asyncio.Task[None]] = []

    async def sender(session: aiohttp.ClientSession, n: int) -> None:
        try:
            for i in range(10_000):
                if killed.is_set():
                    return
                body = {**SMS, "to": [f"+1555{n:03d}{i:04d}"]}
                try:
                    async with session.post(f"{base}/api/v2/users/{ACCOUNT}/messages", json=body, headers=AUTH) as resp:
                        if resp.status == 202:
                            accepted.append((await resp.json())["id"])
                            if len(accepted) >= 300:
                                progress.set()
                except aiohttp.ClientError:
                    return  # the server died under us: this one was never acknowledged
        finally:
            if all(t.done() or t is asyncio.current_task() for t in senders):
                progress.set()

    async with aiohttp.ClientSession() as session:
        senders.extend(asyncio.create_task(sender(session, n)) for n in range(16))
        await asyncio.wait_for(progress.wait(), 60)
        # Killed while requests are in flight: no shutdown, no final commit.
        await asyncio.to_thread(emulator.kill)
        killed.set()
        await asyncio.gather(*senders)
    assert len(accepted) >= 300

    emulator = await asyncio.to_thread(start_cli, *args)
    base = emulator.base_url
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/_emulator/messages") as resp:
            stored = {m["id"] for m in (await resp.json())["messages"]}
        async with session.get(f"{base}/_emulator/callbacks", params={"state": "pending"}) as resp:
            pending = {c["messageId"] for c in (await resp.json())["callbacks"]}
    missing = set(accepted) - stored
    assert not missing, f"{len(missing)} acknowledged messages lost"
    # Each stored message kept its planned callback (written in the same commit).
    assert stored <= pending
    # ... and the restarted emulator delivers them, one per message.
    async with aiohttp.ClientSession() as session, session.post(f"{base}/_emulator/clock/advance", json={"seconds": 5}) as resp:
        assert resp.status == 200
    events = await receiver.wait_for(len(stored), timeout=60)
    delivered = [e["message"]["id"] for e in events]
    assert sorted(delivered) == sorted(stored)
    assert await asyncio.to_thread(emulator.stop) == 0
    # The file is a consistent SQLite database after the kill.
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_default_is_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = create_app(Settings(clock="manual"))
    from emulator.app import DATABASE

    assert DATABASE not in app
    assert list(tmp_path.iterdir()) == []


async def test_seeded_ids_stay_repeatable_and_unique_across_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    from emulator.scenarios.format import parse_scenario

    scenario = parse_scenario({"seed": 7})

    async def run(db: Path, sends: int, restart_after: int | None) -> list[str]:
        ids = []
        client = await start_seeded(db, scenario)
        for i in range(sends):
            if i == restart_after:
                await client.close()
                client = await start_seeded(db, scenario)
            ids.append((await (await send(client, SMS)).json())["id"][13:])  # without the time part
        await client.close()
        return ids

    async def start_seeded(db: Path, scenario: Any) -> TestClient:
        app = create_app(Settings(db=str(db), callback_url=receiver.url, clock="manual"), scenario=scenario)
        client = TestClient(TestServer(app))
        await client.start_server()
        return client

    # The same history gives the same ids, restart included, and none is handed out twice.
    first = await run(tmp_path / "a.db", 6, 3)
    second = await run(tmp_path / "b.db", 6, 3)
    assert first == second
    assert len(set(first)) == 6


def test_records_load_back_in_the_order_they_were_created(tmp_path: Path) -> None:
    from emulator.state.models import Message

    def message(mid: str) -> Message:
        return Message(mid, ACCOUNT, "app", "out", "+15554443333", ("+15552221111",), "+15554443333", 1.0, 1)

    db = Database(tmp_path / "state.db")
    store = Store()
    store.observer = db
    first, second = message("m-1"), message("m-2")
    store.add_message(first)
    store.add_message(second)
    first.text = "changed after the second one was created"
    store.message_changed(first)
    db.close()

    restored = Store()
    reopened = Database(tmp_path / "state.db")
    reopened.load_into(restored)
    reopened.close()
    assert [m.id for m in restored.messages()] == ["m-1", "m-2"]
    assert restored.get_message("m-1").text == "changed after the second one was created"


def test_callbacks_written_with_their_whole_event_still_load() -> None:
    # Files from before events were built from their message held the event's JSON instead
    # of its description, error code and carrier.
    from emulator.state.persistence import callback_from_json, message_from_json

    old = {
        "id": "cb-1", "account_id": ACCOUNT, "message_id": "m-1", "application_id": "app", "type": "message-failed",
        "recipient": "+15552221111", "url": None, "planned_at": 1.0, "state": "pending",
        "event": {"type": "message-failed", "description": "Unknown destination", "errorCode": 4720,
                  "carrierName": "Verizon", "message": {"id": "m-1"}},
    }
    callback = callback_from_json(json.dumps(old))
    assert (callback.description, callback.error_code, callback.carrier_name) == ("Unknown destination", 4720, "Verizon")
    message = message_from_json(json.dumps({
        "id": "m-1", "account_id": ACCOUNT, "application_id": "app", "direction": "out", "from_": "+15554443333",
        "to": ["+15552221111"], "owner": "+15554443333", "time": 1.0, "segment_count": 1, "media": ["a.png"],
    }))
    assert message.to == ("+15552221111",) and message.media == ("a.png",)


def _damaged(tmp_path: Path, sql: str) -> Path:
    """A --db file written by this version, then changed behind its back."""
    path = tmp_path / "state.db"
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.executescript(sql)
    conn.commit()
    conn.close()
    return path


CORRUPT_ROWS = {
    "not JSON": ("INSERT INTO messages VALUES ('m1', 'a', '{not json')", r"messages row 1 cannot be read: Expecting"),
    "not an object": ("INSERT INTO callbacks VALUES ('c1', 'a', 'm1', '[1, 2]')", r"callbacks row 1 cannot be read: not a JSON object"),
    "a field of the wrong type": (
        "INSERT INTO messages VALUES ('m1', 'a', '{\"id\": 5}')", r"messages row 1 cannot be read: id: Input should be a valid string"
    ),
    "a field missing": (
        "INSERT INTO media VALUES ('a', 'x', '{\"media_id\": \"x\"}', x'00')", r"media row 1 cannot be read: account_id: Field required"
    ),
    "attempts not a list": (
        "INSERT INTO callbacks VALUES ('c1', 'a', 'm1', '{\"attempts\": 5}')", r"callbacks row 1 cannot be read: "
    ),
    "a table with other columns": (
        "DROP TABLE messages; CREATE TABLE messages (id TEXT PRIMARY KEY, stuff TEXT)",
        r"table messages cannot be read: no such column: data",
    ),
    "a view in place of a table": (
        "DROP TABLE media; CREATE VIEW media AS SELECT 1 AS account_id", r"table media cannot be read: no such column: data"
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT_ROWS))
def test_a_row_or_table_that_cannot_be_read_is_refused_by_name(tmp_path: Path, case: str) -> None:
    sql, problem = CORRUPT_ROWS[case]
    db = Database(_damaged(tmp_path, sql))
    try:
        with pytest.raises(DatabaseError, match=problem):
            db.load_into(Store())
    finally:
        db.close()


def test_a_saved_clock_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    db = Database(_damaged(tmp_path, "INSERT INTO meta VALUES ('clock', 'yesterday')"))
    try:
        with pytest.raises(DatabaseError, match="the saved clock cannot be read"):
            db.saved_clock()
    finally:
        db.close()


def test_a_damaged_page_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = Database(path)
    store = Store()
    store.observer = db
    for i in range(200):
        store.put_media(MediaItem(ACCOUNT, f"m{i}", bytes([i % 256]) * 2000, "image/png", None, 1.0))
    db.close()
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 4096] = b"\xff" * 4096  # pages in the middle overwritten
    path.write_bytes(bytes(raw))
    with pytest.raises(DatabaseError, match=r"state\.db: "):
        db = Database(path)
        try:
            db.load_into(Store())
        finally:
            db.close()


def test_the_cli_refuses_a_corrupt_row_with_one_line(tmp_path: Path) -> None:
    path = _damaged(tmp_path, "INSERT INTO messages VALUES ('m1', 'a', '{not json')")
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--db", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"bandwidth-emulator: cannot use --db {path}: messages row 1 cannot be read: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]


async def test_two_emulators_starting_together_on_one_file_one_serves_the_other_says_why(
    tmp_path: Path, start_cli: Any
) -> None:
    # The file was checked, closed, then opened again while starting: the second emulator
    # could pass the check and then fail with a traceback. It is opened once and held now.
    db = tmp_path / "state.db"
    started = await asyncio.gather(
        *(asyncio.to_thread(start_cli, "--db", str(db)) for _ in range(2)), return_exceptions=True
    )
    serving = [s for s in started if isinstance(s, EmulatorProcess)]
    refused = [s for s in started if isinstance(s, EmulatorDidNotStart)]
    assert len(serving) == 1 and len(refused) == 1, started
    assert "exited with status 2 before printing its URL" in str(refused[0])
    # Its whole standard error: this one line, no traceback.
    assert str(refused[0]).endswith(
        f"standard error:\nbandwidth-emulator: cannot use --db {db} is in use by another running emulator\n"
    ), str(refused[0])


def test_a_start_refused_for_a_file_in_use_held_no_lock_on_it(tmp_path: Path) -> None:
    # The race above, one step at a time: the file's holder is still starting (it has its
    # write lock, not yet the exclusive one) when a second start waits for the file and gives
    # up. That second start held a shared lock all along (and still holds it, its connection
    # kept by the exception), and the holder then could not finish: both gave up.
    db = tmp_path / "state.db"
    holder = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(DatabaseError, match="in use by another running emulator"):
            Database(db)
        holder.execute("COMMIT")  # 'database is locked' when the refused start kept a lock
    finally:
        holder.close()


def test_rows_are_written_as_before_and_records_load_back_compact(tmp_path: Path) -> None:
    # A callback's id is made from its message id and order, and a message's recipients are
    # a tuple-backed mapping (emulator/state/models.py); the rows keep their shape: the id
    # first, the recipients as an object by number. Random ids of older files are kept.
    from emulator.state.models import Callback, Message, Recipients, RecipientStatus
    from emulator.state.persistence import _dump, callback_from_json, message_from_json

    message = Message(
        "1700000000000abcdefghijklmnop", ACCOUNT, "app", "out", "+15554443333", ("+15552221111", "+15552222222"),
        "+15554443333", 1.0, 1,
        recipients=Recipients([RecipientStatus("+15552221111"), RecipientStatus("+15552222222", "DELIVERED")]),
    )
    row = json.loads(_dump(message))
    assert "callbacks" not in row
    assert row["recipients"] == {
        "+15552221111": {"to": "+15552221111", "status": "QUEUED", "error_code": None, "description": None,
                         "carrier_name": None, "updated_at": None},
        "+15552222222": {"to": "+15552222222", "status": "DELIVERED", "error_code": None, "description": None,
                         "carrier_name": None, "updated_at": None},
    }  # fmt: skip
    loaded = message_from_json(_dump(message))
    assert isinstance(loaded.recipients, Recipients) and loaded == message

    callback = Callback(ACCOUNT, message.id, "app", "message-delivered", "+15552221111", None, 2.0, order=1)
    row = json.loads(_dump(callback))
    assert list(row)[:3] == ["id", "account_id", "message_id"] and "other_id" not in row
    assert row["id"] == "cb-1700000000000abcdefghijklmnop-1"
    assert callback_from_json(_dump(callback)).id == callback.id
    assert callback_from_json(_dump(callback)).other_id is None

    # The seldom-set fields (one slot in memory, emulator/state/models.py) are stored as fields.
    rare = message.replace(tag="t", priority="high", expiration="2030-01-01T00:00:00Z", channel="RBM",
                           multichannel={"channelList": [{"channel": "RBM"}]})
    row = json.loads(_dump(rare))
    assert list(row) == list(json.loads(_dump(message)))
    assert (row["tag"], row["priority"], row["channel"], row["multichannel"]) == ("t", "high", "RBM", {"channelList": [{"channel": "RBM"}]})
    assert message_from_json(_dump(rare)) == rare and message_from_json(_dump(rare)).tag == "t"
    failed = Callback(ACCOUNT, message.id, "app", "message-failed", "+15552221111", None, 2.0, error_code=4720,
                      carrier_name="T", held_by="cb-x", channel="SMS")
    row = json.loads(_dump(failed))
    assert (row["error_code"], row["carrier_name"], row["held_by"], row["channel"]) == (4720, "T", "cb-x", "SMS")
    back = callback_from_json(_dump(failed))
    assert (back.error_code, back.carrier_name, back.held_by, back.channel, back.other_id) == (4720, "T", "cb-x", "SMS", None)

    row = json.loads(_dump(callback))
    row["id"] = "cb-x7k2q9"  # a random id, as ids were made before
    old = callback_from_json(json.dumps(row))
    assert old.id == "cb-x7k2q9" and json.loads(_dump(old))["id"] == "cb-x7k2q9"
    del row["id"]
    with pytest.raises(ValueError, match="id"):
        callback_from_json(json.dumps(row))
