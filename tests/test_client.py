"""emulator.testing.client (async and sync), emulator.testing.runner and the assertion helpers' messages."""

from __future__ import annotations

import inspect
import re

import aiohttp
import pytest
from support import SUITE_ERA

from emulator.keys import QUERIES
from emulator.scenarios.format import Scenario, ScenarioError
from emulator.testing.client import AsyncClient, Client, EmulatorError, WaitTimeout
from emulator.testing.receiver import CallbackReceiver
from emulator.testing.runner import BackgroundEmulator, Emulator, load_scenario

US = "+15554443333"
HANDSET = "+15552221111"
MEDIA = ["https://example.com/cat.png"]


@pytest.fixture
async def hook():
    receiver = CallbackReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def emu(hook):
    # The suite's era, pinned (tests/conftest.py, SUITE_ERA).
    async with Emulator({"era": SUITE_ERA}, clock="manual", callback_url=hook.url) as emulator:
        yield emulator


# -- the runner ------------------------------------------------------------------------------


async def test_emulator_serves_on_loopback_and_is_a_client(emu, hook):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emu.base_url)
    assert emu.api_url == emu.base_url + "/api/v2"
    assert (await emu.health())["clock"] == "manual"
    message = await emu.send(to=HANDSET, from_=US, text="hi", tag="t")
    assert message["tag"] == "t" and message["applicationId"] == "emulator-application"
    await emu.advance(1)
    await emu.assert_callbacks(message["id"], ["message-delivered"])
    assert hook.types() == ["message-delivered"]


async def test_emulator_stops_cleanly_and_frees_its_port(hook):
    emulator = Emulator(callback_url=hook.url)
    url = await emulator.start()
    await emulator.stop()
    probe = AsyncClient(url)
    with pytest.raises(aiohttp.ClientConnectionError):
        await probe.health()
    await probe.close()


def test_scenario_sources(tmp_path):
    path = tmp_path / "s.yml"
    path.write_text("name: from-file\n")
    assert load_scenario(None).name == "default"
    assert load_scenario(Scenario(name="obj")).name == "obj"
    assert load_scenario({"name": "dict"}).name == "dict"
    assert load_scenario("name: text\nmagicNumbers: false\n").magic_numbers is False
    assert load_scenario(path).name == "from-file"
    assert load_scenario("s.yml", tmp_path).name == "from-file"
    with pytest.raises(ScenarioError, match="magicNumbers"):
        load_scenario({"magicNumbers": "sometimes"})
    with pytest.raises(ScenarioError, match="cannot read file"):
        load_scenario(tmp_path / "missing.yml")


async def test_emulator_with_a_scenario_and_realtime_clock_long_polls(hook):
    scenario = {"name": "fast", "defaults": {"sms": [{"event": "message-delivered", "after": "50ms"}]}}
    async with Emulator(scenario, clock="realtime", callback_url=hook.url) as emu:
        assert (await emu.scenario())["name"] == "fast"
        message = await emu.send(to=HANDSET, from_=US, text="hi")
        # No sleep: the long-poll answers once the callback is delivered.
        [callback] = await emu.wait_for_callbacks(message["id"], state="delivered", timeout=10)
        assert callback["type"] == "message-delivered"
        with pytest.raises(EmulatorError) as error:
            await emu.advance(1)
        assert error.value.status == 409 and error.value.type == "conflict"


async def test_in_process_calls_answer_as_their_endpoints_do(emu, hook):
    # advance and message are answered without HTTP (emulator/testing/runner.py): the same
    # answers and the same errors as the endpoints, which emu.request reaches over HTTP.
    message = await emu.send(to=HANDSET, from_=US, text="hi", media=MEDIA)
    assert await emu.advance(1) == await emu.request("GET", "/_emulator/clock")
    detail = await emu.message(message["id"])
    assert detail == await emu.request("GET", f"/_emulator/messages/{message['id']}")
    # A copy: changing it changes nothing in the emulator.
    detail["callbacks"][0]["event"]["type"] = "changed"
    detail["callbacks"].clear()
    assert (await emu.message(message["id"]))["callbacks"][0]["event"]["type"] == "message-sending"
    for call, method, path, body in (
        (lambda: emu.advance(-1), "POST", "/_emulator/clock/advance", {"seconds": -1}),
        (lambda: emu.advance(1e12), "POST", "/_emulator/clock/advance", {"seconds": 1e12}),
        (lambda: emu.message("nope"), "GET", "/_emulator/messages/nope", None),
    ):
        with pytest.raises(EmulatorError) as direct:
            await call()
        with pytest.raises(EmulatorError) as over_http:
            await emu.request(method, path, json_body=body)
        assert (direct.value.status, direct.value.body, str(direct.value)) == (
            over_http.value.status,
            over_http.value.body,
            str(over_http.value),
        )


async def test_in_process_calls_open_no_connection(emu):
    message = await emu.send(to=HANDSET, from_=US, text="hi")
    await emu.close()  # the send's HTTP session
    await emu.advance(1)
    await emu.assert_callbacks(message["id"], ["message-delivered"])
    await emu.assert_attempts(message["id"], [200])
    assert emu._session is None


async def test_in_process_call_hitting_a_bug_answers_500_and_counts_it(emu, monkeypatch):
    message = await emu.send(to=HANDSET, from_=US, text="hi")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(emu.app[QUERIES], "message_detail", broken)
    with pytest.raises(EmulatorError) as direct:
        await emu.message(message["id"])
    with pytest.raises(EmulatorError) as over_http:
        await emu.request("GET", f"/_emulator/messages/{message['id']}")
    assert direct.value.status == over_http.value.status == 500
    assert direct.value.body == over_http.value.body
    errors = (await emu.health())["internalErrors"]
    assert errors["count"] == 2
    assert [e["where"] for e in errors["recent"]] == [f"GET /_emulator/messages/{message['id']}"] * 2


# -- the async client ------------------------------------------------------------------------


async def test_send_errors_raise_with_bandwidths_description(emu):
    with pytest.raises(EmulatorError) as error:
        await emu.send(to="555", from_=US, text="hi")
    assert error.value.status == 400
    assert error.value.type == "request-validation"
    assert "'555' must be replaced with a valid E164" in str(error.value)


async def test_unknown_message_raises_not_found(emu):
    with pytest.raises(EmulatorError, match="answered 404: not-found: no message with id 'nope'"):
        await emu.message("nope")


async def test_messages_and_callbacks_are_scoped_to_the_clients_account(emu):
    other = AsyncClient(emu.base_url, account_id="4242")
    try:
        mine = await emu.send(to=HANDSET, from_=US, text="mine")
        theirs = await other.send(to=HANDSET, from_=US, text="theirs")
        assert [m["id"] for m in await emu.messages()] == [mine["id"]]
        assert [m["id"] for m in await other.messages()] == [theirs["id"]]
        assert len(await emu.messages(all_accounts=True)) == 2
        assert [c["messageId"] for c in await other.callbacks()] == [theirs["id"]]
        assert (await other.reset()) == {"reset": "4242", "messages": 1, "callbacks": 1, "cancelled": 1}
        assert [m["id"] for m in await emu.messages(all_accounts=True)] == [mine["id"]]
    finally:
        await other.close()


async def test_inbound_and_waiting_for_messages(emu, hook):
    [inbound] = await emu.inbound(from_=HANDSET, to=US, text="STOP")
    assert inbound["accountId"] == emu.account_id
    [found] = await emu.wait_for_messages(direction="in", from_=HANDSET, timeout=1)
    assert found["id"] == inbound["id"]
    await emu.advance(0)
    assert hook.events[0]["type"] == "message-received"
    with pytest.raises(WaitTimeout) as waited:
        await emu.wait_for_messages(direction="out", to=HANDSET, timeout=0.05)
    assert "waited 0.05s for 1 message(s) with accountId=9900000, direction=out, to=+15552221111; found 0" in str(waited.value)


async def test_wait_for_callbacks_timeout_lists_what_there_is(emu):
    message = await emu.send(to=HANDSET, from_=US, text="hi", media=MEDIA)
    await emu.advance(1)
    with pytest.raises(WaitTimeout) as waited:
        await emu.wait_for_callbacks(message["id"], state="delivered", count=2, timeout=0.05)
    text = str(waited.value)
    assert "for 2 callback(s)" in text and "found 1" in text
    assert "message-sending to +15552221111: delivered" in text


async def test_clock_and_scenario_round_trip(emu, tmp_path):
    before = await emu.clock()
    after = await emu.advance(90)
    assert after["epoch"] - before["epoch"] == pytest.approx(90)
    assert (await emu.set_scenario({"name": "dict"}))["name"] == "dict"
    assert (await emu.set_scenario("name: text\n"))["name"] == "text"
    (tmp_path / "s.yml").write_text("name: file\n")
    assert (await emu.set_scenario(tmp_path / "s.yml"))["name"] == "file"
    assert (await emu.set_scenario(Scenario(name="object")))["name"] == "object"
    with pytest.raises(EmulatorError) as error:
        await emu.set_scenario({"groupInvalidNumber": "maybe"})
    assert error.value.status == 400 and "groupInvalidNumber" in str(error.value)
    assert (await emu.openapi())["info"]["title"] == "bandwidth-emulator control API"


# -- assertion helpers and their failure messages -------------------------------------------


async def test_assert_callbacks_failure_shows_the_journal(emu):
    message = await emu.send(to=HANDSET, from_=US, text="hi", media=MEDIA)
    await emu.advance(1)  # message-sending (0.5 s) happened, message-delivered (2 s) not yet
    with pytest.raises(AssertionError) as failed:
        await emu.assert_callbacks(message["id"], ["message-sending", "message-delivered"])
    text = str(failed.value)
    assert f"callbacks of message {message['id']} are not as expected" in text
    assert "expected: ['message-sending', 'message-delivered']" in text
    assert "actual:   ['message-sending']" in text
    assert "    'message-sending'\n  - 'message-delivered'" in text
    assert re.search(r"message-sending +to \+15552221111 +delivered +1 attempt: 200 at \+0\.500s", text)
    assert re.search(
        r"message-delivered +to \+15552221111 +pending +not attempted yet; next attempt at \+2\.000s \(advance the clock\?\)", text
    )
    await emu.advance(1)
    await emu.assert_callbacks(message["id"], ["message-sending", "message-delivered"])


async def test_assert_callbacks_per_recipient(emu):
    group = await emu.send(to=[HANDSET, "+15550104720"], from_=US, text="hi all")
    await emu.advance(60)
    await emu.assert_callbacks(group["id"], ["message-sending", "message-failed"], recipient="+15550104720")
    await emu.assert_callbacks(group["id"], ["message-sending", "message-delivered"], recipient=HANDSET)
    with pytest.raises(AssertionError, match=r"to \+15550104720 are not as expected"):
        await emu.assert_callbacks(group["id"], ["message-sending", "message-delivered"], recipient="+15550104720")


async def test_assert_attempts_and_its_failure_message(emu, hook):
    hook.fail(times=2, status=503)
    message = await emu.send(to=HANDSET, from_=US, text="hi")
    await emu.advance(3600)
    await emu.assert_attempts(message["id"], [503, 503, 200], state="delivered", offsets=[0, 60, 300])
    with pytest.raises(AssertionError) as failed:
        await emu.assert_attempts(message["id"], [503, 200], state="exhausted", offsets=[0, 60])
    text = str(failed.value)
    assert "attempts of the message-delivered callback to +15552221111" in text
    assert "attempts expected: [503, 200]" in text
    assert "attempts actual:   [503, 503, 200]" in text
    assert "state expected: 'exhausted', actual: 'delivered'" in text
    assert "offsets expected: [0, 60]" in text and "offsets actual:   [0.0, 60.0, 300.0]" in text
    assert "3 attempts: 503 at +1.000s, 503 at +61.000s, 200 at +301.000s" in text


async def test_assert_attempts_needs_exactly_one_callback(emu):
    message = await emu.send(to=HANDSET, from_=US, text="hi", media=MEDIA)
    await emu.advance(5)
    with pytest.raises(AssertionError, match=r"2 callbacks of message .* match no filter; name the type and recipient"):
        await emu.assert_attempts(message["id"], [200])
    with pytest.raises(AssertionError, match=r"no callback of message .* match type='message-failed'"):
        await emu.assert_attempts(message["id"], [200], type="message-failed")
    await emu.assert_attempts(message["id"], [200], type="message-sending")


async def test_assert_attempts_with_error_texts(hook):
    scenario = {"applications": [{"id": "*", "statusCallbackUrl": "http://127.0.0.1:9/down", "retrySchedule": [0, 60]}]}
    async with Emulator(scenario) as emu:
        message = await emu.send(to=HANDSET, from_=US, text="hi")
        await emu.advance(120)
        await emu.assert_attempts(message["id"], ["connection refused", "connection refused"], state="exhausted")


# -- the sync facade -------------------------------------------------------------------------


def test_sync_client_against_a_background_emulator():
    with BackgroundEmulator(clock="manual") as emu:
        assert isinstance(emu, Client)
        message = emu.send(to=HANDSET, from_=US, text="hi")
        emu.advance(1)
        # No callback URL configured: the event happens, its callback is skipped.
        emu.assert_callbacks(message["id"], ["message-delivered"])
        [callback] = emu.callbacks(message["id"])
        assert callback["state"] == "skipped"
        with pytest.raises(AssertionError, match="no callback URL for this application"):
            emu.assert_callbacks(message["id"], [])
        with pytest.raises(EmulatorError):
            emu.message("nope")


async def test_sync_client_works_inside_an_async_test():
    # The facade runs on its own loop, so this test's loop is only blocked for each call.
    background = BackgroundEmulator(clock="manual")
    emu = background.start()
    try:
        with Client(emu.base_url) as standalone:
            message = standalone.send(to=HANDSET, from_=US, text="hi")
            standalone.advance(1)
            standalone.assert_callbacks(message["id"], ["message-delivered"])
    finally:
        background.stop()


def _public_methods(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


def test_the_blocking_client_has_every_method_of_the_async_one_with_its_signature():
    blocking = _public_methods(Client)
    asynchronous = {name: f for name, f in _public_methods(AsyncClient).items() if inspect.iscoroutinefunction(f)}
    assert sorted(set(asynchronous) - set(blocking)) == []
    for name, method in asynchronous.items():
        mine = blocking[name]
        # Real methods of their own, not wrappers made at import.
        assert not hasattr(mine, "__wrapped__"), name
        assert not inspect.iscoroutinefunction(mine), name
        assert inspect.signature(mine) == inspect.signature(method), name
        assert inspect.getdoc(mine) == inspect.getdoc(method), name
