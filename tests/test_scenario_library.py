"""Every ready-made scenario (emulator/scenarios/library/): it validates with the CLI, loads by
name, and does what its comments say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import ACCOUNT, ANY_TIME, AUTH, advance, pin_era, send

from emulator.scenarios.format import Application, Scenario, load_scenario_file
from emulator.scenarios.planner import plan
from emulator.state.models import Message, RecipientStatus

SCENARIOS = Path(__file__).resolve().parent.parent / "emulator" / "scenarios" / "library"
OURS = "+15554443333"
PICTURE = "https://example.com/a.png"


def scenario(name: str) -> Scenario:
    return load_scenario_file(SCENARIOS / name)


def body(to: str | list[str], text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"applicationId": "app", "from": OURS, "to": [to] if isinstance(to, str) else to, "text": text, **extra}


def by_recipient(receiver) -> dict[str, list[tuple[str, Any]]]:
    out: dict[str, list[tuple[str, Any]]] = {}
    for event in receiver.events:
        out.setdefault(event["to"], []).append((event["type"], event.get("errorCode")))
    return out


async def statuses(client) -> dict[str, str]:
    resp = await client.get("/_emulator/messages", params={"direction": "out"})
    return {r["to"]: r["status"] for m in (await resp.json())["messages"] for r in m["recipients"]}


# -- the library as a whole ---------------------------------------------------------------


def test_library_is_complete():
    expected = {
        "default.yaml",
        "carrier-failures.yaml",
        "mms-delivery-receipts.yaml",
        "mms-without-receipts.yaml",
        "group-invalid-number-legacy.yaml",
        "group-invalid-number-correct.yaml",
        "flaky-webhook.yaml",
        "out-of-order.yaml",
        "inbound-conversation.yaml",
        "rate-limited.yaml",
        "messaging-2.0-early.yaml",
        "rbm-fallback.yaml",
        "rbm-conversation.yaml",
        "bandwidth-2027.yaml",
    }
    assert {p.name for p in SCENARIOS.glob("*.yaml")} == expected
    readme = (SCENARIOS / "README.md").read_text()
    for name in expected:
        assert name in readme, f"emulator/scenarios/library/README.md does not mention {name}"
        # The editor modeline first (tests/test_scenario_schema_file.py), then the opening comment.
        assert (SCENARIOS / name).read_text().splitlines()[1].startswith(f"# {name}:"), f"{name} does not open with its comment"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True, text=True, timeout=60)


def test_every_scenario_passes_the_cli_validator():
    files = sorted(str(p) for p in SCENARIOS.glob("*.yaml"))
    result = cli("validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{f}: ok" for f in files]


def test_cli_validator_names_file_path_and_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n"
        "  - {match: {to: '+15551230000'}, errorCode: 4720}\n"
        "  - {match: {kind: sms}, noReceipt: true}\n"
        "  - events:\n"
        "      - {event: message-failed, after: 30s, errorCode: 47200}\n"
    )
    good = SCENARIOS / "default.yaml"
    result = cli("validate", str(good), str(bad))
    assert result.returncode != 0
    assert result.stdout.strip() == f"{good}: ok"
    assert result.stderr.strip() == f"{bad}: rules[2].events[0].errorCode: Input should be less than or equal to 9999"


def test_cli_schema_prints_the_json_schema():
    import json

    result = cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert "rules" in schema["properties"] and "Rule" in schema["$defs"]


# -- default.yaml -------------------------------------------------------------------------


def _message(to: list[str], media: list[str] | None = None) -> Message:
    return Message(
        id="m", account_id=ACCOUNT, application_id="app", direction="out", from_=OURS, to=tuple(to), owner=OURS,
        time=0.0, segment_count=1, text="hi", media=tuple(media or ()), recipients={n: RecipientStatus(to=n) for n in to},
    )


def test_default_yaml_is_the_built_in_default():
    loaded = scenario("default.yaml")
    assert loaded == Scenario()
    app = Application(id="app")
    for message in [
        _message(["+15551230001"]),
        _message(["+15551230001"], [PICTURE]),
        _message(["+15551230001", "+15550104720", "+15550109902"]),
    ]:
        assert plan(message, app, loaded) == plan(message, app, Scenario())


async def test_default_yaml_end_to_end(make_client, receiver):
    client = await make_client(scenario("default.yaml"))
    await send(client, body("+15551230001"))
    await send(client, body("+15550104720"))
    await advance(client, 1)
    assert by_recipient(receiver) == {"+15551230001": [("message-delivered", None)], "+15550104720": [("message-failed", 4720)]}


# -- carrier-failures.yaml ------------------------------------------------------------------


async def test_carrier_failures(make_client, receiver):
    client = await make_client(scenario("carrier-failures.yaml"))
    for number in ["+15552004720", "+15552004721", "+15552004770", "+15552005600", "+15552005620", "+15552009902", "+15551230001"]:
        assert (await send(client, body(number))).status == 202
    await send(client, body("+15551230002", "FREE MONEY inside"))
    await send(client, body("+15552004711", media=[PICTURE]))
    await advance(client, 29)
    events = {e["to"]: e for e in receiver.events}
    assert events["+15552004721"]["errorCode"] == 4721
    assert events["+15552004721"]["description"] == "destination-tn-deactivated"
    assert events["+15552004770"]["carrierName"] == "T-Mobile USA, Inc."
    assert events["+15552005600"]["description"] == "destination-carrier-queue-full"
    assert events["+15552005620"]["description"] == "Carrier application error"
    assert events["+15551230001"]["type"] == "message-delivered"
    assert events["+15551230002"]["errorCode"] == 4770
    assert events["+15552004711"]["errorCode"] == 4711
    assert [t for t, _ in by_recipient(receiver)["+15552004720"]] == ["message-sending"]
    await advance(client, 1)
    late = [e for e in receiver.events if e["to"] == "+15552004720"][-1]
    assert (late["type"], late["errorCode"], late["description"], late["carrierName"]) == (
        "message-failed", 4720, "invalid-destination-address", "Verizon Wireless"
    )
    assert by_recipient(receiver)["+15552009902"] == [("message-sending", None)]
    await advance(client, 7200)
    assert by_recipient(receiver)["+15552009902"] == [("message-sending", None), ("message-failed", 9902)]
    assert [e for e in receiver.events if e["to"] == "+15552009902"][-1]["description"] == "delivery-receipt-expired"


# -- MMS delivery receipts ------------------------------------------------------------------


async def test_mms_delivery_receipts(make_client, receiver):
    client = await make_client(scenario("mms-delivery-receipts.yaml"))
    await send(client, body("+15551230001", media=[PICTURE]))
    await send(client, body("+15553004712", media=[PICTURE]))
    await send(client, body("+15553009999", media=[PICTURE]))
    await advance(client, 1)
    assert {to: [t for t, _ in ev] for to, ev in by_recipient(receiver).items()} == {
        "+15551230001": ["message-sending", "message-sent"],
        "+15553004712": ["message-sending", "message-sent"],
        "+15553009999": ["message-sending", "message-sent"],
    }
    await advance(client, 86400)
    got = by_recipient(receiver)
    assert got["+15551230001"][-1] == ("message-delivered", None)
    assert got["+15553004712"][-1] == ("message-failed", 4712)
    assert [t for t, _ in got["+15553009999"]] == ["message-sending", "message-sent"]  # never a receipt
    assert (await statuses(client))["+15553009999"] == "SENT"


async def test_bandwidth_2027(make_client, receiver):
    client = await make_client(scenario("bandwidth-2027.yaml"))
    clock = await (await client.get("/_emulator/clock")).json()
    assert clock["now"].startswith("2027-01-07T09:00:00") and clock["era"]["messageSending"] is False
    await send(client, body("+15551230001", media=[PICTURE]))
    await send(client, body(["+15551230001", "+15551230002"]))
    await send(client, body("+15553009999"))
    await advance(client, 60)
    got = by_recipient(receiver)
    assert sorted(t for t, _ in got["+15551230001"]) == ["message-delivered", "message-delivered", "message-sent", "message-sent"]
    assert "message-sending" not in {e["type"] for e in receiver.events}
    assert got["+15553009999"] == [("message-sent", None)]
    await advance(client, 73 * 3600 - 61)
    assert by_recipient(receiver)["+15553009999"] == [("message-sent", None)]
    await advance(client, 1)
    assert by_recipient(receiver)["+15553009999"] == [("message-sent", None), ("message-failed", 9902)]


async def test_mms_without_receipts(make_client, receiver):
    client = await make_client(scenario("mms-without-receipts.yaml"))
    await send(client, body("+15551230001", media=[PICTURE]))
    await send(client, body(["+15551230002", "+15551230003"]))
    await send(client, body("+15551230004"))
    await advance(client, 60)
    assert by_recipient(receiver) == {
        "+15551230001": [("message-delivered", None)],
        "+15551230002": [("message-delivered", None)],
        "+15551230003": [("message-delivered", None)],
        "+15551230004": [("message-delivered", None)],
    }
    mms = next(e for e in receiver.events if e["to"] == "+15551230001")
    assert mms["description"] == "Message delivered to carrier"


# -- the group invalid-number quirk ---------------------------------------------------------

GROUP = ["+15551230001", "+15559990001", "+15550104720"]


async def test_group_invalid_number_legacy(make_client, receiver):
    client = await make_client(scenario("group-invalid-number-legacy.yaml"))
    await send(client, body(GROUP))
    await advance(client, 60)
    assert by_recipient(receiver) == {
        "+15551230001": [("message-sending", None), ("message-delivered", None)],
        "+15559990001": [("message-sending", None), ("message-failed", 4406), ("message-delivered", None)],
        "+15550104720": [("message-sending", None), ("message-failed", 4720), ("message-delivered", None)],
    }
    # The emulator's own record keeps the truth.
    assert (await statuses(client)) == {"+15551230001": "DELIVERED", "+15559990001": "FAILED", "+15550104720": "FAILED"}


async def test_group_invalid_number_correct(make_client, receiver):
    client = await make_client(scenario("group-invalid-number-correct.yaml"))
    await send(client, body(GROUP))
    await advance(client, 60)
    assert by_recipient(receiver) == {
        "+15551230001": [("message-sending", None), ("message-delivered", None)],
        "+15559990001": [("message-sending", None), ("message-failed", 4406)],
        "+15550104720": [("message-sending", None), ("message-failed", 4720)],
    }


# -- flaky-webhook.yaml ---------------------------------------------------------------------


async def attempts(client) -> list[tuple[str, list[int | None]]]:
    resp = await client.get("/_emulator/callbacks")
    return [(c["state"], [a["statusCode"] for a in c["attempts"]]) for c in (await resp.json())["callbacks"]]


async def test_flaky_webhook_retries_fast_and_gives_up_within_minutes(make_client, receiver):
    loaded = scenario("flaky-webhook.yaml")
    app = loaded.application("any-app")
    assert (app.callback_timeout, app.retry_window, app.duplicates) == (2.0, 300.0, 1)
    client = await make_client(loaded)
    receiver.statuses = [500, 503]
    await send(client, body("+15551230001"))
    await advance(client, 1)
    assert len(receiver.requests) == 1
    await advance(client, 5)  # retry 5 s after the first attempt
    assert len(receiver.requests) == 2
    await advance(client, 10)  # and 15 s after it
    # duplicates: 1 -> the delivered event is POSTed once more, straight away.
    assert [r["status"] for r in receiver.requests] == [500, 503, 200, 200]
    assert receiver.requests[2]["body"] == receiver.requests[3]["body"]
    assert [codes for state, codes in await attempts(client) if state == "delivered"] == [[500, 503, 200, 200]]
    # A webhook that never answers 2xx is given up after five minutes, not 24 hours.
    receiver.requests.clear()
    receiver.statuses = [500] * 50
    await send(client, body("+15551230002"))
    await advance(client, 301)
    journal = [a for a in await attempts(client) if a[0] != "delivered"]
    assert journal and all(state == "exhausted" and codes == [500] * 5 for state, codes in journal)


# -- out-of-order.yaml ----------------------------------------------------------------------


async def test_out_of_order(make_client, receiver):
    client = await make_client(scenario("out-of-order.yaml"))
    await send(client, body("+15551230001", media=[PICTURE]))
    await send(client, body("+15551230002", tag="late-failure"))
    await advance(client, 60)
    assert by_recipient(receiver) == {
        "+15551230001": [("message-delivered", None), ("message-sending", None)],
        "+15551230002": [("message-delivered", None), ("message-failed", 4720)],
    }
    # A terminal status never moves backwards in the emulator's record.
    assert (await statuses(client))["+15551230001"] == "DELIVERED"


# -- inbound-conversation.yaml --------------------------------------------------------------


def inbound(receiver) -> list[dict]:
    return [e for e in receiver.events if e["type"] == "message-received"]


async def test_inbound_conversation(make_client, receiver):
    client = await make_client(scenario("inbound-conversation.yaml"))
    await advance(client, 10)
    (first,) = inbound(receiver)
    assert (first["message"]["from"], first["to"], first["message"]["text"]) == ("+15557770000", OURS, "Hi! Is this the support line?")
    assert first["message"]["applicationId"] == "my-app"
    # Reply to it: the handset answers.
    await send(client, {"applicationId": "my-app", "from": OURS, "to": ["+15557770000"], "text": "Hello, how can I help?"})
    await send(client, {"applicationId": "my-app", "from": OURS, "to": ["+15557770002"], "text": "STOP"})
    await send(client, {"applicationId": "my-app", "from": OURS, "to": ["+15557770003"], "text": "Your order shipped"})
    await advance(client, 3)
    replies = {e["message"]["from"]: e["message"]["text"] for e in inbound(receiver)[1:]}
    assert replies == {"+15557770000": "Hello! Thanks for getting in touch.", "+15557770002": "You have been unsubscribed."}
    await advance(client, 7)
    generated = inbound(receiver)[-1]
    assert generated["message"]["from"] == "+15557770003" and generated["message"]["text"]
    # At one minute: a picture to both numbers, one callback per number, each its own id.
    await advance(client, 40)
    group = [e for e in inbound(receiver) if e["message"]["from"] == "+15557770001"]
    assert sorted(e["to"] for e in group) == ["+15554443333", "+15554443334"]
    assert len({e["message"]["id"] for e in group}) == 2
    assert all(e["message"]["media"] == ["https://example.com/photos/cat.jpg"] for e in group)
    # Three strangers, five minutes apart, then silence.
    before = len(inbound(receiver))
    await advance(client, 3600)
    strangers = inbound(receiver)[before:]
    assert len(strangers) == 3
    assert len({e["message"]["from"] for e in strangers}) == 3


async def test_inbound_conversation_repeats_with_its_seed(make_client, receiver):
    runs = []
    for _ in range(2):
        receiver.requests.clear()
        client = await make_client(scenario("inbound-conversation.yaml"))
        await advance(client, 900)
        runs.append([(e["message"]["from"], e["message"]["text"]) for e in inbound(receiver)])
    assert runs[0] == runs[1] and len(runs[0]) == 6


# -- rate-limited.yaml ----------------------------------------------------------------------


async def test_rate_limited(make_client, receiver):
    client = await make_client(scenario("rate-limited.yaml"))
    answers = [(await send(client, body(f"+155512300{n:02d}"))).status for n in range(11)]
    assert answers == [202] * 10 + [429]
    refused = await send(client, body("+15551239999"))
    assert (await refused.json())["type"] == "max-message-queue-size-exceeded"
    # The queue drains at one segment per second; queued messages go out in turn.
    await advance(client, 1)
    assert len(receiver.events) == 1
    await advance(client, 9)
    assert len(receiver.events) == 10
    # Every 5th overload send gets a 503 (once there is room in the queue).
    await advance(client, 10)
    overload = [(await send(client, body("+15551230000", tag="overload"))).status for _ in range(5)]
    assert overload == [202, 202, 202, 202, 503]
    # Another account has its own queue.
    assert (await send(client, body("+15551230000"), "9900001")).status == 202


# -- messaging-2.0-early.yaml ---------------------------------------------------------------


async def test_messaging_2_0_early(make_client, receiver):
    client = await make_client(scenario("messaging-2.0-early.yaml"))
    listing = await client.get(f"/api/v2/users/{ACCOUNT}/messages", params=ANY_TIME, headers=AUTH)
    assert listing.status == 403
    await send(client, body("+15551230001", media=[PICTURE]))
    await send(client, body(["+15551230002", "+15550104720"]))
    await advance(client, 60)
    assert by_recipient(receiver) == {
        "+15551230001": [("message-delivered", None)],
        "+15551230002": [("message-delivered", None)],
        "+15550104720": [("message-failed", 4720), ("message-delivered", None)],
    }
    # 3.75 MB media files are accepted (3.5 MB today).
    big = b"x" * 3_700_000
    headers = {**AUTH, "Content-Type": "image/png"}
    assert (await client.put(f"/api/v2/users/{ACCOUNT}/media/big.png", data=big, headers=headers)).status == 204


@pytest.mark.parametrize("name", ["default.yaml"])
async def test_todays_media_limit_is_lower(make_client, name):
    client = await make_client(scenario(name))
    headers = {**AUTH, "Content-Type": "image/png"}
    resp = await client.put(f"/api/v2/users/{ACCOUNT}/media/big.png", data=b"x" * 3_700_000, headers=headers)
    assert resp.status == 400


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
async def test_get_scenario_output_loads_back_unchanged(make_client, path):
    client = await make_client(load_scenario_file(path))
    shown = await (await client.get("/_emulator/scenario")).json()
    resp = await client.put("/_emulator/scenario", json=shown)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == shown
    assert pin_era(load_scenario_file(path)).model_dump() == Scenario.model_validate(shown).model_dump()


async def test_cli_serves_a_scenario_file_on_the_realtime_clock(receiver, start_cli):
    """--scenario with the real CLI: scheduled inbound traffic fires on the realtime clock too."""
    import asyncio

    await asyncio.to_thread(
        start_cli, "--time-scale", "200", "--scenario", str(SCENARIOS / "inbound-conversation.yaml"),
        "--callback-url", receiver.url,
    )
    # at: 10s of virtual time is 50 ms of real time at 200x.
    events = await receiver.wait_for(1, timeout=10)
    assert events[0]["type"] == "message-received"
    assert events[0]["message"]["text"] == "Hi! Is this the support line?"


def test_cli_refuses_to_serve_an_invalid_scenario(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n  - {status: 418}\n")
    result = cli("--port", "0", "--scenario", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"{bad}: faults[0].status: Input should be 429, 500 or 503"
    assert result.stdout == ""


# -- RBM (docs/multichannel.md) -------------------------------------------------------------

MULTICHANNEL = f"/api/v2/users/{ACCOUNT}/messages/multiChannel"


def rbm_then_sms(to: str, text: str = "hi", suggestions: list[dict[str, Any]] | None = None, app: str = "app") -> dict[str, Any]:
    rbm: dict[str, Any] = {"text": text}
    if suggestions:
        rbm["suggestions"] = suggestions
    return {
        "to": to,
        "channelList": [
            {"from": "BandwidthRBM", "applicationId": app, "channel": "RBM", "content": rbm},
            {"from": OURS, "applicationId": app, "channel": "SMS", "content": {"text": text}},
        ],
    }


async def send_multichannel(client, payload: dict[str, Any]) -> str:
    resp = await client.post(MULTICHANNEL, json=payload, headers=AUTH)
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["data"]["id"])


async def test_rbm_fallback(make_client, receiver):
    client = await make_client(scenario("rbm-fallback.yaml"))
    handsets = ["+15557770001", "+15557771001", "+15557772001", "+15557773001", "+15557774001", "+15551230001"]
    ids = {to: await send_multichannel(client, rbm_then_sms(to)) for to in handsets}
    await advance(client, 59)
    assert not [e for e in receiver.events if e["to"] == "+15557773001" and e["type"] != "message-sent"]
    await advance(client, 60)
    seen: dict[str, list[tuple[str, str, Any]]] = {}
    for event in receiver.events:
        if event["type"] != "message-sent":
            seen.setdefault(event["to"], []).append((event["type"], event["message"]["channel"], event.get("errorCode")))
    assert seen == {
        "+15557770001": [("message-delivered", "RBM", None), ("message-read", "RBM", None)],
        "+15557771001": [("message-delivered", "SMS", None)],
        "+15557772001": [("message-delivered", "SMS", None)],
        "+15557773001": [("message-delivered", "SMS", None)],
        "+15557774001": [("message-failed", "SMS", 4770)],
        "+15551230001": [("message-delivered", "SMS", None)],
    }
    resp = await client.get(f"/_emulator/messages/{ids['+15557772001']}")
    attempts = (await resp.json())["multichannel"]["attempts"]
    assert [(a["channel"], a["outcome"], a.get("errorCode")) for a in attempts] == [("RBM", "failed", 4750), ("SMS", "delivered", None)]


async def test_rbm_conversation(make_client, receiver):
    client = await make_client(scenario("rbm-conversation.yaml"))
    confirm = [{"type": "REPLY", "text": "Confirm", "postbackData": "eWVz"}]
    share = [{"type": "REQUEST_LOCATION", "text": "Share location", "postbackData": "bG9j"}]
    table = await send_multichannel(client, rbm_then_sms("+15557770001", "Your table is ready", confirm, "my-rbm-app"))
    where = await send_multichannel(client, rbm_then_sms("+15557770002", "Where are you?", share, "my-rbm-app"))
    other = await send_multichannel(client, rbm_then_sms("+15557770003", "Hello", None, "my-rbm-app"))
    fallback = await send_multichannel(client, rbm_then_sms("+15550201234", "Hello", None, "my-rbm-app"))
    await advance(client, 60)
    answers = {
        e["message"]["from"]: (e["type"], e["message"].get("channel"), e["message"]["text"])
        for e in receiver.events
        if e["message"]["direction"] == "in"
    }
    assert answers == {
        "+15557770001": ("suggestion-response", "RBM", "Confirm"),
        "+15557770002": ("requested-location-response", "RBM", ""),
        "+15557770003": ("message-received", "RBM", "Thanks!"),
        "+15550201234": ("message-received", None, "OK"),
    }
    tapped = next(e for e in receiver.events if e["type"] == "suggestion-response")
    assert tapped["message"]["suggestionResponse"]["pairedMessageId"] == table
    located = next(e for e in receiver.events if e["type"] == "requested-location-response")
    assert located["message"]["locationResponse"] == {"latitude": "51.5007", "longitude": "-0.1246"}
    reads = {e["message"]["id"] for e in receiver.events if e["type"] == "message-read"}
    assert reads == {table, where, other} and fallback not in reads
