"""The pytest plugin, run on generated test files with pytester (in-process)."""

from __future__ import annotations

import pytest

from emulator.testing.pytest_plugin import worker_account
from emulator.testing.runner import BackgroundEmulator

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")


def in_order(text: str, parts: list[str]) -> None:
    """Each part appears in ``text``, after the previous one."""
    at = 0
    for part in parts:
        found = text.find(part, at)
        assert found >= 0, f"{part!r} not found after position {at} in:\n{text}"
        at = found + len(part)


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_fixtures_send_advance_and_assert(inner):
    inner.makepyfile(
        """
        def test_delivered(bandwidth_emulator, callback_receiver):
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(1)
            bandwidth_emulator.assert_callbacks(message["id"], ["message-delivered"])
            assert callback_receiver.types() == ["message-delivered"]
            assert callback_receiver.requests[0].headers["User-Agent"] == "BandwidthAPI/v2"
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_each_test_starts_from_a_clean_account_and_receiver(inner):
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("run", [1, 2, 3])
        def test_alone(bandwidth_emulator, callback_receiver, run):
            assert bandwidth_emulator.messages() == []
            assert callback_receiver.requests == []
            assert bandwidth_emulator.clock()["pending"] == 0
            bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text=f"run {run}")
            callback_receiver.fail(times=5)  # must not leak into the next test
            bandwidth_emulator.advance(1)
            assert len(bandwidth_emulator.messages()) == 1
        """
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_one_emulator_per_session(inner):
    inner.makepyfile(
        """
        urls = set()

        def test_a(bandwidth_emulator):
            urls.add(bandwidth_emulator.base_url)

        def test_b(bandwidth_emulator):
            urls.add(bandwidth_emulator.base_url)
            assert len(urls) == 1
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_scenario_marker_takes_a_dict_a_file_or_yaml_and_is_undone_after_the_test(inner):
    inner.makefile(".yml", quirk="name: from-file\ngroupInvalidNumber: legacy\n")
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.bandwidth_scenario({"name": "from-dict"})
        def test_dict(bandwidth_emulator):
            assert bandwidth_emulator.scenario()["name"] == "from-dict"

        @pytest.mark.bandwidth_scenario("quirk.yml")
        def test_file(bandwidth_emulator):
            assert bandwidth_emulator.scenario()["groupInvalidNumber"] == "legacy"

        @pytest.mark.bandwidth_scenario("name: from-text\\nmagicNumbers: false\\n")
        def test_text(bandwidth_emulator):
            assert bandwidth_emulator.scenario()["magicNumbers"] is False

        def test_set_in_the_test(bandwidth_emulator):
            bandwidth_emulator.set_scenario({"name": "set-by-test"})

        def test_default_again(bandwidth_emulator):
            assert bandwidth_emulator.scenario()["name"] == "default"
        """
    )
    inner.runpytest().assert_outcomes(passed=5)


def test_scenario_as_a_fixture_parameter(inner):
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize(
            "bandwidth_emulator, quirk",
            [({"groupInvalidNumber": "legacy"}, "legacy"), (None, "correct"), ("groupInvalidNumber: correct\\n", "correct")],
            indirect=["bandwidth_emulator"],
        )
        def test_modes(bandwidth_emulator, quirk):
            assert bandwidth_emulator.scenario()["groupInvalidNumber"] == quirk
        """
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_invalid_scenario_marker_fails_the_test_clearly(inner):
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.bandwidth_scenario({"groupInvalidNumber": "sometimes"})
        def test_bad(bandwidth_emulator):
            pass

        @pytest.mark.bandwidth_scenario("missing.yml")
        def test_missing(bandwidth_emulator):
            pass
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.bandwidth_scenario: <scenario dict>: groupInvalidNumber: Input should be 'correct' or 'legacy'*",
            "*@pytest.mark.bandwidth_scenario: *missing.yml: (top level): cannot read file*",
        ]
    )


def test_scenario_ini_option_sets_the_session_default(inner):
    inner.makefile(".yml", session="name: session-wide\n")
    inner.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nbandwidth_scenario = session.yml\n")
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.bandwidth_scenario({"name": "other"})
        def test_marker(bandwidth_emulator):
            assert bandwidth_emulator.scenario()["name"] == "other"

        def test_back_to_session_default(bandwidth_emulator):
            assert bandwidth_emulator.scenario()["name"] == "session-wide"
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_assert_callbacks_failure_output(inner):
    inner.makepyfile(
        """
        def test_expects_too_much(bandwidth_emulator):
            message = bandwidth_emulator.send(to="+15550104720", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(1)
            bandwidth_emulator.assert_callbacks(message["id"], ["message-delivered"])
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(failed=1)
    in_order(
        result.stdout.str(),
        [
            '>       bandwidth_emulator.assert_callbacks(message["id"], ["message-delivered"])',
            "E       AssertionError: callbacks of message ",
            " are not as expected",
            "E         expected: ['message-delivered']",
            "E         actual:   ['message-failed']",
            "E       diff (- expected, + actual):",
            "E         - 'message-delivered'",
            "E         + 'message-failed'",
            "E       journal of message ",
            "E         message-failed     to +15550104720  delivered 1 attempt: 200 at +1.000s",
            "test_assert_callbacks_failure_output.py:4: AssertionError",
        ],
    )
    # The traceback stops at the test: the helpers' own frames are hidden.
    assert "assertions.py" not in result.stdout.str()


def test_assert_attempts_failure_output_and_receiver_failures(inner):
    inner.makepyfile(
        """
        def test_retries(bandwidth_emulator, callback_receiver):
            callback_receiver.fail(times=3, status=503)
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(86400)
            bandwidth_emulator.assert_attempts(message["id"], [503, 200])
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(failed=1)
    in_order(
        result.stdout.str(),
        [
            "E       AssertionError: attempts of the message-delivered callback to +15552221111 (message ",
            "E         attempts expected: [503, 200]",
            "E         attempts actual:   [503, 503, 503, 200]",
            "E         message-delivered  to +15552221111  delivered 4 attempts: "
            "503 at +1.000s, 503 at +61.000s, 503 at +301.000s, 200 at +901.000s",
        ],
    )


def test_receiver_hangs_until_the_emulator_times_out(inner):
    inner.makepyfile(
        """
        def test_hang(bandwidth_emulator, callback_receiver):
            # An application the scenario names takes its callback URL from the scenario.
            bandwidth_emulator.set_scenario(
                {"applications": [{"id": "*", "statusCallbackUrl": callback_receiver.url, "callbackTimeout": "100ms"}]}
            )
            callback_receiver.hang(times=1)
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(30)  # the first attempt hangs until its 100 ms are up
            # The answered retry is not raced against 100 ms on a busy machine.
            bandwidth_emulator.update_scenario({"applications": [{"id": "*", "callbackTimeout": "30s"}]})
            bandwidth_emulator.advance(90)
            bandwidth_emulator.assert_attempts(message["id"], ["timeout", 200], state="delivered")
            assert [r.status for r in callback_receiver.requests] == [None, 200]
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_receiver_answers_a_fixed_status_until_exhausted(inner):
    inner.makepyfile(
        """
        def test_gone(bandwidth_emulator, callback_receiver):
            callback_receiver.respond(410)
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(25 * 3600)
            callback = bandwidth_emulator.assert_attempts(message["id"], [410] * 10, state="exhausted")
            assert callback["nextAttemptAt"] is None
            assert len(callback_receiver.requests) == 10
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_async_test_with_its_own_webhook_on_its_loop(inner):
    inner.makepyfile(
        """
        from aiohttp import web

        async def test_my_handler(bandwidth_emulator, aiohttp_server):
            seen = []

            async def webhook(request):
                seen.extend(await request.json())
                return web.Response(status=204)

            app = web.Application()
            app.router.add_post("/bandwidth/status", webhook)
            server = await aiohttp_server(app)
            bandwidth_emulator.set_scenario(
                {"applications": [{"id": "my-app", "statusCallbackUrl": str(server.make_url("/bandwidth/status"))}]}
            )
            # The webhook runs on this test's loop: talk to the emulator without blocking it.
            async with bandwidth_emulator.async_client() as emu:
                message = await emu.send(to="+15552221111", from_="+15554443333", text="hi", application_id="my-app")
                await emu.advance(1)
                await emu.assert_callbacks(message["id"], ["message-delivered"])
            assert [e["type"] for e in seen] == ["message-delivered"]
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_async_test_with_the_blocking_client(inner):
    inner.makepyfile(
        """
        async def test_async(bandwidth_emulator, callback_receiver):
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(1)
            bandwidth_emulator.assert_callbacks(message["id"], ["message-delivered"])
            assert (await callback_receiver.wait_for_async(1))[0].status == 200
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_worker_account_per_xdist_worker(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert worker_account() == "9900000"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert worker_account() == "9910003"


def test_remote_emulator_is_shared_by_account(inner, monkeypatch):
    """Two workers on one emulator (--bandwidth-emulator-url): each sees and resets only its account."""
    with BackgroundEmulator(clock="manual") as shared:
        neighbour = shared.send(to="+15552221111", from_="+15554443333", text="someone else's", account_id="9910000")
        monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
        inner.makepyfile(
            """
            def test_first(bandwidth_emulator):
                assert bandwidth_emulator.account_id == "9910001"
                bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="mine")
                assert [m["text"] for m in bandwidth_emulator.messages()] == ["mine"]

            def test_second(bandwidth_emulator):
                assert bandwidth_emulator.messages() == []
            """
        )
        inner.runpytest(f"--bandwidth-emulator-url={shared.base_url}").assert_outcomes(passed=2)
        # The neighbour's message survived both resets.
        assert [m["id"] for m in shared.messages(all_accounts=True)] == [neighbour["id"]]


@pytest.mark.slow
def test_xdist_workers_each_get_their_own_emulator_and_account(inner):
    pytest.importorskip("xdist")
    inner.makepyfile(
        """
        import os
        from pathlib import Path

        import pytest

        @pytest.mark.parametrize("n", range(8))
        def test_isolated(bandwidth_emulator, callback_receiver, n):
            assert bandwidth_emulator.messages(all_accounts=True) == []
            message = bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text=str(n))
            bandwidth_emulator.advance(1)
            bandwidth_emulator.assert_callbacks(message["id"], ["message-delivered"])
            assert callback_receiver.types() == ["message-delivered"]
            worker = os.environ["PYTEST_XDIST_WORKER"]
            line = f"{worker} {bandwidth_emulator.base_url} {bandwidth_emulator.account_id}"
            (Path(__file__).parent / f"seen-{n}.txt").write_text(line)
        """
    )
    # Heavy plugins of this environment only slow the workers down.
    quiet = ["-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio"]
    inner.runpytest("-n", "2", *quiet).assert_outcomes(passed=8)
    seen = {tuple(path.read_text().split()) for path in inner.path.glob("seen-*.txt")}
    by_worker = {worker: (url, account) for worker, url, account in seen}
    assert len(seen) == len(by_worker) == 2  # one emulator per worker, used by all its tests
    assert by_worker["gw0"][1] == "9910000" and by_worker["gw1"][1] == "9910001"
    assert by_worker["gw0"][0] != by_worker["gw1"][0]


def test_an_internal_error_of_the_emulator_fails_the_test_at_teardown(inner):
    inner.makepyfile(
        """
        def test_hits_a_bug(bandwidth_emulator, bandwidth_emulator_session, monkeypatch):
            service = bandwidth_emulator_session.background.emulator.service

            async def broken(*args, **kwargs):
                raise RuntimeError("boom")

            monkeypatch.setattr(service.dispatcher, "post", broken)
            bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(1)

        def test_next_one_is_clean(bandwidth_emulator):
            bandwidth_emulator.send(to="+15552221111", from_="+15554443333", text="hi")
            bandwidth_emulator.advance(1)
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_hits_a_bug*", "*1 internal error(s) during this test*", "*RuntimeError: boom*"]
    )


def test_the_applications_first_request_sees_the_tests_fresh_start(inner):
    # The fixture queues each test's reset on the emulator's loop without waiting for it: the
    # application's own first request, straight after, must already find it done.
    inner.makepyfile(
        """
        import json
        import urllib.request

        import pytest

        def app_sends(api_url, account_id):
            request = urllib.request.Request(
                f"{api_url}/users/{account_id}/messages",
                data=json.dumps({"applicationId": "app", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}).encode(),
                headers={"Content-Type": "application/json", "Authorization": "Basic dXNlcjpwYXNz"},
            )
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())

        @pytest.mark.parametrize("run", range(20))
        @pytest.mark.bandwidth_scenario({"startTime": "2026-01-02T03:00:00Z", "seed": 7})
        def test_first_thing_is_a_send(bandwidth_emulator, run):
            message = app_sends(bandwidth_emulator.api_url, bandwidth_emulator.account_id)
            # The clock was put back and the seed started over before the send got there.
            assert message["time"] == "2026-01-02T03:00:00.000Z"
            assert [m["id"] for m in bandwidth_emulator.messages()] == [message["id"]]
            bandwidth_emulator.advance(3600)
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=20)


def test_a_failure_of_the_emulator_starting_a_test_fails_it_at_teardown(inner):
    inner.makepyfile(
        """
        def test_breaks_the_next_start(bandwidth_emulator, bandwidth_emulator_session):
            service = bandwidth_emulator_session.background.emulator.service
            replace = service.replace_scenario

            def broken(scenario):
                service.replace_scenario = replace  # only once
                raise RuntimeError("could not start")

            service.replace_scenario = broken

        def test_started_badly(bandwidth_emulator):
            pass

        def test_next_one_is_clean(bandwidth_emulator):
            bandwidth_emulator.advance(1)
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_started_badly*", "*RuntimeError: could not start*"])
