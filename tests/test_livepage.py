"""The live web page's server side over HTTP: the event stream (docs/ui.md, 'Live updates') and the
pages of conversations and messages with the filters applied on the server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from support import ACCOUNT, advance
from support import send as post

from emulator import live
from emulator.keys import QUERIES, SERVICE

OURS = "+15554443333"
HANDSET = "+15552221111"


async def send(client: TestClient, message: dict[str, Any], account: str = ACCOUNT) -> Any:
    resp = await post(client, message, account)
    assert resp.status == 202, await resp.text()
    return await resp.json()


def body(to: list[str], text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"applicationId": "a", "from": OURS, "to": to, "text": text, **extra}


def key(*others: str, ours: str = OURS, account: str = ACCOUNT) -> str:
    return f"{account}|{ours}|{','.join(sorted(others))}"


async def read_event(resp: ClientResponse, timeout: float = 5.0) -> tuple[str, Any]:
    """The next event of a server-sent event stream (comments skipped): its name and its data."""
    name, data = "message", None
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), timeout)).decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            return name, data


async def open_stream(client: TestClient) -> ClientResponse:
    resp = await client.get("/_emulator/ui/events")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    name, data = await read_event(resp)
    assert name == "hello" and isinstance(data["version"], int)
    return resp


# -- the event stream ---------------------------------------------------------------------


async def test_a_sent_message_arrives_as_an_event_with_its_conversation(client):
    resp = await open_stream(client)
    sent = await send(client, body([HANDSET]))
    name, data = await read_event(resp)
    assert name == "change"
    assert {"id": sent["id"], "conversation": key(HANDSET)} in data["messages"]
    resp.close()


async def test_a_callback_attempt_names_its_message(client, receiver):
    sent = await send(client, body([HANDSET]))
    resp = await open_stream(client)
    await advance(client, 5)
    await receiver.wait_for(1)
    name, data = await read_event(resp)
    assert name == "change" and sent["id"] in [m["id"] for m in data["messages"]]
    resp.close()


async def test_a_burst_of_sends_is_coalesced_into_few_events(client):
    resp = await open_stream(client)
    # Sent together, not one after the other: at most one event per 50 ms, and one by one a
    # busy machine could take longer than that per send.
    sent = await asyncio.gather(*(send(client, body([f"+1555222{n:04d}"])) for n in range(30)))
    ids = {m["id"] for m in sent}
    seen: set[str] = set()
    events = 0
    while not ids <= seen:
        _, data = await read_event(resp)
        seen.update(m["id"] for m in data["messages"])
        events += 1
    # Every id is named once per event it changed in; a burst does not make one event per change.
    assert events < 30
    resp.close()


async def test_a_reset_is_an_event(client):
    await send(client, body([HANDSET]))
    resp = await open_stream(client)
    assert (await client.post(f"/_emulator/reset?accountId={ACCOUNT}")).status == 200
    name, data = await read_event(resp)
    assert name == "reset" and data["resets"] == [ACCOUNT]
    resp.close()


async def test_a_page_that_falls_behind_is_told_to_read_everything_again(client, monkeypatch):
    monkeypatch.setattr(live, "STREAM_BACKLOG", 5)
    stream = await client.app[QUERIES].open_stream()
    try:
        for n in range(10):
            await send(client, body([f"+1555222{n:04d}"]))
        batch = await stream.next(heartbeat=5)
        assert batch is not None and batch.resync and batch.messages == []
    finally:
        stream.close()


async def test_the_stream_ends_when_the_server_stops(client):
    resp = await open_stream(client)
    await client.app.shutdown()  # what aiohttp does first on Ctrl-C / SIGTERM
    assert await asyncio.wait_for(resp.content.read(), 5) == b""
    # And a page that reconnects meanwhile is not held open either.
    late = await client.get("/_emulator/ui/events")
    await read_event(late)
    assert await asyncio.wait_for(late.content.read(), 5) == b""


async def test_streams_are_bounded_and_closing_one_frees_its_place(client, monkeypatch):
    monkeypatch.setattr(live, "MAX_STREAMS", 2)
    monkeypatch.setattr("emulator.control.ui.MAX_STREAMS", 2)
    first = await open_stream(client)
    second = await open_stream(client)
    refused = await client.get("/_emulator/ui/events")
    assert refused.status == 503
    assert (await refused.json())["description"] == "2 pages are open already: close one"
    first.close()
    assert await client.app[QUERIES].wait_streams(1, 5)
    third = await open_stream(client)
    second.close()
    third.close()


async def test_with_no_page_open_sends_feed_no_stream(client):
    changes = client.app[SERVICE].changes
    before = len(changes._listeners)
    resp = await open_stream(client)
    assert len(changes._listeners) == before + 2  # the conversation index, and the streams
    resp.close()
    assert await client.app[QUERIES].wait_streams(0, 5)
    # Only the conversation index still listens, no stream does.
    assert len(changes._listeners) == before + 1


async def test_the_stream_refuses_parameters_and_other_hosts(client):
    assert (await client.get("/_emulator/ui/events?x=1")).status == 400
    assert (await client.get("/_emulator/ui/events", headers={"Host": "attacker.example"})).status == 403


# -- pages --------------------------------------------------------------------------------


async def conversations(client: TestClient, query: str = "") -> Any:
    resp = await client.get("/_emulator/ui/conversations" + query)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_conversations_are_paged_most_recent_first(client):
    for n in range(5):
        await send(client, body([f"+1555222{n:04d}"], text=f"m{n}"))
    await send(client, body(["+15552220001"], text="again"))  # conversation 1 is the latest now
    first = await conversations(client, "?limit=2&count=1")
    assert [c["others"] for c in first["conversations"]] == [["+15552220001"], ["+15552220004"]]
    assert first["conversations"][0]["messages"] == 2 and first["conversations"][0]["last"]["text"] == "again"
    assert first["totals"] == {"messages": 6, "conversations": 5, "matching": 6}
    assert first["accounts"] == [ACCOUNT]
    second = await conversations(client, f"?limit=2&before={first['next']}")
    assert [c["others"] for c in second["conversations"]] == [["+15552220003"], ["+15552220002"]]
    third = await conversations(client, f"?limit=2&before={second['next']}")
    assert [c["others"] for c in third["conversations"]] == [["+15552220000"]] and third["next"] is None


async def test_filters_apply_on_the_server(client, make_client):
    await send(client, body([HANDSET], text="Your code is 1234", tag="login"))
    await send(client, body(["+15550104720"], text="will fail", tag="login"))
    await send(client, body(["+15553334444"], text="other account"), account="7700000")
    await advance(client, 5)

    def others(page: Any) -> list[list[str]]:
        return sorted(c["others"] for c in page["conversations"])

    assert others(await conversations(client, "?tag=login")) == [["+15550104720"], [HANDSET]]
    failed = await conversations(client, "?state=FAILED&count=1")
    assert others(failed) == [["+15550104720"]] and failed["totals"]["matching"] == 1
    assert failed["conversations"][0]["failed"] == 1
    assert others(await conversations(client, "?accountId=7700000")) == [["+15553334444"]]
    assert others(await conversations(client, "?number=333%204444")) == [["+15553334444"]]
    assert others(await conversations(client, "?q=CODE")) == [[HANDSET]]
    # Tag and state together must hold for one message.
    assert others(await conversations(client, "?tag=login&state=DELIVERED")) == [[HANDSET]]
    assert others(await conversations(client, "?tag=login&state=cb:delivered")) == [["+15550104720"], [HANDSET]]


async def test_rows_by_key_say_which_are_gone(client):
    await send(client, body([HANDSET], tag="a"))
    await send(client, body(["+15553334444"], tag="b"))
    resp = await client.get(
        "/_emulator/ui/conversations",
        params=[("key", key(HANDSET)), ("key", key("+15553334444")), ("key", "nope"), ("tag", "a")],
    )
    data = await resp.json()
    assert [c["key"] for c in data["conversations"]] == [key(HANDSET)]
    assert data["gone"] == [key("+15553334444"), "nope"]


async def test_a_thread_is_paged_backwards_with_callbacks(client):
    ids = [(await send(client, body([HANDSET], text=f"m{n}")))["id"] for n in range(5)]
    resp = await client.get("/_emulator/ui/thread", params={"conversation": key(HANDSET), "limit": "2"})
    page = await resp.json()
    assert [m["id"] for m in page["messages"]] == ids[3:]
    assert page["messages"][0]["conversation"] == key(HANDSET)
    assert [c["type"] for c in page["messages"][0]["callbacks"]] == ["message-delivered"]
    resp = await client.get("/_emulator/ui/thread", params={"conversation": key(HANDSET), "limit": "2", "before": page["before"]})
    page = await resp.json()
    assert [m["id"] for m in page["messages"]] == ids[1:3]
    resp = await client.get("/_emulator/ui/thread", params={"conversation": key(HANDSET), "limit": "2", "before": page["before"]})
    page = await resp.json()
    assert [m["id"] for m in page["messages"]] == ids[:1] and page["before"] is None
    filtered = await (await client.get("/_emulator/ui/thread", params={"conversation": key(HANDSET), "q": "m3"})).json()
    assert [m["id"] for m in filtered["messages"]] == [ids[3]]


async def test_messages_by_id(client):
    a = await send(client, body([HANDSET], text="one", tag="x"))
    b = await send(client, body([HANDSET], text="two"))
    resp = await client.get("/_emulator/ui/messages", params=[("id", a["id"]), ("id", b["id"]), ("id", "nope"), ("tag", "x")])
    data = await resp.json()
    assert [m["id"] for m in data["messages"]] == [a["id"]] and data["gone"] == [b["id"], "nope"]


async def test_the_index_follows_state_changes_and_resets(client, receiver):
    await send(client, body([HANDSET]))
    assert (await conversations(client, "?state=cb:pending"))["conversations"]  # index built now
    await advance(client, 5)
    await receiver.wait_for(1)
    assert not (await conversations(client, "?state=cb:pending"))["conversations"]
    assert (await conversations(client, "?state=DELIVERED"))["conversations"]
    await send(client, body(["+15553334444"]), account="7700000")
    await client.post(f"/_emulator/reset?accountId={ACCOUNT}")
    page = await conversations(client, "?count=1")
    assert [c["accountId"] for c in page["conversations"]] == ["7700000"]
    assert page["totals"] == {"messages": 1, "conversations": 1, "matching": 1}
    await client.post("/_emulator/reset")
    assert (await conversations(client))["conversations"] == []


async def test_messages_stored_before_the_page_opened_are_indexed(client):
    sent = [(await send(client, body([f"+1555222{n:04d}"])))["id"] for n in range(3)]
    page = await conversations(client, "?count=1")
    assert page["totals"]["messages"] == 3
    assert {c["last"]["id"] for c in page["conversations"]} == set(sent)


async def test_a_message_gone_from_the_store_leaves_the_index(client):
    """Whatever forgets a message (retention) and announces it, the page stops showing it."""
    a = await send(client, body([HANDSET], tag="t"))
    b = await send(client, body([HANDSET]))
    await conversations(client)
    service = client.app[SERVICE]
    from emulator.state.changes import Change

    service.store.discard_message(a["id"])
    service.changes.bump(Change("message", ACCOUNT, a["id"]))
    page = await conversations(client, "?count=1")
    assert page["totals"]["messages"] == 1 and page["conversations"][0]["last"]["id"] == b["id"]
    assert page["tags"] == []
    service.store.discard_message(b["id"])
    service.changes.bump(Change("message", ACCOUNT, b["id"]))
    assert (await conversations(client))["conversations"] == []


@pytest.mark.parametrize(
    "path, description",
    [
        ("/_emulator/ui/conversations?limit=500", "limit='500' must be a whole number from 0 to 200"),
        ("/_emulator/ui/conversations?before=x", "before='x' must be a whole number from 1 to 4611686018427387904"),
        ("/_emulator/ui/conversations?state=LOST", "state='LOST' is not one of"),
        ("/_emulator/ui/conversations?key=a&limit=2", "key= names the conversations wanted"),
        ("/_emulator/ui/conversations?tag=a&tag=b", "query parameter 'tag' given more than once"),
        ("/_emulator/ui/conversations?count=yes", "count='yes' must be 0 or 1"),
        ("/_emulator/ui/thread", "conversation is required"),
        ("/_emulator/ui/thread?conversation=nope", "no conversation 'nope'"),
        ("/_emulator/ui/messages?accountID=1", "unknown query parameter 'accountID'"),
        ("/_emulator/ui/messages?" + "&".join(f"id={n}" for n in range(101)), "at most 100 id parameters at once"),
    ],
)
async def test_bad_parameters_get_a_clear_error(client, path, description):
    resp = await client.get(path)
    assert resp.status in (400, 404)
    assert (await resp.json())["description"].startswith(description)


async def test_messages_forgotten_by_retention_leave_the_page(make_client):
    client = await make_client(retain_messages=2, callback_url=None)
    sent = [(await send(client, body([f"+1555222{n:04d}"], tag=f"t{n}")))["id"] for n in range(2)]
    await advance(client, 2)
    assert (await conversations(client, "?count=1"))["totals"]["messages"] == 2  # the index is built
    sent += [(await send(client, body([f"+1555222{n:04d}"], tag=f"t{n}")))["id"] for n in range(2, 4)]
    await advance(client, 2)  # the two oldest are finished and beyond the two kept: forgotten
    page = await conversations(client, "?count=1")
    assert page["totals"] == {"messages": 2, "conversations": 2, "matching": 2}
    assert {c["last"]["id"] for c in page["conversations"]} == set(sent[2:])
    assert page["tags"] == ["t2", "t3"]


# -- the first read builds the index in slices (docs/ui.md, 'Live updates') ----------------------


def store_messages(client: TestClient, count: int, account: str = ACCOUNT, tag: str | None = None) -> list[str]:
    """``count`` messages stored straight through the service (as the send handler does),
    spread over many conversations: fast enough for a few thousand."""
    service = client.app[SERVICE]
    ids = []
    for n in range(count):
        m = service.send(account, body([f"+1556{n % 500:07d}"], text=f"m{n}", **({"tag": tag} if tag else {})))
        assert not isinstance(m, list)
        ids.append(m.id)
    return ids


async def build_started(client: TestClient) -> live.ConversationIndex:
    """The index, once its build has indexed its first slice (yielding, not sleeping)."""
    queries = client.app[QUERIES]
    while queries.conversation_index is None or queries.conversation_index.slices == 0:
        await asyncio.sleep(0)
    index = queries.conversation_index
    assert not index.ready
    return index


def index_state(index: live.ConversationIndex) -> Any:
    """What the page can see of an index: each conversation's messages in order, its counts,
    each message's status tokens, the accounts and the tags."""
    conversations = {c.key: (list(c.ids), +c.tokens, +c.tags) for c in index.recent(live.PageFilter(), None)}
    tokens = {mid: index.tokens(mid) for ids, _, _ in conversations.values() for mid in ids}
    return conversations, tokens, index.accounts(), index.tags(10_000), index.message_count


async def fresh_state(client: TestClient) -> Any:
    index = live.ConversationIndex(client.app[SERVICE].store)
    await index.build()
    assert index.ready
    return index_state(index)


async def test_the_first_read_lets_sends_run_while_the_index_is_built(client):
    store_messages(client, 2000)
    client.app[QUERIES].live_build_slice = 1  # one message per slice: 2000 yields to the loop
    first_read = asyncio.ensure_future(client.get("/_emulator/ui/conversations?count=1"))
    index = await build_started(client)
    seen: list[tuple[bool, int]] = []
    stop = client.app[SERVICE].changes.listen(lambda change: seen.append((index.ready, index.slices)))
    sent = await send(client, body([HANDSET]))  # over HTTP, while the page waits for the index
    stop()
    # The send was accepted, and announced, before the build had caught up.
    assert seen and not seen[0][0] and seen[0][1] < 2000
    resp = await first_read
    assert resp.status == 200
    page = await resp.json()
    assert index.ready and index.slices >= 2000
    assert page["totals"]["messages"] == 2001
    assert page["conversations"][0]["last"]["id"] == sent["id"]


async def test_changes_during_the_build_are_all_reflected(make_client):
    client = await make_client(retain_messages=302)
    service = client.app[SERVICE]
    early = store_messages(client, 300, tag="early")
    store_messages(client, 50, account="other", tag="gone")
    await advance(client, 60)  # every callback delivered: all finished, none forgotten (300 <= 302)
    pending = store_messages(client, 5, tag="late")  # their callbacks are still to come
    client.app[QUERIES].live_build_slice = 1
    reader = asyncio.ensure_future(client.app[QUERIES].live_index())
    index = await build_started(client)
    assert 0 < index.message_count < 300  # the snapshot is partly indexed
    added = store_messages(client, 3, tag="new")  # a message added during the build
    service.reset("other")  # an account reset during the build
    # Callbacks of indexed and not yet indexed messages change; the 308 finished messages of
    # the account exceed the 302 kept: retention forgets the 6 oldest, some indexed already.
    await advance(client, 60)
    assert not index.ready, "the build ended before the changes: make the store larger"
    assert service.retention.forgotten_messages == 6
    assert await reader is index and index.ready
    state = index_state(index)
    assert state == await fresh_state(client)
    conversations, tokens, accounts, tags, count = state
    assert count == 302 and accounts == [ACCOUNT] and "gone" not in tags
    assert len(set(early) - set(tokens)) == 6 and set(added + pending) <= set(tokens)
    assert sum(len(ids) for ids, _, _ in conversations.values()) == 302  # each exactly once
    assert any(t.startswith("cb:") for mid in pending for t in tokens[mid])


async def test_concurrent_first_reads_build_once(client, monkeypatch):
    store_messages(client, 200)
    client.app[QUERIES].live_build_slice = 10
    builds = 0
    build = live.ConversationIndex.build

    async def counted(self: live.ConversationIndex, *args: Any) -> None:
        nonlocal builds
        builds += 1
        await build(self, *args)

    monkeypatch.setattr(live.ConversationIndex, "build", counted)
    pages = await asyncio.gather(
        *(client.get("/_emulator/ui/conversations?count=1") for _ in range(3)),
        client.get("/_emulator/ui/events"),
    )
    assert builds == 1
    for resp in pages[:3]:
        assert (await resp.json())["totals"]["messages"] == 200
    name, _ = await read_event(pages[3])
    assert name == "hello"
    pages[3].close()


async def test_a_build_ends_quietly_when_the_server_stops(client):
    store_messages(client, 500)
    client.app[QUERIES].live_build_slice = 1
    first_read = asyncio.ensure_future(client.get("/_emulator/ui/conversations"))
    index = await build_started(client)
    await client.app.shutdown()
    resp = await first_read
    assert resp.status == 200
    assert not index.ready and index.slices < 500  # it stopped at the next slice
