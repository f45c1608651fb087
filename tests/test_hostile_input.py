"""Hostile input: whatever arrives, the answer is a Bandwidth-shaped error, never a 500 or a crash."""

from __future__ import annotations

import base64
import json
import os
import socket
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ACCOUNT, ANY_TIME, AUTH

from emulator.app import CLIENT_MAX_SIZE
from emulator.cli import build_parser, settings_from_args
from emulator.scenarios.format import Scenario, ScenarioError, load_scenario_text
from emulator.state.persistence import Database
from emulator.state.store import MediaItem, Store

# Each example is one HTTP round trip on loopback; enough to find shape bugs, quick in CI.
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
phone_like = st.one_of(
    st.from_regex(r"\A\+1[2-9]\d{9}\Z"),
    st.from_regex(r"\A\+?[0-9a-z ]{0,16}\Z"),
    st.text(max_size=20),
)
SEND_FIELDS = {
    "applicationId": st.one_of(st.text(max_size=30), json_values),
    "from": st.one_of(phone_like, json_values),
    "to": st.one_of(st.lists(phone_like, max_size=12), phone_like, json_values),
    "text": st.one_of(st.text(max_size=300), st.text(min_size=2040, max_size=2060), json_values),
    "media": st.one_of(st.lists(st.text(max_size=50), max_size=12), json_values),
    "tag": st.one_of(st.text(max_size=50), json_values),
    "priority": st.one_of(st.sampled_from(["default", "high", "low", ""]), json_values),
    "expiration": st.one_of(
        st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=30), json_values
    ),
}
send_bodies = st.fixed_dictionaries({}, optional=SEND_FIELDS) | json_values


def assert_bandwidth_error(status: int, body: Any) -> None:
    assert status != 500, body
    assert 400 <= status < 500
    assert isinstance(body, dict) and isinstance(body.get("type"), str) and isinstance(body.get("description"), str), body


@EXAMPLES
@given(body=send_bodies)
async def test_send_body_never_gets_a_500(client: Any, body: Any) -> None:
    resp = await client.post(
        f"/api/v2/users/{ACCOUNT}/messages", data=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"}
    )
    answer = await resp.json()
    if resp.status == 202:
        assert isinstance(body, dict)
        assert answer["id"] and answer["to"]
    else:
        assert resp.status == 400
        assert_bandwidth_error(resp.status, answer)
        if answer["type"] == "request-validation":
            assert all(set(e) == {"fieldName", "description"} for e in answer.get("fieldErrors", []))


@EXAMPLES
@given(raw=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/plain", "", "application/x+json"]))
async def test_raw_bytes_never_get_a_500(client: Any, raw: bytes, content_type: str) -> None:
    resp = await client.post(
        f"/api/v2/users/{ACCOUNT}/messages", data=raw, headers={**AUTH, "Content-Type": content_type}
    )
    if resp.status != 202:
        assert_bandwidth_error(resp.status, await resp.json())


@EXAMPLES
@given(
    header=st.one_of(
        # What an HTTP client can put in a header at all: visible latin-1, no control characters.
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=60),
        st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    )
)
async def test_any_authorization_header_is_401_or_accepted(client: Any, header: str) -> None:
    body = {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "x"}
    resp = await client.post(f"/api/v2/users/{ACCOUNT}/messages", json=body, headers={"Authorization": header})
    if resp.status != 202:
        assert resp.status == 401
        assert_bandwidth_error(resp.status, await resp.json())


@EXAMPLES
@given(segment=st.text(min_size=1, max_size=30).filter(lambda s: "/" not in s and "?" not in s and "#" not in s))
async def test_any_account_id_in_the_path_never_gets_a_500(client: Any, segment: str) -> None:
    from urllib.parse import quote

    body = {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "x"}
    resp = await client.post(f"/api/v2/users/{quote(segment, safe='')}/messages", json=body, headers=AUTH)
    assert resp.status != 500


async def test_a_body_above_the_limit_is_refused_before_it_is_read(client: Any) -> None:
    import asyncio

    # Declared too large: refused from the headers alone, the body is never sent.
    reader, writer = await _raw_connection(client)
    writer.write(
        f"POST /api/v2/users/{ACCOUNT}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {CLIENT_MAX_SIZE * 4}\r\n\r\n".encode()
    )
    writer.write(b"{" * 1024)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    assert b" 413 " in status_line, status_line
    writer.close()

    # Streamed without a length: refused once it passes the limit.
    resp = await client.post(
        f"/api/v2/users/{ACCOUNT}/messages",
        data=_chunks(CLIENT_MAX_SIZE + 1024),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert_bandwidth_error(resp.status, await resp.json())
    health = await client.get("/_emulator/health")
    assert health.status == 200


async def _chunks(total: int):
    chunk = b" " * 65536
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


async def _raw_connection(client: Any):
    import asyncio

    return await asyncio.open_connection(client.server.host, client.server.port)


# -- the scenario loader -----------------------------------------------------------------------


scenario_like = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "seed": json_values,
        "magicNumbers": json_values,
        "groupInvalidNumber": json_values,
        "defaults": st.fixed_dictionaries(
            {},
            optional={
                "sms": json_values,
                "mms": st.lists(st.dictionaries(st.sampled_from(["event", "after", "errorCode"]), json_values)),
                "inboundDelay": json_values,
            },
        ),
        "applications": st.lists(
            st.fixed_dictionaries(
                {"id": st.text(max_size=10)},
                optional={
                    "statusCallbackUrl": json_values,
                    "retrySchedule": st.lists(st.one_of(st.integers(), st.text(max_size=6), st.floats())),
                    "callbackTimeout": json_values,
                    "duplicates": json_values,
                    "numbers": json_values,
                },
            ),
            max_size=3,
        ),
    },
)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=400), scenario_like.map(lambda d: yaml.safe_dump(d, allow_unicode=True))))
def test_scenario_loader_accepts_or_explains(text: str) -> None:
    try:
        scenario = load_scenario_text(text, "fuzz.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("fuzz.yaml: ")
        assert exc.problems
    else:
        assert isinstance(scenario, Scenario)


@pytest.mark.parametrize(
    "text",
    [
        "applications: &a [*a]",  # a self-referencing alias
        "x: !!python/object/apply:os.system ['true']",  # code execution tags must be refused
        "- " * 200 + "x",  # deep nesting
        "\x00\x01",
        "applications: [{id: a, retrySchedule: [1e309]}]",
    ],
)
def test_scenario_loader_refuses_nasty_yaml(text: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        load_scenario_text(text, "nasty.yaml")
    assert str(refused.value).startswith("nasty.yaml: ")


@EXAMPLES
@given(text=st.one_of(st.text(max_size=300), scenario_like.map(json.dumps)))
async def test_put_scenario_never_gets_a_500(client: Any, text: str) -> None:
    resp = await client.put("/_emulator/scenario", data=text.encode(), headers={"Content-Type": "application/yaml"})
    assert resp.status in (200, 204, 400, 422), await resp.text()


# -- media ids and account isolation -------------------------------------------------------------

media_ids = st.one_of(
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "..", ".", "a/../../b", "..\\..\\win.ini", "%2e%2e/x", "a\x00b"]),
    st.lists(st.sampled_from(["..", ".", "", "a", "/", "\\", "%2F", "etc", "passwd"]), min_size=1, max_size=8).map("/".join),
    st.text(min_size=1, max_size=40),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(media_id=media_ids, other=media_ids)
def test_media_ids_are_keys_never_paths(tmp_path: Path, media_id: str, other: str) -> None:
    """In memory and in the --db file a media id is only a key: nothing is written beside the file."""
    workdir = tmp_path / "w"
    workdir.mkdir(exist_ok=True)
    db = Database(workdir / "state.db")
    store = Store()
    store.observer = db
    store.put_media(MediaItem(ACCOUNT, media_id, b"secret", "text/plain", None, 0.0))
    db.commit()
    assert store.get_media(ACCOUNT, media_id).content == b"secret"
    assert store.get_media("1111111", media_id) is None
    if other != media_id:
        assert store.get_media(ACCOUNT, other) is None
    db.close()
    restored = Store()
    Database(workdir / "state.db").load_into(restored)
    assert [m.media_id for m in restored.media(ACCOUNT)] == [media_id]
    assert sorted(p.name for p in workdir.iterdir() if not p.name.startswith("state.db")) == []
    (workdir / "state.db").unlink()
    for extra in ("state.db-wal", "state.db-shm"):
        (workdir / extra).unlink(missing_ok=True)


async def test_one_account_never_sees_another_accounts_messages(client: Any) -> None:
    body = {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "private"}
    other_auth = {"Authorization": "Basic " + base64.b64encode(b"other:secret").decode()}
    resp = await client.post("/api/v2/users/1111111/messages", json=body, headers=AUTH)
    assert resp.status == 202
    mine = (await resp.json())["id"]
    resp = await client.post("/api/v2/users/2222222/messages", json=body, headers=other_auth)
    assert resp.status == 202
    listed = await (await client.get("/_emulator/messages", params={"accountId": "2222222"})).json()
    assert mine not in {m["id"] for m in listed["messages"]}
    # The Bandwidth listing is scoped by the account in the path, whatever the credentials.
    resp = await client.get("/api/v2/users/2222222/messages", params=ANY_TIME, headers=other_auth)
    if resp.status == 200:
        assert mine not in json.dumps(await resp.json())


def test_default_bind_is_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BWE_HOST", raising=False)
    args = build_parser().parse_args([])
    assert settings_from_args(args).host == "127.0.0.1"
    assert settings_from_args(build_parser().parse_args(["serve"])).host == "127.0.0.1"


def test_default_bind_is_not_reachable_from_other_interfaces(start_cli) -> None:
    """Started with the defaults, the listening socket is bound to 127.0.0.1 only."""
    emulator = start_cli(env={k: v for k, v in os.environ.items() if k != "BWE_HOST"})
    port = int(emulator.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    listening = _listening_addresses(emulator.pid)
    if listening is not None:
        assert listening == {("127.0.0.1", port)}, listening


def _listening_addresses(pid: int) -> set[tuple[str, int]] | None:
    """Listening TCP sockets of a process, from /proc (Linux); None elsewhere."""
    try:
        inodes = {
            os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
            for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")
        }
        found = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    if state == "0A" and inode in inodes:  # LISTEN
                        addr, port = local.split(":")
                        if len(addr) == 8:
                            ip = socket.inet_ntoa(bytes.fromhex(addr)[::-1])
                        else:
                            ip = "ipv6:" + addr
                        found.add((ip, int(port, 16)))
        return found
    except OSError:
        return None


# -- the media endpoints -----------------------------------------------------------------------


@pytest.fixture
async def db_client(make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    return await make_client(db=str(tmp_path / "state.db"))


def _media_path(account: str, media_id: str) -> str:
    from urllib.parse import quote

    return f"/api/v2/users/{account}/media/{quote(media_id, safe='')}"


@EXAMPLES
@given(media_id=media_ids, content=st.binary(max_size=64))
async def test_media_ids_cannot_escape_or_cross_accounts_over_http(
    db_client: Any, tmp_path: Path, media_id: str, content: bytes
) -> None:
    other_auth = {"Authorization": "Basic " + base64.b64encode(b"other:secret").decode()}
    path = _media_path(ACCOUNT, media_id)
    resp = await db_client.put(path, data=content, headers={**AUTH, "Content-Type": "application/octet-stream"})
    assert resp.status in (204, 400, 404), await resp.text()
    if resp.status == 204:
        got = await db_client.get(path, headers={**AUTH, "Accept": "application/octet-stream"})
        assert got.status == 200
        assert await got.read() == content
        # Another account, with its own credentials, never sees it: by id or in its listing.
        other = await db_client.get(_media_path("2222222", media_id), headers={**other_auth, "Accept": "*/*"})
        assert other.status == 404
        listing = await db_client.get("/api/v2/users/2222222/media", headers=other_auth)
        assert listing.status == 200
        assert media_id not in [m["mediaName"] for m in await listing.json()]
    # Whatever the id, nothing was written beside the database file.
    assert {p.name for p in tmp_path.iterdir()} <= {"state.db", "state.db-wal", "state.db-shm"}
    # Raw, unencoded dot segments are matched (or not) as a path, and escape nothing either.
    raw = await db_client.get(
        f"/api/v2/users/{ACCOUNT}/media/{media_id}".replace("\x00", "").replace("?", "").replace("#", ""),
        headers={**AUTH, "Accept": "*/*"},
    )
    assert raw.status != 500


@settings(max_examples=500, deadline=None)
@given(t=st.floats(min_value=0, max_value=4e9) | st.integers(0, 4_000_000_000).map(lambda s: s + 0.9995))
def test_timestamps_format_like_datetime(t: float) -> None:
    from datetime import datetime

    from emulator.delivery.clock import isoformat

    dt = datetime.fromtimestamp(t, tz=UTC)
    assert isoformat(t) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ACCOUNTS = {
    "accounts": [
        {"id": "1111111", "credentials": [{"username": "alice", "password": "a-secret"}]},
        {"id": "2222222", "credentials": [{"username": "bob", "password": "b-secret"}]},
    ]
}


@EXAMPLES
@given(
    path=st.sampled_from(["/messages", "/messages?messageId={mid}", "/media", "/media/{media}", "/media/{media_q}"]),
    method=st.sampled_from(["GET", "DELETE", "PUT", "POST"]),
)
async def test_one_accounts_credentials_never_reach_another_accounts_data(
    make_client: Any, path: str, method: str
) -> None:
    from urllib.parse import quote

    client = await make_client(ACCOUNTS)
    alice, bob = _basic("alice", "a-secret"), _basic("bob", "b-secret")
    body = {"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "alice's secret"}
    resp = await client.post("/api/v2/users/1111111/messages", json=body, headers=alice)
    assert resp.status == 202
    mid = (await resp.json())["id"]
    media_id = "../2222222/x/secret.txt"
    put = await client.put(
        f"/api/v2/users/1111111/media/{quote(media_id, safe='')}", data=b"alice's file",
        headers={**alice, "Content-Type": "text/plain"},
    )
    assert put.status == 204
    url = "/api/v2/users/1111111" + path.format(mid=mid, media="x/secret.txt", media_q=quote(media_id, safe=""))
    # Bob is a real user of another account: 403; no credentials or wrong ones: 401.
    for headers, expected in ((bob, 403), (_basic("alice", "wrong"), 401), ({}, 401)):
        resp = await client.request(method, url, headers={**headers, "Content-Type": "text/plain"}, data=b"bob")
        text = await resp.text()
        assert resp.status in (expected, 404, 405), (method, url, resp.status, text)
        if resp.status != 405:
            assert resp.status == expected, (method, url, resp.status, text)
        assert "alice" not in text and mid not in text
    # Nothing of Alice's was changed by the refused requests.
    got = await client.get(f"/api/v2/users/1111111/media/{quote(media_id, safe='')}", headers={**alice, "Accept": "*/*"})
    assert got.status == 200 and await got.read() == b"alice's file"
    # And Bob's own account holds none of it, whatever the media id said.
    listing = await client.get("/api/v2/users/2222222/media", headers=bob)
    assert listing.status == 200 and await listing.json() == []
    messages = await client.get("/api/v2/users/2222222/messages", params=ANY_TIME, headers=bob)
    assert messages.status == 200 and mid not in await messages.text()


# -- the other endpoints: queries and control bodies --------------------------------------------

query_values = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=30),
    st.sampled_from(["-1", "0", "1e309", "nan", "2024-13-45T99:99:99Z", "", "%", "999999999999999999999"]),
)
LIST_PARAMS = ["to", "from", "messageId", "messageStatus", "messageDirection", "errorCode", "fromDateTime",
               "toDateTime", "pageToken", "limit", "sort", "carrierName", "messageType", "campaignId",
               "accountId", "direction", "tag", "type", "state", "applicationId"]


@EXAMPLES
@given(
    path=st.sampled_from([
        f"/api/v2/users/{ACCOUNT}/messages", f"/api/v2/users/{ACCOUNT}/media", "/_emulator/messages",
        "/_emulator/callbacks", "/_emulator/health", "/_emulator/clock", "/_emulator/ui/changes",
    ]),
    params=st.dictionaries(st.sampled_from(LIST_PARAMS), query_values, max_size=4),
)
async def test_any_query_on_a_listing_never_gets_a_500(client: Any, path: str, params: dict[str, str]) -> None:
    if path.endswith("/changes"):
        params = {k: v for k, v in params.items() if k != "since"}
        params["timeout"] = "0"  # a long-poll: do not wait
    token = params.get("pageToken", "")
    headers = dict(AUTH)
    if token.isascii() and token.isprintable():  # what an HTTP client can send as a header
        headers["Continuation-Token"] = token
    resp = await client.get(path, params=params, headers=headers)
    assert resp.status != 500, await resp.text()
    if resp.status >= 400 and path.startswith("/api/"):
        assert_bandwidth_error(resp.status, await resp.json())


@EXAMPLES
@given(
    path=st.sampled_from(["/_emulator/clock/advance", "/_emulator/inbound", "/_emulator/reset"]),
    body=st.one_of(
        json_values,
        st.fixed_dictionaries({}, optional={
            "seconds": st.one_of(st.floats(), st.integers(), st.text(max_size=5), json_values),
            "from": phone_like, "to": st.one_of(st.lists(phone_like, max_size=3), phone_like, json_values),
            "text": json_values, "media": json_values, "accountId": json_values, "applicationId": json_values,
        }),
    ),
)
async def test_any_control_body_never_gets_a_500(client: Any, path: str, body: Any) -> None:
    if path.endswith("/advance") and isinstance(body, dict) and isinstance(body.get("seconds"), (int, float)):
        # A huge but valid advance would legitimately run forever's worth of schedule; bound it.
        seconds = body["seconds"]
        if seconds == seconds and abs(seconds) > 86400 * 30:
            body = {**body, "seconds": 86400 * 30}
    resp = await client.post(path, data=json.dumps(body, allow_nan=True), headers={"Content-Type": "application/json"})
    assert resp.status != 500, await resp.text()
    assert resp.status < 500, await resp.text()
