"""Input the emulator refuses at the door, in Bandwidth's error shape, never with a 500:
lone surrogates, nesting deep enough to exhaust the stack, tokens and headers Python cannot
read, scenario YAML that PyYAML cannot build, requests aiohttp's parser refuses, inbound
messages to more numbers than a group holds or with more text or media than a handset sends,
and other control API inputs longer than their bounds (docs/compatibility.md, "What the emulator refuses")."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import ACCOUNT, ANY_TIME, AUTH

from emulator.app import create_app
from emulator.cli import main
from emulator.config import Settings
from emulator.keys import SERVICE
from emulator.state.models import Message, RecipientStatus
from emulator.testing.runner import Emulator

SMS = {"applicationId": "app-1", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}
JSON = {**AUTH, "Content-Type": "application/json"}
SURROGATE = "\ud800"


async def send_raw(client: TestClient, raw: str | bytes) -> Any:
    return await client.post(f"/api/v2/users/{ACCOUNT}/messages", data=raw, headers=JSON)


# -- 6. lone surrogates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("text", SURROGATE),
        ("text", "ok \udfff then"),
        ("tag", SURROGATE),
        ("applicationId", "app" + SURROGATE),
        ("media", ["https://example.com/" + SURROGATE]),
        ("from", "+1555" + SURROGATE),
        ("to", ["+1555" + SURROGATE]),
        ("somethingUnknown", SURROGATE),
    ],
)
async def test_a_lone_surrogate_in_any_send_field_is_a_400_naming_it(client: TestClient, field: str, value: Any) -> None:
    # json.dumps writes the surrogate as the escape \ud800, as a JavaScript client would.
    resp = await send_raw(client, json.dumps({**SMS, field: value}))
    assert resp.status == 400
    body = await resp.json()
    assert body["type"] == "request-validation"
    assert [e["fieldName"] for e in body["fieldErrors"]] == [field]
    # Nothing was stored, and the account still lists.
    listing = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params=ANY_TIME, headers=AUTH)
    assert listing.status == 200
    assert (await listing.json())["totalCount"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"from": "+15557778888", "to": "+15554443333", "text": SURROGATE},
        {"from": "+1555777" + SURROGATE, "to": "+15554443333", "text": "hi"},
        {"from": "+15557778888", "to": "+15554443333", "media": ["https://example.com/" + SURROGATE]},
        {"from": "+15557778888", "to": "+15554443333", "media": [{"content": "aGk=", "filename": "a" + SURROGATE}]},
        {"from": "+15557778888", "to": "+15554443333", "text": "hi", "accountId": SURROGATE},
    ],
)
async def test_a_lone_surrogate_in_an_inbound_message_is_a_400(client: TestClient, body: dict[str, Any]) -> None:
    resp = await client.post("/_emulator/inbound", data=json.dumps(body))
    assert resp.status == 400
    answer = await resp.json()
    assert answer["type"] == "invalid-request" and "surrogate" in answer["description"]
    assert (await (await client.get("/_emulator/messages")).json())["messages"] == []


def _stored(text: str, tag: str | None = None) -> Message:
    return Message(
        id="m-stored",
        account_id=ACCOUNT,
        application_id="app-1",
        direction="out",
        from_="+15554443333",
        to=("+15552221111",),
        owner="+15554443333",
        time=1_700_000_000.0,
        segment_count=1,
        text=text,
        tag=tag,
        recipients={"+15552221111": RecipientStatus(to="+15552221111")},
    )


async def test_listing_survives_a_stored_lone_surrogate(client: TestClient) -> None:
    # Stored before the door was shut (or by a --db file from then): the list still answers.
    client.server.app[SERVICE].store.add_message(_stored("a" + SURROGATE, tag=SURROGATE))
    resp = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params=ANY_TIME, headers=AUTH)
    assert resp.status == 200
    [row] = (await resp.json())["messages"]
    assert row["messageId"] == "m-stored" and row["messageLength"] == 2
    for path in ("/_emulator/messages", "/_emulator/messages/m-stored"):
        assert (await client.get(path)).status == 200


async def test_listing_survives_a_lone_surrogate_loaded_from_a_db_file(tmp_path: Path) -> None:
    db = str(tmp_path / "state.db")
    client = TestClient(TestServer(create_app(Settings(db=db, clock="manual"))))
    await client.start_server()
    client.server.app[SERVICE].store.add_message(_stored(SURROGATE))
    assert (await client.get("/_emulator/health")).status == 200  # commits the store
    await client.close()

    client = TestClient(TestServer(create_app(Settings(db=db, clock="manual"))))
    await client.start_server()
    try:
        resp = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params=ANY_TIME, headers=AUTH)
        assert resp.status == 200
        assert [m["messageId"] for m in (await resp.json())["messages"]] == ["m-stored"]
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (json.dumps({"to": "+15552223333", "tag": SURROGATE, "channelList": []}), "tag"),
        (json.dumps({"to": "+15552223333", "channelList": [{"channel": "SMS", "content": {"text": SURROGATE}}]}), "channelList"),
        ("[" * 50_000 + "]" * 50_000, None),
    ],
)
async def test_the_multichannel_send_refuses_the_same_bodies(client: TestClient, raw: str, field: str | None) -> None:
    resp = await client.post(f"/api/v2/users/{ACCOUNT}/messages/multiChannel", data=raw, headers=JSON)
    assert resp.status == 400
    [error] = (await resp.json())["errors"]
    assert error["type"] == "request-validation" and error["source"].get("field") == field


# -- 7. shapes that answered 500 -----------------------------------------------------------

DEEP = "[" * 50_000 + "]" * 50_000
NESTED_40 = "[" * 40 + "]" * 40


@pytest.mark.parametrize("raw", [DEEP, NESTED_40, json.dumps({**SMS, "tag": json.loads(NESTED_40)})])
async def test_deeply_nested_json_on_send_is_a_400(client: TestClient, raw: str) -> None:
    resp = await send_raw(client, raw)
    assert resp.status == 400
    body = await resp.json()
    assert body["fieldErrors"][0]["fieldName"] == "body" and "nested" in body["fieldErrors"][0]["description"]


@pytest.mark.parametrize("path", ["/_emulator/inbound", "/_emulator/clock/advance"])
@pytest.mark.parametrize("raw", [DEEP, '{"seconds": ' + DEEP + "}", '{"text": ' + NESTED_40 + "}"])
async def test_deeply_nested_json_on_the_control_api_is_a_400(client: TestClient, path: str, raw: str) -> None:
    resp = await client.post(path, data=raw)
    assert resp.status == 400
    assert "nested" in (await resp.json())["description"]


@pytest.mark.parametrize("header", ["Basic é", "Basic ÿÿÿÿ", "basic \xa0"])
async def test_a_non_ascii_basic_header_is_a_401(client: TestClient, header: str) -> None:
    resp = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params=ANY_TIME, headers={"Authorization": header})
    assert resp.status == 401
    assert (await resp.json())["type"] == "unauthorized"


def _token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("token", [_token("offset:²"), _token("offset:" + "9" * 5000), _token("offset:١٢"), "²"])
async def test_an_odd_page_token_is_a_400(client: TestClient, token: str) -> None:
    resp = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params={"pageToken": token}, headers=AUTH)
    assert resp.status == 400
    assert "pageToken" in (await resp.json())["description"]


UNBUILDABLE_YAML = {
    "bad-date": "startTime: 2024-13-45\n",
    "bad-int": "seed: !!int abc\n",
    "huge-int": "seed: " + "9" * 5000 + "\n",
    "deep": "name: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-maps": "a: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n",
    "surrogate": 'name: "\\ud800"\n',
    "billion-laughs": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    "not-utf8": b"name: \xff\xfe\n",
}


@pytest.mark.parametrize("name", UNBUILDABLE_YAML)
async def test_unbuildable_scenario_yaml_is_a_400_on_put(client: TestClient, name: str) -> None:
    resp = await client.put("/_emulator/scenario", data=UNBUILDABLE_YAML[name])
    assert resp.status == 400
    body = await resp.json()
    assert body["type"] == "invalid-request" and body["description"]


@pytest.mark.parametrize("name", UNBUILDABLE_YAML)
def test_unbuildable_scenario_yaml_gets_one_line_from_validate_and_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = tmp_path / f"{name}.yaml"
    content = UNBUILDABLE_YAML[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith(f"{path}: ")  # file: path: problem
    assert main(["--scenario", str(path), "--port", "0"]) == 2  # refused before serving
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines() == [line]


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x01b\r\n\r\n",
        b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ],
)
async def test_requests_the_http_parser_refuses_get_a_json_400(raw: bytes) -> None:
    async with Emulator() as emulator:
        host, port = emulator.base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)  # the connection is closed after it
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] == b"400", head
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert error["type"] == "bad-request" and error["description"].startswith("The HTTP request could not be parsed")


# -- 8. inbound recipients -------------------------------------------------------------------


async def test_inbound_to_more_numbers_than_a_group_holds_is_a_400(client: TestClient) -> None:
    numbers = [f"+1555200{n:04d}" for n in range(4000)]
    resp = await client.post("/_emulator/inbound", json={"from": "+15557778888", "to": numbers, "text": "hi"})
    assert resp.status == 400
    assert "at most 10" in json.dumps(await resp.json())
    assert (await (await client.get("/_emulator/messages")).json())["messages"] == []


async def test_inbound_to_a_full_group_is_one_message_per_number(client: TestClient) -> None:
    numbers = [f"+1555200{n:04d}" for n in range(10)]
    resp = await client.post("/_emulator/inbound", json={"from": "+15557778888", "to": numbers, "text": "hi"})
    assert resp.status == 201
    messages = (await resp.json())["messages"]
    assert sorted(m["owner"] for m in messages) == numbers
    assert all(m["to"] == numbers for m in messages)
    twice = await client.post("/_emulator/inbound", json={"from": "+15557778888", "to": [numbers[0]] * 2})
    assert twice.status == 400


async def test_inbound_takes_each_numbers_own_conversation(client: TestClient) -> None:
    # The conversation lookup is one pass for every recipient; each still finds its own.
    for n, account in ((1, "111"), (2, "222")):
        resp = await client.post(
            f"/api/v2/users/{account}/messages", json={**SMS, "from": f"+1555300000{n}", "applicationId": f"app-{n}"}, headers=AUTH
        )
        assert resp.status == 202
    resp = await client.post(
        "/_emulator/inbound", json={"from": "+15557778888", "to": ["+15553000001", "+15553000002"], "text": "hi"}
    )
    owners = {m["owner"]: (m["accountId"], m["applicationId"]) for m in (await resp.json())["messages"]}
    assert owners == {"+15553000001": ("111", "app-1"), "+15553000002": ("222", "app-2")}


def test_scheduled_inbound_traffic_is_bounded_like_a_group() -> None:
    from emulator.scenarios.format import ScenarioError, parse_scenario

    numbers = [f"+1555200{n:04d}" for n in range(11)]
    with pytest.raises(ScenarioError) as exc:
        parse_scenario({"inbound": [{"at": 5, "to": numbers}]})
    assert exc.value.problems[0][0] == "inbound[0]"


# -- 8b. bounds on the rest of an inbound message and on other control API inputs ------------

HANDSET = {"from": "+15557778888", "to": "+15554443333"}
LONGEST = 255 * 153  # the longest concatenated SMS (docs/control-api.md, 'Inbound messages')
PNG = base64.b64encode(b"\x89PNG....").decode()


async def _refused(resp: Any, *words: str) -> None:
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["type"] == "invalid-request"
    said = json.dumps(body)
    assert all(word in said for word in words), said


async def test_inbound_text_is_bounded_by_the_longest_sms_a_handset_sends(client: TestClient) -> None:
    resp = await client.post("/_emulator/inbound", json={**HANDSET, "text": "a" * LONGEST})
    assert resp.status == 201
    [message] = (await resp.json())["messages"]
    assert len(message["text"]) == LONGEST and message["segmentCount"] == 255
    await _refused(
        await client.post("/_emulator/inbound", json={**HANDSET, "text": "a" * (LONGEST + 1)}),
        "'text' is 39016 characters", "at most 39,015",
    )
    assert len((await (await client.get("/_emulator/messages")).json())["messages"]) == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"from": "+1" + "5" * 31}, ("'from' is longer than 32",)),
        ({"accountId": "9" * 257}, ("'accountId' is longer than 256",)),
        ({"applicationId": "a" * 257}, ("'applicationId' is longer than 256",)),
        ({"media": ["https://example.com/x.png"] * 11}, ("at most 10 items",)),
        ({"media": ["https://example.com/" + "x" * 4096]}, ("media[0] is longer than 4096",)),
        ({"media": [{"content": PNG, "filename": "a" * 256}]}, ("media[0].filename is longer than 255",)),
        ({"media": [{"content": PNG, "contentType": "image/" + "x" * 250}]}, ("media[0].contentType is longer than 255",)),
    ],
)
async def test_other_inbound_fields_are_bounded(client: TestClient, change: dict[str, Any], words: tuple[str, ...]) -> None:
    await _refused(await client.post("/_emulator/inbound", json={**HANDSET, "text": "hi", **change}), *words)
    assert (await (await client.get("/_emulator/messages")).json())["messages"] == []


async def test_an_inline_inbound_file_is_bounded_by_the_scenarios_media_size_limit(make_client: Any) -> None:
    client = await make_client({"mediaSizeLimit": 10})
    small = {"content": base64.b64encode(b"0123456789").decode(), "contentType": "image/png"}
    assert (await client.post("/_emulator/inbound", json={**HANDSET, "media": [small]})).status == 201
    large = {**small, "content": base64.b64encode(b"0123456789!").decode()}
    await _refused(await client.post("/_emulator/inbound", json={**HANDSET, "media": [large]}), "11 bytes", "10 bytes")


async def test_a_handset_reply_is_bounded_like_an_inbound_message(client: TestClient) -> None:
    # The body is checked before the message is looked up: no RBM message is needed.
    await _refused(
        await client.post("/_emulator/messages/m1/reply", json={"text": "a" * (LONGEST + 1)}), "at most 39,015"
    )
    long_number = "1." + "0" * 40
    await _refused(
        await client.post("/_emulator/messages/m1/reply", json={"location": {"latitude": long_number, "longitude": "0"}}),
        "location.latitude", "at most 32 characters",
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:9/" + "x" * 4096, "longer than 4096"),
        ("http://127.0.0.1:9/a b", "space or a control character"),
        ("ftp://127.0.0.1/", "absolute http"),
        (5, "is not a string"),
    ],
)
async def test_the_fallback_callback_url_is_checked_as_the_command_line_option(client: TestClient, url: Any, words: str) -> None:
    await _refused(await client.put("/_emulator/callback-url", json={"url": url}), words)
    assert (await (await client.get("/_emulator/callback-url")).json())["url"] != url
    fine = "http://127.0.0.1:9/" + "x" * 4000
    assert (await (await client.put("/_emulator/callback-url", json={"url": fine})).json())["url"] == fine


@pytest.mark.parametrize(
    ("scenario", "path"),
    [
        ({"inbound": [{"at": 5, "to": "+15554443333", "text": "a" * (LONGEST + 1)}]}, "inbound[0].text"),
        ({"inbound": [{"at": 5, "to": "+15554443333", "media": ["https://example.com/a.png"] * 11}]}, "inbound[0].media"),
        ({"inbound": [{"at": 5, "to": "+15554443333", "media": ["https://example.com/" + "x" * 4096]}]}, "inbound[0].media[0]"),
        ({"autoReplies": [{"reply": "a" * (LONGEST + 1)}]}, "autoReplies[0].reply"),
        ({"autoReplies": [{"media": ["https://example.com/a.png"] * 11}]}, "autoReplies[0].media"),
        ({"applications": [{"id": "a", "statusCallbackUrl": "http://127.0.0.1/" + "x" * 4096}]}, "applications[0].statusCallbackUrl"),
    ],
)
def test_scheduled_inbound_text_and_media_are_bounded_like_the_control_api(scenario: dict[str, Any], path: str) -> None:
    from emulator.scenarios.format import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError) as exc:
        parse_scenario(scenario)
    assert [p for p, _ in exc.value.problems] == [path]
    parse_scenario({"inbound": [{"at": 5, "to": "+15554443333", "text": "a" * LONGEST, "media": ["https://example.com/a.png"] * 10}]})


def test_an_auto_reply_is_cut_to_the_longest_text_and_never_built_longer() -> None:
    from emulator.scenarios.traffic import reply_text

    assert reply_text("You said: {text}!", "hi") == "You said: hi!"
    many = reply_text("{text}" * 20_000, "x" * 2048)
    assert many == "x" * LONGEST
    assert reply_text("a" * LONGEST + "{text}", "tail") == "a" * LONGEST


# -- 9. scenario size and regexes ----------------------------------------------------------


def _rules(count: int) -> str:
    rule = '  - match: {{to: "+1555200{n:04d}", text: {{regex: "(?i)hello"}}}}\n    errorCode: 4720\n'
    return "rules:\n" + "".join(rule.format(n=n % 10_000) for n in range(count))


async def test_a_scenario_above_the_size_limit_is_refused_before_it_is_parsed(client: TestClient) -> None:
    from emulator.scenarios.format import MAX_SCENARIO_BYTES

    text = "description: x\n" + "# padding\n" * (MAX_SCENARIO_BYTES // 10)
    assert len(text) > MAX_SCENARIO_BYTES
    resp = await client.put("/_emulator/scenario", data=text)
    assert resp.status == 413
    assert "stays in force" in (await resp.json())["description"]
    # Sent without a Content-Length (chunked): counted while read.
    async def chunks() -> Any:
        for start in range(0, len(text), 65536):
            yield text[start : start + 65536].encode()

    resp = await client.put("/_emulator/scenario", data=chunks())
    assert resp.status == 413
    assert (await (await client.get("/_emulator/scenario")).json())["name"] == "default"


def test_a_scenario_file_above_the_size_limit_gets_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(_rules(3000))
    assert main(["validate", str(path)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: (top level): too large")


def test_more_than_a_thousand_rules_are_refused() -> None:
    from emulator.scenarios.format import ScenarioError, load_scenario_text

    assert len(load_scenario_text(_rules(1000)).rules) == 1000
    with pytest.raises(ScenarioError) as exc:
        load_scenario_text(_rules(1001))
    assert exc.value.problems[0][0] == "rules"


@pytest.mark.parametrize("regex", ["(?=x)y", "(?<!x)y", r"(a)\1", "a{2000}"])
def test_regexes_that_need_backtracking_are_refused_at_load(regex: str) -> None:
    from emulator.scenarios.format import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError) as exc:
        parse_scenario({"rules": [{"match": {"text": {"regex": regex}}, "errorCode": 4720}]})
    path, problem = exc.value.problems[0]
    assert path == "rules[0].match.text.regex" and "not a regular expression the emulator can run" in problem


def test_a_backtracking_regex_matches_in_linear_time() -> None:
    # In a child process with a deadline: Python's own engine takes longer than the age of
    # the universe on this one, and holds the interpreter (and so any event loop) meanwhile.
    import subprocess
    import sys

    code = """if True:
        from emulator.scenarios.format import parse_scenario
        from emulator.scenarios.rules import Subject, first_rule
        scenario = parse_scenario({"rules": [{"match": {"text": {"regex": "^(a+)+$"}}, "errorCode": 4720}]})
        subject = Subject("1", "app", "+15554443333", ("+15552221111",), "a" * 2000 + "!", None, "sms")
        print(first_rule(scenario, subject, "+15552221111"))
        subject = Subject("1", "app", "+15554443333", ("+15552221111",), "a" * 2000, None, "sms")
        print(first_rule(scenario, subject, "+15552221111").error_code)
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "4720"]



# -- all of it at once -----------------------------------------------------------------------


async def test_a_sweep_of_hostile_inputs_gets_no_5xx_and_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """Every route, every bad shape above and more, with a good send between each: no answer
    is a 5xx, and every accepted message is still listed (run with -s to see the figures)."""
    import itertools

    import aiohttp

    api = f"/api/v2/users/{ACCOUNT}"
    values: list[Any] = [SURROGATE, "x" + SURROGATE, json.loads(NESTED_40), None, 1e308, -1, 2**70, "", "²", "\x00", "é" * 3000,
                         [SURROGATE], {"k": SURROGATE}, True]
    sends = [json.dumps({**SMS, k: v}) for k, v in itertools.product(
        ["text", "tag", "from", "to", "media", "applicationId", "priority", "expiration", "unknown"], values)]
    sends += [DEEP, NESTED_40, "null", "1e999999", '"' + SURROGATE + '"', "{" * 1000]
    channel = {"channel": "SMS", "from": "+15554443333", "applicationId": "a", "content": {"text": "x"}}
    rbm = {"to": "+15552221111", "channelList": [channel]}
    multichannel = [json.dumps({**rbm, k: v}) for k, v in itertools.product(["to", "tag", "channelList", "expiration"], values)]
    inbound = {"from": "+15552221111", "to": "+15554443333", "text": "hi"}
    inbounds = [json.dumps({**inbound, k: v}) for k, v in itertools.product(["from", "to", "text", "media", "accountId"], values)]
    inbounds += [DEEP, json.dumps({**inbound, "to": [f"+1555200{n:04d}" for n in range(4000)]})]
    advances = [DEEP, '{"seconds": ' + DEEP + "}", '{"seconds": 1e999}', '{"seconds": "' + SURROGATE + '"}']
    queries = [{"pageToken": _token("offset:²")}, {"pageToken": _token("offset:" + "9" * 5000)}, {"limit": "9" * 5000},
               {"fromDateTime": "²"}, {"sort": SURROGATE}, {"sourceTn": "+" + "1" * 5000}, {"errorCode": "1" * 5000}]
    headers = [{"Authorization": "Basic é"}, {"Authorization": "Basic " + "A" * 10_000}, {"Authorization": "Bearer é"},
               {"Continuation-Token": "é"}, {"Host": "rebound.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
               {"Host": "[::1"}, {"Origin": "http://[::1"}]
    tried, errors, accepted = 0, [], []
    async with Emulator() as emulator, aiohttp.ClientSession() as session:

        async def call(method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
            nonlocal tried
            tried += 1
            async with session.request(method, emulator.base_url + path, **kwargs) as resp:
                body = await resp.read()
                if resp.status >= 500:
                    errors.append((method, path, resp.status, body[:100]))
                return resp.status, body

        async def good_send() -> None:
            status, body = await call("POST", f"{api}/messages", json=SMS, headers=AUTH)
            assert status == 202
            accepted.append(json.loads(body)["id"])

        for raw in sends:
            status, body = await call("POST", f"{api}/messages", data=raw.encode("utf-8", "surrogatepass"), headers=JSON)
            if status == 202:
                accepted.append(json.loads(body)["id"])
            await good_send()
        for raw in multichannel:
            await call("POST", f"{api}/messages/multiChannel", data=raw.encode("utf-8", "surrogatepass"), headers=JSON)
        for raw in inbounds:
            await call("POST", "/_emulator/inbound", data=raw.encode("utf-8", "surrogatepass"))
        for raw in advances:
            await call("POST", "/_emulator/clock/advance", data=raw.encode("utf-8", "surrogatepass"))
        for text in UNBUILDABLE_YAML.values():
            await call("PUT", "/_emulator/scenario", data=text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        for query in queries:
            await call("GET", f"{api}/messages", params=query, headers=AUTH)
        for header in headers:
            for method, path in (("GET", f"{api}/messages"), ("GET", f"{api}/media"), ("POST", "/_emulator/inbound")):
                await call(method, path, headers={**AUTH, **header}, json=inbound if method == "POST" else None)
            await good_send()
        await call("POST", "/_emulator/clock/advance", json={"seconds": 86400})
        _, body = await call("GET", "/_emulator/messages", params={"accountId": ACCOUNT, "direction": "out"})
        listed = {m["id"] for m in json.loads(body)["messages"]}
        _, body = await call("GET", f"{api}/messages", params={"limit": "1000"}, headers=AUTH)
        rows = {m["messageId"] for m in json.loads(body)["messages"]}
    lost = [m for m in accepted if m not in listed or m not in rows]
    with capsys.disabled():
        print(f"\nhostile sweep: {tried} requests, {len(errors)} answered 5xx, {len(accepted)} accepted, {len(lost)} lost")
    assert errors == [] and lost == []
    assert len(accepted) >= len(sends)
