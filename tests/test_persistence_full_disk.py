"""--db on a full disk: a failed commit is rolled back whole, reads go on, writing resumes
by itself once there is room, and shutdown is clean.

The disk is "full" through SQLite's own limit on the file's size (PRAGMA max_page_count):
a write that needs one more page fails with SQLITE_FULL exactly as on a full disk, with no
privileges and no real disk to fill.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from support import ACCOUNT, AUTH, Receiver, advance, send

from emulator.app import DATABASE, create_app
from emulator.config import Settings
from emulator.state.persistence import Database

SMS = {"applicationId": "app-1", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}


async def start(db: Path, receiver: Receiver) -> TestClient:
    client = TestClient(TestServer(create_app(Settings(db=str(db), callback_url=receiver.url, clock="manual"))))
    await client.start_server()
    return client


def fill(database: Database) -> None:
    """No page more: the file is as large as it may get."""
    conn = database._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


def make_room(database: Database) -> None:
    database._conn.execute("PRAGMA max_page_count = 1073741823")


async def sends_until_refused(client: TestClient, limit: int = 400) -> tuple[list[str], list[str]]:
    """Send (one recipient each) until one is refused; returns (accepted ids, refused recipients)."""
    accepted: list[str] = []
    for i in range(limit):
        to = f"+1555300{i:04d}"
        resp = await send(client, {**SMS, "to": [to], "text": "x" * 400})
        if resp.status == 202:
            accepted.append((await resp.json())["id"])
            continue
        assert resp.status == 500, await resp.text()
        body = await resp.json()
        assert body["type"] and body["description"]  # Bandwidth's error shape
        return accepted, [to]
    raise AssertionError(f"no send was refused in {limit}")


def stored_recipients(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT json_extract(data, '$.to[0]') FROM messages")}
    finally:
        conn.close()


async def listed(client: TestClient) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params={"messageDirection": "OUTBOUND"}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["messages"]


async def test_a_send_refused_for_a_full_disk_leaves_nothing_and_writing_resumes(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    client = await start(db, receiver)
    database = client.app[DATABASE]
    try:
        fill(database)
        accepted, refused = await sends_until_refused(client)
        # Reads keep working while the disk is full.
        for path in ("/_emulator/health", "/_emulator/messages", "/_emulator/callbacks", "/"):
            resp = await client.get(path)
            assert resp.status == 200, (path, await resp.text())
        listed_to = {m["destinationTn"] for m in await listed(client)}
        assert not listed_to & set(refused), "a send answered 500 is listed"
        assert len(listed_to) == len(accepted)
        # The next send is refused too (still full), and nothing of it is kept either.
        resp = await send(client, {**SMS, "to": ["+15553999999"]})
        assert resp.status == 500
        refused.append("+15553999999")

        make_room(database)
        resp = await send(client, {**SMS, "to": ["+15554000000"]})
        assert resp.status == 202, await resp.text()  # recovered by itself
        accepted.append((await resp.json())["id"])

        # A day of virtual time: every accepted send is delivered, no refused one ever is.
        await advance(client, 86400)
        events = await receiver.wait_for(len(accepted))
        delivered_to = {e["to"] for e in events}
        assert not delivered_to & set(refused)
        assert {e["message"]["id"] for e in events} == set(accepted)
        resp = await client.get("/_emulator/callbacks")
        journal = (await resp.json())["callbacks"]
        assert not {c["recipient"] for c in journal} & set(refused)
        assert {c["messageId"] for c in journal} == set(accepted)
    finally:
        await client.close()  # the emulator's shutdown, with the disk writable again
    on_disk = stored_recipients(db)
    assert not on_disk & set(refused)
    assert len(on_disk) == len(accepted)

    # After a restart: exactly what was accepted.
    client = await start(db, receiver)
    try:
        assert {m["messageId"] for m in await listed(client)} == set(accepted)
    finally:
        await client.close()


async def test_shutdown_on_a_full_disk_is_clean_and_keeps_what_was_answered(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    client = await start(db, receiver)
    resp = await send(client, SMS)
    assert resp.status == 202
    kept = (await resp.json())["id"]
    fill(client.app[DATABASE])
    await sends_until_refused(client)
    # Callback attempts while full: they happen, and are kept in memory meanwhile.
    receiver.fail(100, 500)
    await advance(client, 5)
    resp = await client.get("/_emulator/health")
    assert resp.status == 200
    await client.close()  # must not raise: SIGTERM exits 0
    client = await start(db, receiver)
    try:
        resp = await client.get("/_emulator/messages")
        ids = [m["id"] for m in (await resp.json())["messages"]]
        assert kept in ids
    finally:
        await client.close()


async def test_a_reset_whose_commit_fails_forgets_nothing(tmp_path: Path, receiver: Receiver) -> None:
    # A reset only deletes, which a file at its page limit still allows: the failure is
    # injected into the commit instead (as SQLite reports a full disk).
    db = tmp_path / "state.db"
    client = await start(db, receiver)
    try:
        ids = []
        for to in ("+15552220001", "+15552220002"):
            resp = await send(client, {**SMS, "to": [to]})
            ids.append((await resp.json())["id"])
        database = client.app[DATABASE]
        write = database._write

        def full() -> None:
            write()
            raise sqlite3.OperationalError("database or disk is full")

        database._write = full  # type: ignore[method-assign]
        resp = await client.post("/_emulator/reset")
        assert resp.status == 500
        del database._write
        # Told it failed: everything is still there, and is delivered.
        assert {m["messageId"] for m in await listed(client)} == set(ids)
        await advance(client, 5)
        events = await receiver.wait_for(2)
        assert {e["message"]["id"] for e in events} == set(ids)
    finally:
        await client.close()
    client = await start(db, receiver)
    try:
        assert {m["messageId"] for m in await listed(client)} == set(ids)
    finally:
        await client.close()


async def test_a_media_upload_refused_for_a_full_disk_changes_nothing(tmp_path: Path, receiver: Receiver) -> None:
    client = await start(tmp_path / "state.db", receiver)
    try:
        url = f"/api/v2/users/{ACCOUNT}/media/cat.png"
        resp = await client.put(url, data=b"old", headers={**AUTH, "Content-Type": "image/png"})
        assert resp.status == 204, await resp.text()
        fill(client.app[DATABASE])
        big = b"x" * 200_000  # more than the pages the file has left
        resp = await client.put(url, data=big, headers={**AUTH, "Content-Type": "image/png"})
        assert resp.status == 500
        resp = await client.put(f"/api/v2/users/{ACCOUNT}/media/new.png", data=big, headers={**AUTH, "Content-Type": "image/png"})
        assert resp.status == 500
        # Told it failed: the old file is still served, the new one does not exist.
        resp = await client.get(url, headers=AUTH)
        assert resp.status == 200 and await resp.read() == b"old"
        resp = await client.get(f"/api/v2/users/{ACCOUNT}/media/new.png", headers=AUTH)
        assert resp.status == 404
    finally:
        await client.close()
