"""Retention (README.md, "Retention"): finished messages are forgotten with their callbacks,
oldest finished first, per account, by count or by virtual age; never a message with a
callback pending or a reply still to come; --db rows go too."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import ACCOUNT, AUTH, SUITE_ERA, Receiver, advance, pin_era, send

from emulator.app import DATABASE, create_app, retention_policy
from emulator.cli import OptionError, build_parser, settings_from_args
from emulator.config import Settings
from emulator.delivery.clock import ManualClock
from emulator.scenarios.format import ScenarioError, parse_scenario
from emulator.service import MessagingService
from emulator.state.models import InboundRequest, Message
from emulator.state.retention import REALTIME_DEFAULT_MESSAGES, Policy

SMS = {"applicationId": "app-1", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}
# Nothing listens there: every attempt is refused at once, and retried for 24 h.
REFUSING = "http://127.0.0.1:1/refused"


def service(policy: Policy, scenario: dict[str, Any] | None = None, callback_url: str | None = None) -> MessagingService:
    # Without a callback URL every callback is "skipped" when due: the message then finishes.
    return MessagingService(
        clock=ManualClock(), scenario=pin_era(scenario), callback_url=callback_url, retention=policy
    )


def ids(svc: MessagingService, account: str) -> list[str]:
    return [m.id for m in svc.store.messages(account)]


async def send_and_finish(svc: MessagingService, account: str = "1", seconds: float = 2.0) -> Message:
    message = svc.send(account, SMS)
    assert isinstance(message, Message)
    await svc.scheduler.advance(seconds)
    return message


# -- unit: the policy -------------------------------------------------------------------------


async def test_by_count_the_oldest_finished_go_first_and_each_account_keeps_its_own() -> None:
    svc = service(Policy(messages=3))
    sent = [await send_and_finish(svc, "1") for _ in range(5)]
    other = [await send_and_finish(svc, "2") for _ in range(2)]
    assert ids(svc, "1") == [m.id for m in sent[2:]]
    assert ids(svc, "2") == [m.id for m in other]
    # Their callbacks are gone with them, and the control API's lookups find nothing.
    assert svc.store.callbacks_for_message(sent[0].id) == []
    assert svc.store.get_callback(f"cb-{sent[0].id}-0") is None
    assert len(list(svc.store.callbacks("1"))) == 3
    assert svc.retention.summary() == {"messages": 3, "forSeconds": 0.0, "forgottenMessages": 2, "forgottenCallbacks": 2}


async def test_without_a_policy_everything_is_kept() -> None:
    svc = service(Policy())
    for _ in range(5):
        await send_and_finish(svc)
    assert len(ids(svc, "1")) == 5
    assert svc.retention.forgotten_messages == 0


async def test_a_message_whose_callback_is_still_retrying_through_24_hours_is_kept() -> None:
    svc = service(Policy(messages=1), callback_url=REFUSING)
    retrying = svc.send("1", SMS)
    assert isinstance(retrying, Message)
    svc.callback_url = None  # the next ones finish at once
    newer = [await send_and_finish(svc) for _ in range(3)]
    callback = svc.store.callbacks_for_message(retrying.id)[0]
    for _ in range(23):  # hour by hour through the retry window
        await svc.scheduler.advance(3600)
        assert svc.store.get_message(retrying.id) is not None
        assert callback.state == "pending"
    # Every newer message was finished, the retrying one held the account's one place.
    assert ids(svc, "1") == [retrying.id]
    assert all(svc.store.get_message(m.id) is None for m in newer)
    await svc.scheduler.advance(2 * 3600)
    assert callback.state == "exhausted"
    assert len(callback.attempts) > 5
    # Finished now, it stays while it is the only one, and goes when a newer one finishes.
    assert ids(svc, "1") == [retrying.id]
    latest = await send_and_finish(svc)
    assert ids(svc, "1") == [latest.id]


async def test_by_age_a_message_still_retrying_is_kept_and_goes_that_long_after_it_finished() -> None:
    svc = service(Policy(age=600), callback_url=REFUSING)
    retrying = svc.send("1", SMS)
    assert isinstance(retrying, Message)
    svc.callback_url = None
    for _ in range(24):
        await send_and_finish(svc, seconds=3600)  # a newer message each hour, forgotten 10 min after it finished
        assert svc.store.get_message(retrying.id) is not None
    [callback] = svc.store.callbacks_for_message(retrying.id)
    assert callback.state == "pending"
    await svc.scheduler.advance(2)  # the last attempt, 24 h after the first (at 1 s)
    assert callback.state == "exhausted"
    # That attempt was a change in the account: the newest, finished an hour ago, went.
    assert ids(svc, "1") == [retrying.id]
    await svc.scheduler.advance(600)
    latest = await send_and_finish(svc)
    assert ids(svc, "1") == [latest.id]


async def test_a_message_with_a_held_callback_is_kept() -> None:
    scenario = {
        "applications": [{"id": "app-1", "ordering": "hold"}],
        "defaults": {"sms": [{"event": "message-sending", "after": 0}, {"event": "message-delivered", "after": 1}]},
    }
    svc = service(Policy(messages=1), scenario, callback_url=REFUSING)
    held = svc.send("1", SMS)
    assert isinstance(held, Message)
    svc.callback_url = None
    await svc.scheduler.advance(5)
    sending, delivered = svc.store.callbacks_for_message(held.id)
    assert sending.state == "pending" and delivered.held_by == sending.id
    await send_and_finish(svc)
    await send_and_finish(svc)
    assert svc.store.get_message(held.id) is not None


async def test_by_age_a_message_is_forgotten_that_long_after_it_finished() -> None:
    svc = service(Policy(age=3600))
    first = await send_and_finish(svc)
    await svc.scheduler.advance(1800)
    second = await send_and_finish(svc)
    assert ids(svc, "1") == [first.id, second.id]
    await svc.scheduler.advance(1800)  # first finished an hour ago: it goes with the next change
    third = await send_and_finish(svc)
    assert ids(svc, "1") == [second.id, third.id]


async def test_count_and_age_together_whichever_comes_first() -> None:
    svc = service(Policy(messages=2, age=3600))
    _, b, c = [await send_and_finish(svc) for _ in range(3)]
    assert ids(svc, "1") == [b.id, c.id]
    await svc.scheduler.advance(3600)
    d = await send_and_finish(svc)
    assert ids(svc, "1") == [d.id]


async def test_a_message_is_kept_until_its_auto_reply_came() -> None:
    scenario = {"autoReplies": [{"match": {"to": "+15552221111"}, "reply": "pong", "after": "60s"}]}
    svc = service(Policy(messages=1), scenario)
    pinged = await send_and_finish(svc)  # its callback is done, its reply is 60 s away
    other = svc.send("1", {**SMS, "to": ["+15550001111"]})
    assert isinstance(other, Message)
    await svc.scheduler.advance(2)
    assert svc.store.get_message(pinged.id) is not None
    assert svc.store.get_message(other.id) is None
    await svc.scheduler.advance(60)
    # The reply came (an inbound message): the ping finished then, and is the oldest finished.
    remaining = list(svc.store.messages("1"))
    assert [m.direction for m in remaining] == ["in"] and remaining[0].text == "pong"


async def test_a_message_whose_auto_reply_is_called_off_can_be_forgotten() -> None:
    scenario = {"autoReplies": [{"match": {"to": "+15552221111"}, "reply": "pong", "after": "60s"}]}
    svc = service(Policy(messages=1), scenario)
    pinged = await send_and_finish(svc)
    svc.replace_scenario(pin_era({}))  # the reply will not come any more
    latest = await send_and_finish(svc)
    assert ids(svc, "1") == [latest.id]
    assert svc.store.get_message(pinged.id) is None


async def test_a_reset_empties_the_queue_of_its_account_only() -> None:
    svc = service(Policy(messages=1))
    await send_and_finish(svc, "1")
    kept = await send_and_finish(svc, "2")
    svc.reset("1")
    assert ids(svc, "1") == []
    newer = await send_and_finish(svc, "2")
    assert ids(svc, "2") == [newer.id]
    assert svc.store.get_message(kept.id) is None


async def test_once_retention_forgets_the_conversation_an_inbound_goes_where_an_unknown_number_would() -> None:
    # docs/control-api.md, 'Inbound messages': the conversation is the latest message held
    # that was sent from the number; once retention forgets it, there is none.
    svc = service(Policy(age=3600))
    first = await send_and_finish(svc, "777")
    inbound = InboundRequest(from_="+15552221111", to=["+15554443333"], text="hi")
    [joined] = svc.inbound(inbound)
    assert (joined.account_id, joined.application_id) == ("777", "app-1")
    await svc.scheduler.advance(3600)
    await send_and_finish(svc, "888", seconds=0)  # a change in another account: 777 is not looked at
    svc.retention.consider("777", joined.id)
    assert svc.store.get_message(first.id) is None
    [alone] = svc.inbound(inbound)
    assert (alone.account_id, alone.application_id) == ("888", "app-1")  # the other account's send
    svc.reset("888")
    [unknown] = svc.inbound(inbound)
    assert (unknown.account_id, unknown.application_id) == (svc.default_account, "emulator-application")


async def test_an_inbound_finds_its_conversation_without_reading_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service(Policy())
    for n in range(3):
        await send_and_finish(svc, str(n))

    def no_scan(account_id: str | None = None) -> Any:
        raise AssertionError("inbound read every stored message")

    monkeypatch.setattr(svc.store, "messages", no_scan)
    [message] = svc.inbound(InboundRequest(from_="+15552221111", to=["+15554443333"], text="hi"))
    assert message.account_id == "2"


async def test_the_scenario_overrides_the_command_line_and_a_new_one_applies_at_once() -> None:
    svc = service(Policy(messages=100), {"retention": {"messages": 2}})
    assert svc.retention.policy == Policy(messages=2)
    sent = [await send_and_finish(svc) for _ in range(3)]
    assert ids(svc, "1") == [m.id for m in sent[1:]]
    svc.replace_scenario(pin_era({"retention": {"messages": 1, "for": "2h"}}))
    assert svc.retention.policy == Policy(messages=1, age=7200)
    assert ids(svc, "1") == [sent[2].id]  # applied to what is held, not only to what comes next
    svc.replace_scenario(pin_era({"retention": {"for": "1h"}}))
    assert svc.retention.policy == Policy(messages=100, age=3600)  # messages: the command line's
    svc.replace_scenario(pin_era({}))
    assert svc.retention.policy == Policy(messages=100)


async def test_an_account_of_the_scenario_may_have_its_own_policy() -> None:
    scenario = {
        "retention": {"messages": 3},
        "accounts": [
            {"id": "load", "retention": {"messages": 1}},
            {"id": "ci", "retention": {"messages": 0}},
            {"id": "*", "retention": {"for": "1h"}},
        ],
    }
    svc = service(Policy(messages=100), scenario)
    assert svc.retention.policy_for("load") == Policy(messages=1)
    assert svc.retention.policy_for("ci") == Policy()
    assert svc.retention.policy_for("other") == Policy(messages=3, age=3600)
    for account in ("load", "ci", "other"):
        for _ in range(5):
            await send_and_finish(svc, account)
    assert [len(ids(svc, a)) for a in ("load", "ci", "other")] == [1, 5, 3]
    svc.replace_scenario(pin_era({"accounts": [{"id": "ci", "retention": {"messages": 2}}]}))
    assert [len(ids(svc, a)) for a in ("load", "ci", "other")] == [1, 2, 3]
    svc.replace_scenario(pin_era({}))
    assert svc.retention.policy_for("ci") == Policy(messages=100)


async def test_the_first_drop_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    svc = service(Policy(messages=1))
    with caplog.at_level(logging.INFO, logger="emulator.state.retention"):
        for _ in range(4):
            await send_and_finish(svc)
    lines = [r.getMessage() for r in caplog.records if r.name == "emulator.state.retention"]
    assert len(lines) == 1 and "retention: forgetting finished messages of account 1" in lines[0]


# -- the options ------------------------------------------------------------------------------


def settings(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    return settings_from_args(build_parser().parse_args(argv), env or {})


def test_default_keeps_everything_on_the_manual_clock_and_bounds_the_realtime_one() -> None:
    assert retention_policy(settings(["--clock", "manual"])) == Policy()
    assert retention_policy(settings([])) == Policy(messages=REALTIME_DEFAULT_MESSAGES)
    assert retention_policy(settings(["--retain-messages", "0"])) == Policy()
    assert retention_policy(settings(["--clock", "manual", "--retain-messages", "500"])) == Policy(messages=500)


def test_options_and_environment() -> None:
    assert retention_policy(settings(["--retain-messages", "10", "--retain-for", "24h"])) == Policy(10, 86400)
    env = {"BWE_RETAIN_MESSAGES": "7", "BWE_RETAIN_FOR": "90m", "BWE_CLOCK": "manual"}
    assert retention_policy(settings([], env)) == Policy(7, 5400)
    assert settings(["--retain-for", "30"]).retain_for == 30.0


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("BWE_RETAIN_MESSAGES", "lots", "'lots' is not a whole number"),
        ("BWE_RETAIN_MESSAGES", "-1", "must be 0 or more"),
        ("BWE_RETAIN_FOR", "a day", "is not a duration"),
        ("BWE_RETAIN_FOR", "-5", "is not a duration"),
    ],
)
def test_an_invalid_environment_value_is_refused_naming_the_variable(variable: str, value: str, said: str) -> None:
    with pytest.raises(OptionError) as caught:
        settings([], {variable: value})
    assert variable in str(caught.value) and said in str(caught.value)


def test_an_invalid_option_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        settings(["--retain-messages", "x"])
    assert "--retain-messages: 'x' is not a whole number" in capsys.readouterr().err


def test_the_scenario_field_is_checked() -> None:
    assert parse_scenario({"retention": {"messages": 5, "for": "1d"}}).retention is not None
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"retention": {"messages": -1}})
    assert "retention.messages" in str(caught.value)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"retention": {"for": "soon"}})
    assert "retention.for" in str(caught.value)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"retention": {"count": 5}})
    assert "retention.count" in str(caught.value)


# -- HTTP and --db ----------------------------------------------------------------------------


async def test_forgotten_messages_answer_404_and_health_counts_them(make_client: Any) -> None:
    client = await make_client(retain_messages=1, callback_url=None)
    first = (await (await send(client, SMS)).json())["id"]
    await advance(client, 2)
    second = (await (await send(client, SMS)).json())["id"]
    await advance(client, 2)
    assert (await client.get(f"/_emulator/messages/{first}")).status == 404
    assert (await client.get(f"/_emulator/messages/{second}")).status == 200
    assert (await client.get(f"/_emulator/callbacks/cb-{first}-0")).status in (404, 405)
    journal = await (await client.get("/_emulator/callbacks")).json()
    assert [c["messageId"] for c in journal["callbacks"]] == [second]
    health = await (await client.get("/_emulator/health")).json()
    assert health["retention"] == {"messages": 1, "forSeconds": 0.0, "forgottenMessages": 1, "forgottenCallbacks": 1}


def rows(db: Path | TestClient) -> tuple[int, int]:
    """Rows in the file; of a running emulator's, through its connection (it holds the lock)."""
    conn = db.app[DATABASE]._conn if isinstance(db, TestClient) else sqlite3.connect(db)
    try:
        return (
            conn.execute("SELECT count(*) FROM messages").fetchone()[0],
            conn.execute("SELECT count(*) FROM callbacks").fetchone()[0],
        )
    finally:
        if not isinstance(db, TestClient):
            conn.close()


async def start_db(db: Path, receiver: Receiver, **settings: Any) -> TestClient:
    app = create_app(Settings(db=str(db), callback_url=receiver.url, clock="manual", **settings), scenario=pin_era(None))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_with_db_forgotten_rows_are_deleted_and_the_file_stops_growing(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    client = await start_db(db, receiver, retain_messages=5)
    database = client.app[DATABASE]
    database.forget_batch = 4  # rows are deleted 4 messages at a time (256 by default)
    try:
        for _ in range(12):
            assert (await send(client, SMS)).status == 202
            await advance(client, 2)
        # 7 forgotten: one batch of 4 deleted, 3 waiting for the next batch.
        assert rows(client) == (8, 8)
        pages = database._conn.execute("PRAGMA page_count").fetchone()[0]
        for _ in range(40):
            await send(client, SMS)
            await advance(client, 2)
            assert 5 <= rows(client)[0] <= 5 + 3
        # Freed pages are reused: forty more messages take no more room (the WAL file beside
        # it is bounded by SQLite's checkpoints, every 1000 pages).
        assert database._conn.execute("PRAGMA page_count").fetchone()[0] <= pages
        kept = [m["id"] for m in (await (await client.get("/_emulator/messages")).json())["messages"]]
    finally:
        await client.close()
    # Stopping deletes the rows of the batch under way: the file holds what memory held.
    with sqlite3.connect(db) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT id FROM messages")) == sorted(kept)
        assert conn.execute("SELECT count(*) FROM callbacks").fetchone()[0] == 5


async def test_with_db_rows_not_yet_deleted_come_back_finished_and_go_again(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    client = await start_db(db, receiver, retain_messages=2)
    try:
        for _ in range(5):
            await send(client, SMS)
            await advance(client, 2)
        kept = [m["id"] for m in (await (await client.get("/_emulator/messages")).json())["messages"]]
        assert rows(client) == (5, 5)  # 3 forgotten, their batch not yet full
        # As after a kill: the file is copied as it is, without the rows of the batch deleted.
        copy = tmp_path / "copy.db"
        database = client.app[DATABASE]
        database._conn.execute("PRAGMA wal_checkpoint(FULL)")
        database._conn.execute(f"VACUUM INTO '{copy}'")
    finally:
        await client.close()
    client = await start_db(copy, receiver, retain_messages=2)
    try:
        again = [m["id"] for m in (await (await client.get("/_emulator/messages")).json())["messages"]]
        assert again == kept
        callbacks = (await (await client.get("/_emulator/callbacks")).json())["callbacks"]
        assert {c["state"] for c in callbacks} == {"delivered"}  # nothing delivered twice
    finally:
        await client.close()
    assert len(receiver.requests) == 5


async def test_a_db_file_holding_more_is_trimmed_at_start_up(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "state.db"
    client = await start_db(db, receiver)  # manual clock: everything kept
    try:
        for _ in range(6):
            await send(client, SMS)
        await advance(client, 2)
        pending = (await (await send(client, SMS)).json())["id"]  # its callback is due in 1 s
    finally:
        await client.close()
    assert rows(db) == (7, 7)
    client = await start_db(db, receiver, retain_messages=2)
    try:
        kept = [m["id"] for m in (await (await client.get("/_emulator/messages")).json())["messages"]]
        assert pending in kept and len(kept) == 2
        health = await (await client.get("/_emulator/health")).json()
        assert health["retention"]["forgottenMessages"] == 5
    finally:
        await client.close()
    assert rows(db) == (2, 2)


async def test_the_list_api_no_longer_shows_forgotten_messages(make_client: Any) -> None:
    client = await make_client(retain_messages=2, callback_url=None)
    for _ in range(4):
        await send(client, SMS)
        await advance(client, 2)
    resp = await client.get(
        f"/api/v2/users/{ACCOUNT}/messages",
        params={"fromDateTime": "1970-01-01T00:00:00.000Z"},
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
    )
    assert (await resp.json())["totalCount"] == 2


async def test_with_db_a_failed_commit_does_not_keep_the_rows_of_what_was_forgotten(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = tmp_path / "state.db"
    client = await start_db(db, receiver, retain_messages=1)
    database = client.app[DATABASE]
    database.forget_batch = 1
    try:
        first = (await (await send(client, SMS)).json())["id"]
        await send(client, SMS)
        write = database._write

        def full_disk() -> None:
            raise sqlite3.OperationalError("database or disk is full")

        database._write = full_disk  # type: ignore[method-assign]
        # The advance delivers both callbacks (it changes the first message, then forgets it),
        # and its commit fails: the attempts did happen, and the first message stays forgotten.
        resp = await client.post("/_emulator/clock/advance", json={"seconds": 2})
        assert resp.status == 500
        assert (await client.get(f"/_emulator/messages/{first}")).status == 404
        database._write = write  # type: ignore[method-assign]
        third = (await (await send(client, SMS)).json())["id"]
        assert [row[0] for row in database._conn.execute("SELECT id FROM messages")] == [third]
    finally:
        await client.close()


async def test_a_scenario_put_at_runtime_sets_retention(make_client: Any) -> None:
    client = await make_client(callback_url=None)
    for _ in range(3):
        await send(client, SMS)
    await advance(client, 2)
    resp = await client.put(
        "/_emulator/scenario",
        data=f"era: '{SUITE_ERA}'\nretention:\n  messages: 1\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert resp.status == 200, await resp.text()
    health = await (await client.get("/_emulator/health")).json()
    assert health["retention"]["messages"] == 1 and health["retention"]["forgottenMessages"] == 2
    resp = await client.put("/_emulator/scenario", data="retention: {messages: -1}", headers={"Content-Type": "application/yaml"})
    assert resp.status == 400
    assert "retention.messages" in await resp.text()


async def test_the_cli_takes_the_policy_from_the_environment(start_cli: Any, receiver: Receiver) -> None:
    env = {**os.environ, "BWE_RETAIN_MESSAGES": "2", "BWE_RETAIN_FOR": "1h"}
    emu = await asyncio.to_thread(start_cli, "--clock", "manual", "--callback-url", receiver.url, env=env)
    async with aiohttp.ClientSession(emu.base_url) as session:
        for _ in range(4):
            async with session.post(f"/api/v2/users/{ACCOUNT}/messages", json=SMS, headers=AUTH) as resp:
                assert resp.status == 202
        async with session.post("/_emulator/clock/advance", json={"seconds": 5}) as resp:
            assert resp.status == 200
        async with session.get("/_emulator/health") as resp:
            health = await resp.json()
        async with session.get("/_emulator/messages") as resp:
            held = (await resp.json())["messages"]
    assert health["retention"] == {"messages": 2, "forSeconds": 3600.0, "forgottenMessages": 2, "forgottenCallbacks": 2}
    assert len(held) == 2
    assert len(receiver.requests) == 4  # every callback was delivered before its message went
    assert await asyncio.to_thread(emu.stop) == 0
    assert "retention: forgetting finished messages of account 9900000" in emu.stderr()
